// Error bodies in the OpenAI shape DeepSeek uses:
// {"error":{"message":…,"type":…,"param":null,"code":…}}

import ChatQueueCore

struct MockErrorBody {
    var message: String
    var type: String
    var code: String

    var json: JSONValue {
        ["error": ["message": .string(self.message), "type": .string(self.type), "param": .null, "code": .string(self.code)]]
    }

    /// What DeepSeek (or a proxy in front of it) answers with `status`.
    static func forStatus(_ status: Int) -> MockErrorBody {
        switch status {
        case 400:
            return .init(message: "Invalid request format", type: "invalid_request_error", code: "invalid_request_error")
        case 401:
            return .authenticationFails
        case 402:
            // Byte-for-byte DeepSeek's, including the odd "unknown_error" type.
            return .init(message: "Insufficient Balance", type: "unknown_error", code: "invalid_request_error")
        case 403:
            return .init(message: "Permission denied", type: "permission_error", code: "permission_denied")
        case 404:
            return .init(message: "Not Found", type: "not_found_error", code: "not_found")
        case 405:
            return .init(message: "Method Not Allowed", type: "invalid_request_error", code: "method_not_allowed")
        case 413:
            return .init(message: "Request Entity Too Large", type: "invalid_request_error", code: "invalid_request_error")
        case 422:
            return .init(message: "Invalid parameters", type: "invalid_request_error", code: "invalid_request_error")
        case 429:
            return .init(message: "Rate limit reached", type: "rate_limit_error", code: "rate_limit_exceeded")
        case 500:
            return .init(message: "Internal Server Error", type: "server_error", code: "internal_error")
        case 502:
            return .init(message: "Bad Gateway", type: "server_error", code: "bad_gateway")
        case 503:
            return .init(message: "Service Unavailable", type: "server_error", code: "service_unavailable")
        case 504:
            return .init(message: "Gateway Timeout", type: "server_error", code: "gateway_timeout")
        case 500...599:
            return .init(message: "Server Error", type: "server_error", code: "server_error")
        default:
            return .init(message: "Request failed", type: "invalid_request_error", code: "invalid_request_error")
        }
    }

    static let authenticationFails = MockErrorBody(
        message: "Authentication Fails (no such user)",
        type: "authentication_error",
        code: "invalid_request_error"
    )

    /// Sent as an SSE data event by the `stream_error` directive, as DeepSeek does mid-stream.
    static let duringGeneration = MockErrorBody(
        message: "Internal error during generation",
        type: "server_error",
        code: "internal_error"
    )
}
