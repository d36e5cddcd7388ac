/// Why an upstream call did not produce a usable answer.
public enum UpstreamFailure: Error, Sendable, Equatable {
    /// A non-200 answer (body bounded by the caller).
    case httpStatus(Int, body: [UInt8])
    /// Could not connect, or a transport error before any response.
    case connectionFailed(String)
    /// The connection (TCP/TLS) was not established in time.
    case connectTimeout
    /// The request was sent but no response byte arrived in time.
    case firstByteTimeout
    /// A response started but then no data arrived for too long.
    case idleTimeout
    /// The whole HTTP exchange took longer than allowed.
    case requestTimeout
    /// The request's own deadline passed (waiting longer can't help).
    case deadlineExceeded
    /// A 200 that is not the expected JSON or SSE, or is oversized.
    case badResponse(String)
    /// The stream ended without any data event (no `[DONE]`).
    case emptyStream
    /// A `data: {"error": {...}}` event inside a stream (the whole event object).
    case streamError(JSONValue)
    /// The stream broke after chunks were already published.
    case streamInterrupted(String)
    /// The response (a document, or a stream's events together) is larger
    /// than the largest reply the worker publishes.
    case responseTooLarge(limit: Int)

    /// Worth another HTTP try: connectionFailed, connectTimeout,
    /// firstByteTimeout, httpStatus 408/429/500/502/503/504.
    public var isRetryable: Bool {
        switch self {
        case .connectionFailed, .connectTimeout, .firstByteTimeout:
            return true
        case .httpStatus(let status, _):
            return [408, 429, 500, 502, 503, 504].contains(status)
        case .idleTimeout, .requestTimeout, .deadlineExceeded, .badResponse, .emptyStream, .streamError, .streamInterrupted,
            .responseTooLarge:
            return false
        }
    }
}

extension UpstreamFailure: CustomStringConvertible {
    /// One short printable line for logs, the status file and systemd's
    /// `STATUS=`: the failure's code, the HTTP status, and at most
    /// ``TextExcerpt/defaultLimit`` bytes of what the upstream said, e.g.
    /// `HTTP 503 overloaded: Service is too busy`. Never the raw body bytes.
    public var summary: String {
        func detailed(_ label: String, _ detail: String) -> String {
            let excerpt = TextExcerpt.make(detail)
            return excerpt.isEmpty ? label : label + ": " + excerpt
        }
        switch self {
        case .httpStatus(let status, let body):
            let details = UpstreamErrorDetails(httpBody: body)
            var label = "HTTP \(status)"
            if let code = details.code { label += " " + TextExcerpt.make(code, limit: 64) }
            return detailed(label, details.message ?? String(decoding: body.prefix(4 * TextExcerpt.defaultLimit), as: UTF8.self))
        case .connectionFailed(let detail): return detailed("connection_failed", detail)
        case .connectTimeout: return "connect_timeout"
        case .firstByteTimeout: return "first_byte_timeout"
        case .idleTimeout: return "idle_timeout"
        case .requestTimeout: return "request_timeout"
        case .deadlineExceeded: return "deadline_exceeded"
        case .badResponse(let detail): return detailed("bad_response", detail)
        case .emptyStream: return "empty_stream"
        case .streamError(let event):
            let details = UpstreamErrorDetails(event["error"])
            var label = "stream_error"
            if let code = details.code { label += " " + TextExcerpt.make(code, limit: 64) }
            return detailed(label, details.message ?? "")
        case .streamInterrupted(let detail): return detailed("stream_interrupted", detail)
        case .responseTooLarge(let limit): return "response_too_large: over \(limit) bytes"
        }
    }

    /// The ``summary``, so `"\(failure)"` never prints a body as a byte array.
    public var description: String { summary }
}

extension ChatError {
    /// Maps an upstream failure to the error reply.
    ///
    /// HTTP answers are classified by status, never by the upstream's `type`
    /// (DeepSeek fills it inconsistently, e.g. its 402 body is
    /// `{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}`).
    /// From a `{"error": {...}}` body the message, code (a number becomes its
    /// text) and param are kept; otherwise the message is
    /// "upstream returned HTTP <status>" plus ": <first 200 bytes of the body>"
    /// when there is one.
    ///
    /// | failure | status | type | code | retryable |
    /// |---|---|---|---|---|
    /// | HTTP 400/422, other 4xx but 408/429 | same | invalid_request_error | upstream's | no |
    /// | HTTP 401/402/403/404 | same | authentication_error/payment_required/permission_error/not_found_error | upstream's | no |
    /// | HTTP 408, 5xx | same | upstream_error | upstream's | yes |
    /// | HTTP 429 | 429 | rate_limit_error | upstream's | yes |
    /// | HTTP 1xx/2xx/3xx | 502 | upstream_error | bad_response | no |
    /// | connectionFailed | 502 | upstream_error | connection_failed | yes |
    /// | badResponse | 502 | upstream_error | bad_response | no |
    /// | responseTooLarge | 502 | upstream_error | response_too_large | no |
    /// | emptyStream | 502 | upstream_error | empty_stream | yes |
    /// | streamError | 502 | upstream_error | the event's (default upstream_error) | no |
    /// | streamInterrupted | 502 | upstream_error | stream_interrupted | yes |
    /// | connect/firstByte/idle/request timeout | 504 | timeout_error | connect_timeout/... | yes |
    /// | deadlineExceeded | 504 | timeout_error | deadline_exceeded | no |
    ///
    /// `upstreamStatus` is the HTTP status for every httpStatus case; the
    /// disposition is always acknowledge.
    public init(upstream failure: UpstreamFailure) {
        switch failure {
        case .httpStatus(let status, let body):
            self = ChatError.mapHTTPStatus(status, body: body)
        case .connectionFailed(let detail):
            self.init(
                status: 502, type: "upstream_error", code: "connection_failed",
                message: "could not reach the upstream API: \(detail)", retryable: true)
        case .badResponse(let detail):
            self.init(
                status: 502, type: "upstream_error", code: "bad_response",
                message: "the upstream API returned an unusable response: \(detail)")
        case .responseTooLarge(let limit):
            self.init(
                status: 502, type: "upstream_error", code: "response_too_large",
                message: "the upstream response is larger than the \(limit) bytes a reply may have (upstream.max_response_bytes)")
        case .emptyStream:
            self.init(
                status: 502, type: "upstream_error", code: "empty_stream",
                message: "the upstream stream ended without any data", retryable: true)
        case .streamError(let event):
            let details = UpstreamErrorDetails(event["error"])
            self.init(
                status: 502, type: "upstream_error", code: details.code ?? "upstream_error",
                message: details.message ?? "the upstream API reported an error in the stream",
                param: details.param)
        case .streamInterrupted(let detail):
            self.init(
                status: 502, type: "upstream_error", code: "stream_interrupted",
                message: "the upstream stream broke off: \(detail)", retryable: true)
        case .connectTimeout:
            self.init(
                status: 504, type: "timeout_error", code: "connect_timeout",
                message: "timed out connecting to the upstream API", retryable: true)
        case .firstByteTimeout:
            self.init(
                status: 504, type: "timeout_error", code: "first_byte_timeout",
                message: "timed out waiting for the upstream API to start answering", retryable: true)
        case .idleTimeout:
            self.init(
                status: 504, type: "timeout_error", code: "idle_timeout",
                message: "the upstream API stopped sending data", retryable: true)
        case .requestTimeout:
            self.init(
                status: 504, type: "timeout_error", code: "request_timeout",
                message: "the upstream request took too long", retryable: true)
        case .deadlineExceeded:
            self.init(
                status: 504, type: "timeout_error", code: "deadline_exceeded",
                message: "the request's deadline passed before an answer arrived")
        }
    }

    private static func mapHTTPStatus(_ status: Int, body: [UInt8]) -> ChatError {
        let details = UpstreamErrorDetails(httpBody: body)
        let message = details.message ?? genericMessage(status: status, body: body)
        let type: String
        var code = details.code
        var replyStatus = status
        var retryable = false
        switch status {
        case 401: type = "authentication_error"
        case 402: type = "payment_required"
        case 403: type = "permission_error"
        case 404: type = "not_found_error"
        case 408, 500...599:
            type = "upstream_error"
            retryable = true
        case 429:
            type = "rate_limit_error"
            retryable = true
        case 400...499: type = "invalid_request_error"
        default:
            // A "failure" with a success/informational/redirect status is a broken upstream.
            type = "upstream_error"
            code = "bad_response"
            replyStatus = 502
        }
        return ChatError(
            status: replyStatus, type: type, code: code, message: message,
            param: details.param, retryable: retryable, upstreamStatus: status)
    }

    /// "upstream returned HTTP 503: <start of the body>" for bodies that are
    /// not an OpenAI-style error object.
    private static func genericMessage(status: Int, body: [UInt8]) -> String {
        var message = "upstream returned HTTP \(status)"
        var end = min(body.count, 200)
        // Don't cut a UTF-8 sequence in half: back up to its lead byte.
        if end < body.count {
            var backedUp = 0
            while end > 0, backedUp < 3, body[end] & 0xC0 == 0x80 {
                end -= 1
                backedUp += 1
            }
        }
        var start = 0
        while start < end, ASCII.isWhitespace(body[start]) { start += 1 }
        while end > start, ASCII.isWhitespace(body[end - 1]) { end -= 1 }
        if start < end {
            message += ": " + String(decoding: body[start..<end], as: UTF8.self)
        }
        return message
    }
}

/// The useful parts of an OpenAI-style `{"error": {...}}` object.
struct UpstreamErrorDetails {
    var message: String?
    var code: String?
    var param: String?

    /// Reads the details of an `error` member value.
    init(_ error: JSONValue?) {
        guard case .object(let fields)? = error else { return }
        message = fields["message"]?.stringValue
        switch fields["code"] {
        case .string(let text)?: code = text
        case .number(let literal)?: code = literal
        default: code = nil
        }
        param = fields["param"]?.stringValue
    }

    /// Reads the details from an HTTP error body, if it is `{"error": {...}}`.
    init(httpBody: [UInt8]) {
        guard let document = try? JSONValue(parsing: httpBody) else {
            self.init(nil)
            return
        }
        self.init(document["error"])
    }
}
