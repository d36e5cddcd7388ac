/// A requester's cancel message, as published to the cancel exchange:
/// `{"request_id": "<id>"}` with content type application/json
/// (docs/protocol.md "Cancelling a request"). Pure and bounded: the body and
/// the id have size limits checked before anything is parsed, so a storm of
/// hostile messages costs one bounded parse each and nothing more.
public enum CancelMessage {
    /// Largest body read; a larger one is malformed without being parsed.
    public static let maxBodyBytes = 4096
    /// Longest request id (UTF-8 bytes); AMQP's message_id is a shortstr (255).
    public static let maxRequestIDBytes = 256

    /// Why a cancel message was dropped (for the rate-limited log line).
    public enum Malformed: Error, Sendable, Equatable {
        case tooLarge(Int)
        case contentType(String)
        case notJSON
        case notAnObject
        case missingRequestID
        case badRequestID
    }

    /// The request id a cancel names, or why the message is malformed.
    /// - contentType: the message's content type (absent is accepted, as for requests' bodies being JSON by default).
    /// - bodySize: the size the broker announced (the body may have been cut short).
    public static func requestID(
        body: [UInt8], bodySize: UInt64, contentType: String?
    ) -> Result<String, Malformed> {
        guard bodySize <= UInt64(maxBodyBytes), body.count <= maxBodyBytes else {
            return .failure(.tooLarge(Int(clamping: bodySize)))
        }
        if let contentType, !RequestValidator.isJSONContentType(contentType) {
            return .failure(.contentType(TextExcerpt.make(contentType, limit: 64)))
        }
        guard let value = try? JSONValue(parsing: body) else { return .failure(.notJSON) }
        guard case .object(let object) = value else { return .failure(.notAnObject) }
        guard let field = object["request_id"] else { return .failure(.missingRequestID) }
        guard let id = field.stringValue, !id.isEmpty, id.utf8.count <= maxRequestIDBytes else {
            return .failure(.badRequestID)
        }
        return .success(id)
    }

    /// The body a requester publishes to cancel `requestID`.
    public static func body(requestID: String) -> [UInt8] {
        JSONValue.object(["request_id": .string(requestID)]).serialized()
    }
}

extension CancelMessage.Malformed: CustomStringConvertible {
    public var description: String {
        switch self {
        case .tooLarge(let size): return "body of \(size) bytes is over \(CancelMessage.maxBodyBytes)"
        case .contentType(let type): return "content type \"\(type)\" is not application/json"
        case .notJSON: return "body is not JSON"
        case .notAnObject: return "body is not a JSON object"
        case .missingRequestID: return "no request_id"
        case .badRequestID:
            return "request_id is not a non-empty string of at most \(CancelMessage.maxRequestIDBytes) bytes"
        }
    }
}
