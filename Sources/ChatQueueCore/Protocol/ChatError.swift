/// The structured error a request can end with. It becomes the body of an
/// `error` reply.
public struct ChatError: Error, Sendable, Equatable {
    /// What happens to the request message after the error reply is published.
    public enum Disposition: Sendable, Equatable {
        /// Acknowledge: the error reply is the final answer.
        case acknowledge
        /// Reject without requeue so the message lands in the dead-letter queue.
        case deadLetter
    }

    /// The HTTP-like status of the reply (400, 404, 502, ...).
    public var status: Int
    /// OpenAI-style error type, e.g. `invalid_request_error`.
    public var type: String
    /// Machine-readable code, e.g. `invalid_field`.
    public var code: String?
    /// Human-readable explanation.
    public var message: String
    /// The request field at fault, e.g. `messages[0].role`.
    public var param: String?
    /// Whether sending the same request again later may succeed.
    public var retryable: Bool
    /// The upstream's HTTP status when the error came from one.
    public var upstreamStatus: Int?
    /// deadLetter for invalid requests (codes invalid_json, invalid_field,
    /// unsupported_content_type, request_too_large): rejected without requeue
    /// after the error reply so they land in the dead-letter queue.
    /// Everything else: acknowledge.
    public var disposition: Disposition

    /// An error with everything spelled out; the optional parts default to
    /// absent, not retryable, no upstream status, acknowledge.
    public init(
        status: Int,
        type: String,
        code: String? = nil,
        message: String,
        param: String? = nil,
        retryable: Bool = false,
        upstreamStatus: Int? = nil,
        disposition: Disposition = .acknowledge
    ) {
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.param = param
        self.retryable = retryable
        self.upstreamStatus = upstreamStatus
        self.disposition = disposition
    }

    // MARK: Invalid requests

    /// 400 invalid_request_error `invalid_json`, dead-lettered.
    public static func invalidJSON(_ detail: String) -> ChatError {
        ChatError(
            status: 400, type: "invalid_request_error", code: "invalid_json",
            message: detail, disposition: .deadLetter)
    }

    /// 400 invalid_request_error `invalid_field` naming the field, dead-lettered.
    public static func invalidField(param: String, message: String) -> ChatError {
        ChatError(
            status: 400, type: "invalid_request_error", code: "invalid_field",
            message: message, param: param, disposition: .deadLetter)
    }

    /// 400 invalid_request_error `unsupported_content_type`, dead-lettered.
    public static func unsupportedContentType(_ contentType: String) -> ChatError {
        ChatError(
            status: 400, type: "invalid_request_error", code: "unsupported_content_type",
            message: "unsupported content type \"\(contentType)\"; expected application/json",
            disposition: .deadLetter)
    }

    /// 413 invalid_request_error `request_too_large`, dead-lettered.
    public static func requestTooLarge(size: Int, limit: Int) -> ChatError {
        ChatError(
            status: 413, type: "invalid_request_error", code: "request_too_large",
            message: "request body is \(size) bytes, larger than the limit of \(limit) bytes",
            disposition: .deadLetter)
    }

    /// 500 server_error `max_deliveries_exceeded`, dead-lettered: the request was
    /// delivered more often than allowed (workers crashed or were killed while
    /// handling it), so it is set aside as a poison message instead of tried again.
    public static func maxDeliveriesExceeded(attempt: Int, limit: Int) -> ChatError {
        ChatError(
            status: 500, type: "server_error", code: "max_deliveries_exceeded",
            message: "delivery attempt \(attempt) exceeds worker.max_deliveries (\(limit)); set aside as a poison message",
            disposition: .deadLetter)
    }

    /// 404 not_found_error `model_not_found` (param `model`), acknowledged:
    /// the request is well-formed, this worker just doesn't serve the model.
    public static func modelNotFound(_ model: String) -> ChatError {
        ChatError(
            status: 404, type: "not_found_error", code: "model_not_found",
            message: "the model \"\(model)\" does not exist or is not served here", param: "model")
    }

    // MARK: The requester

    /// 499 cancelled `cancelled`, acknowledged: the requester cancelled the
    /// request (a message to the cancel exchange); chunks already sent stay sent.
    public static func cancelled() -> ChatError {
        ChatError(status: 499, type: "cancelled", code: "cancelled", message: "the request was cancelled by its requester")
    }

    // MARK: Wire form

    /// The ErrorResponse wire body, compact JSON, exactly these keys in this order:
    /// `{"error":{"message":"...","type":"...","code":"..."|null,"param":"..."|null},"status":400,"request_id":"...","retryable":false,"attempts":1,"upstream_status":402}`
    /// (`upstream_status` present only when ``upstreamStatus`` is non-nil).
    /// `upstream`: the name of the upstream of the last try (contract v2.2),
    /// nil when no try was made or no route named it.
    public func responseBody(requestID: String, attempts: Int, upstream: String? = nil) -> [UInt8] {
        var error = JSONObject()
        error["message"] = .string(message)
        error["type"] = .string(type)
        error["code"] = code.map(JSONValue.string) ?? .null
        error["param"] = param.map(JSONValue.string) ?? .null
        var body = JSONObject()
        body["error"] = .object(error)
        body["status"] = .number(String(status))
        body["request_id"] = .string(requestID)
        body["retryable"] = .bool(retryable)
        body["attempts"] = .number(String(attempts))
        if let upstreamStatus {
            body["upstream_status"] = .number(String(upstreamStatus))
        }
        if let upstream {
            body["upstream"] = .string(upstream)
        }
        return JSONValue.object(body).serialized()
    }
}

extension ChatError: CustomStringConvertible {
    public var description: String {
        "\(status) \(type)\(code.map { " (\($0))" } ?? ""): \(message)"
    }
}
