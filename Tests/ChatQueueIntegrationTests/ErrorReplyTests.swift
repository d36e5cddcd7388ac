import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// What an `error` reply must say, field by field (docs/protocol.md "error").
struct ExpectedError: Sendable, CustomTestStringConvertible {
    var status: Int
    var type: String
    /// nil: `code` must be JSON null.
    var code: String?
    /// The exact message, when the contract fixes it.
    var message: String? = nil
    /// Else the message must start with this (and is never empty).
    var messagePrefix: String? = nil
    /// nil: `param` must be JSON null.
    var param: String? = nil
    var retryable: Bool
    var attempts: Int
    /// nil: the `upstream_status` key must be absent.
    var upstreamStatus: Int?

    var testDescription: String { "\(status) \(type) \(code ?? "null")" }
}

extension IntegrationHarness {
    /// Sends `json` and expects exactly one reply, the error `expected` (no
    /// chunks before it, no second final after it).
    func expectSingleError(
        json: String, correlationID: String, _ expected: ExpectedError, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let replies = try exchange(json: json, correlationID: correlationID)
        #expect(replies.count == 1, "one reply, no chunks", sourceLocation: sourceLocation)
        try expectErrorReply(
            try #require(replies.first, sourceLocation: sourceLocation), expected, correlationID: correlationID,
            sourceLocation: sourceLocation)
        #expect(try extraReply() == nil, "exactly one final reply", sourceLocation: sourceLocation)
    }
}

/// Checks an `error` reply: properties, headers and the ErrorResponse body.
/// `requestID` defaults to `correlationID` (the request id when there is no message_id);
/// `upstream` is the name the reply must give when a try was made (v2.2).
func expectErrorReply(
    _ reply: ReceivedReply, _ expected: ExpectedError, correlationID: String, requestID: String? = nil, seq: Int64 = 0,
    upstream: String = "default", sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let requestID = requestID ?? correlationID
    #expect(reply.type == "error", "reply: \(reply.text)", sourceLocation: sourceLocation)
    #expect(reply.contentType == "application/json", sourceLocation: sourceLocation)
    #expect(reply.deliveryMode == 2, sourceLocation: sourceLocation)
    #expect(reply.correlationID == correlationID, sourceLocation: sourceLocation)
    #expect(reply.requestID == requestID, sourceLocation: sourceLocation)
    #expect(reply.seq == seq, sourceLocation: sourceLocation)
    #expect(reply.attempt == 1, sourceLocation: sourceLocation)

    let body = try #require(reply.json?.objectValue, "error body is not a JSON object: \(reply.text)", sourceLocation: sourceLocation)
    var keys: Set<String> = ["error", "status", "request_id", "retryable", "attempts"]
    if expected.upstreamStatus != nil { keys.insert("upstream_status") }
    if expected.attempts > 0 { keys.insert("upstream") }
    #expect(Set(body.keys) == keys, "body: \(reply.text)", sourceLocation: sourceLocation)
    if expected.attempts > 0 {
        #expect(body["upstream"]?.stringValue == upstream, "body: \(reply.text)", sourceLocation: sourceLocation)
    }
    let error = try #require(body["error"]?.objectValue, "no error object: \(reply.text)", sourceLocation: sourceLocation)
    #expect(Set(error.keys) == ["message", "type", "code", "param"], "body: \(reply.text)", sourceLocation: sourceLocation)

    let message = error["message"]?.stringValue
    if let exact = expected.message {
        #expect(message == exact, "body: \(reply.text)", sourceLocation: sourceLocation)
    } else {
        #expect(message?.isEmpty == false, "body: \(reply.text)", sourceLocation: sourceLocation)
        if let prefix = expected.messagePrefix {
            #expect(message?.hasPrefix(prefix) == true, "body: \(reply.text)", sourceLocation: sourceLocation)
        }
    }
    #expect(error["type"]?.stringValue == expected.type, "body: \(reply.text)", sourceLocation: sourceLocation)
    if let code = expected.code {
        #expect(error["code"]?.stringValue == code, "body: \(reply.text)", sourceLocation: sourceLocation)
    } else {
        #expect(error["code"]?.isNull == true, "body: \(reply.text)", sourceLocation: sourceLocation)
    }
    if let param = expected.param {
        #expect(error["param"]?.stringValue == param, "body: \(reply.text)", sourceLocation: sourceLocation)
    } else {
        #expect(error["param"]?.isNull == true, "body: \(reply.text)", sourceLocation: sourceLocation)
    }
    #expect(body["status"]?.integerValue == expected.status, "body: \(reply.text)", sourceLocation: sourceLocation)
    #expect(body["request_id"]?.stringValue == requestID, "body: \(reply.text)", sourceLocation: sourceLocation)
    #expect(body["retryable"]?.boolValue == expected.retryable, "body: \(reply.text)", sourceLocation: sourceLocation)
    #expect(body["attempts"]?.integerValue == expected.attempts, "body: \(reply.text)", sourceLocation: sourceLocation)
    if let upstreamStatus = expected.upstreamStatus {
        #expect(body["upstream_status"]?.integerValue == upstreamStatus, "body: \(reply.text)", sourceLocation: sourceLocation)
    }
}

/// Checks the chunks before a final reply: chat.completion.chunk, transient,
/// x-seq 0, 1, 2, ... of attempt 1, and the final right after them. Returns the streamed content.
@discardableResult
func expectChunksThenFinal(
    _ replies: [ReceivedReply], correlationID: String, sourceLocation: SourceLocation = #_sourceLocation
) throws -> String {
    let final = try #require(replies.last, "no replies", sourceLocation: sourceLocation)
    var streamed = ""
    for (index, chunk) in replies.dropLast().enumerated() {
        #expect(chunk.type == "chat.completion.chunk", "reply \(index): \(chunk.type) \(chunk.text)", sourceLocation: sourceLocation)
        #expect(chunk.contentType == "application/json", sourceLocation: sourceLocation)
        #expect(chunk.deliveryMode == 1, sourceLocation: sourceLocation)
        #expect(chunk.correlationID == correlationID, sourceLocation: sourceLocation)
        #expect(chunk.seq == Int64(index), sourceLocation: sourceLocation)
        #expect(chunk.attempt == 1, sourceLocation: sourceLocation)
        let body = try #require(chunk.json, "chunk \(index) is not JSON: \(chunk.text)", sourceLocation: sourceLocation)
        #expect(body["object"]?.stringValue == "chat.completion.chunk", sourceLocation: sourceLocation)
        streamed += body["choices"]?[0]?["delta"]?["content"]?.stringValue ?? ""
    }
    #expect(final.isFinal, sourceLocation: sourceLocation)
    #expect(final.seq == Int64(replies.count - 1), sourceLocation: sourceLocation)
    return streamed
}

/// Unix time in milliseconds.
func unixMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// Retries without the default 0.5 s backoff base, so tests that exhaust them stay fast.
let fastRetries = ["retry.base_delay": "0.01"]

/// Mock directives for one variant of a row.
struct DirectiveCase: Sendable, CustomTestStringConvertible {
    var name: String
    /// The `"mock"` object.
    var json: String
    init(_ name: String, _ json: String) {
        self.name = name
        self.json = json
    }
    var testDescription: String { name }
}

/// A stream that fails after its first chunks (see `streamEndsBadlyAfterChunks`).
struct StreamEndCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var label: String
    /// Members of the `"mock"` object (the test adds its key).
    var mock: String
    var expected: ExpectedError
    init(_ description: String, label: String, mock: String, expected: ExpectedError) {
        testDescription = description
        self.label = label
        self.mock = mock
        self.expected = expected
    }
}

/// An upstream that goes quiet (see the timeout tests).
struct TimeoutCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var label: String
    var settings: [String: String]
    var stream: Bool
    /// Members of the `"mock"` object (the test adds its key).
    var mock: String
    /// HTTP tries the upstream sees (and `attempts` in the error).
    var tries: Int
    init(_ description: String, label: String, settings: [String: String], stream: Bool, mock: String, tries: Int) {
        testDescription = description
        self.label = label
        self.settings = settings
        self.stream = stream
        self.mock = mock
        self.tries = tries
    }
}

/// One status row of the upstream HTTP error table.
struct UpstreamStatusRow: Sendable, CustomTestStringConvertible {
    var upstream: Int
    var expected: ExpectedError
    var testDescription: String { "upstream \(upstream)" }

    /// Non-retryable rows: one try.
    static func final(_ status: Int, _ type: String, code: String, message: String) -> UpstreamStatusRow {
        UpstreamStatusRow(
            upstream: status,
            expected: ExpectedError(
                status: status, type: type, code: code, message: message, retryable: false, attempts: 1,
                upstreamStatus: status))
    }

    /// Retryable rows: every one of the 4 tries failed.
    static func retried(_ status: Int, _ type: String, code: String, message: String) -> UpstreamStatusRow {
        UpstreamStatusRow(
            upstream: status,
            expected: ExpectedError(
                status: status, type: type, code: code, message: message, retryable: true, attempts: 4,
                upstreamStatus: status))
    }
}

@Suite("Error replies", .serialized)
struct ErrorReplyTests {
    // MARK: Upstream HTTP errors

    @Test(
        "upstream 4xx is answered once with the same status; 408/429/5xx is retried, then answered retryable; classified by status, upstream message and code kept",
        arguments: [
            UpstreamStatusRow.final(400, "invalid_request_error", code: "invalid_request_error", message: "Invalid request format"),
            UpstreamStatusRow.final(422, "invalid_request_error", code: "invalid_request_error", message: "Invalid parameters"),
            UpstreamStatusRow.final(403, "permission_error", code: "permission_denied", message: "Permission denied"),
            UpstreamStatusRow.final(404, "not_found_error", code: "not_found", message: "Not Found"),
            UpstreamStatusRow.final(413, "invalid_request_error", code: "invalid_request_error", message: "Request Entity Too Large"),
            UpstreamStatusRow.retried(408, "upstream_error", code: "invalid_request_error", message: "Request failed"),
            UpstreamStatusRow.retried(429, "rate_limit_error", code: "rate_limit_exceeded", message: "Rate limit reached"),
            UpstreamStatusRow.retried(500, "upstream_error", code: "internal_error", message: "Internal Server Error"),
            UpstreamStatusRow.retried(502, "upstream_error", code: "bad_gateway", message: "Bad Gateway"),
            UpstreamStatusRow.retried(503, "upstream_error", code: "service_unavailable", message: "Service Unavailable"),
            UpstreamStatusRow.retried(504, "upstream_error", code: "gateway_timeout", message: "Gateway Timeout"),
        ])
    func upstreamHTTPError(_ row: UpstreamStatusRow) async throws {
        let harness = try await IntegrationHarness.start("err\(row.upstream)", settings: fastRetries)
        let key = "status-\(row.upstream)-\(UUID().uuidString)"
        let replies = try harness.exchange(
            json: chatRequest(mock: #"{"status":\#(row.upstream),"key":"\#(key)"}"#), correlationID: "corr-\(row.upstream)")
        #expect(replies.count == 1)
        try expectErrorReply(try #require(replies.first), row.expected, correlationID: "corr-\(row.upstream)")
        // One try for a final status; every retry used up (attempts = tries made) for a retryable one.
        #expect(harness.mock.requestCount(key: key) == row.expected.attempts)
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("upstream 401 (worker's key refused) is authentication_error with DeepSeek's message")
    func upstreamUnauthorized() async throws {
        var mockOptions = MockUpstreamOptions()
        mockOptions.requireAPIKey = "sk-the-right-key"
        let harness = try await IntegrationHarness.start(
            "err401", mockOptions: mockOptions, environment: ["CHATQUEUE_UPSTREAM_API_KEY": "sk-a-wrong-key"])
        try harness.expectSingleError(
            json: chatRequest(), correlationID: "corr-401",
            ExpectedError(
                status: 401, type: "authentication_error", code: "invalid_request_error",
                message: "Authentication Fails (no such user)", retryable: false, attempts: 1, upstreamStatus: 401))
        #expect(harness.mock.recordedRequests().count == 1)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("upstream 402 is payment_required with DeepSeek's message and code kept, its type ignored")
    func upstreamPaymentRequired() async throws {
        let harness = try await IntegrationHarness.start("err402")
        try harness.expectSingleError(
            json: chatRequest(mock: #"{"status":402}"#), correlationID: "corr-402",
            ExpectedError(
                status: 402, type: "payment_required", code: "invalid_request_error", message: "Insufficient Balance",
                retryable: false, attempts: 1, upstreamStatus: 402))
        #expect(try await harness.shutdown() == 0)
    }

    @Test("an upstream error body that is not OpenAI-shaped becomes 'upstream returned HTTP <status>: <body>', code null")
    func upstreamPlainErrorBody() async throws {
        let harness = try await IntegrationHarness.start("errplain")
        try harness.expectSingleError(
            json: chatRequest(mock: #"{"status":400,"error_body":"<html>Bad Request</html>"}"#), correlationID: "corr-plain",
            ExpectedError(
                status: 400, type: "invalid_request_error", code: nil,
                message: "upstream returned HTTP 400: <html>Bad Request</html>", retryable: false, attempts: 1,
                upstreamStatus: 400))
        #expect(try await harness.shutdown() == 0)
    }

    @Test(
        "an upstream error with an empty body keeps its status and classification ('upstream returned HTTP <status>')",
        arguments: [
            UpstreamStatusRow(
                upstream: 401,
                expected: ExpectedError(
                    status: 401, type: "authentication_error", code: nil, message: "upstream returned HTTP 401",
                    retryable: false, attempts: 1, upstreamStatus: 401)),
            UpstreamStatusRow(
                upstream: 503,
                expected: ExpectedError(
                    status: 503, type: "upstream_error", code: nil, message: "upstream returned HTTP 503",
                    retryable: true, attempts: 4, upstreamStatus: 503)),
        ])
    func upstreamEmptyErrorBody(_ row: UpstreamStatusRow) async throws {
        let harness = try await IntegrationHarness.start("erremptybody", settings: fastRetries)
        let key = "empty-body-\(row.upstream)-\(UUID().uuidString)"
        let replies = try harness.exchange(
            json: chatRequest(mock: #"{"status":\#(row.upstream),"error_body":"","key":"\#(key)"}"#),
            correlationID: "corr-emptybody")
        #expect(replies.count == 1)
        try expectErrorReply(try #require(replies.first), row.expected, correlationID: "corr-emptybody")
        #expect(harness.mock.requestCount(key: key) == row.expected.attempts, "attempts must be the tries made")
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("an upstream 3xx (redirects are not followed) is a 502 bad_response with the upstream status")
    func upstreamRedirect() async throws {
        let harness = try await IntegrationHarness.start("err302")
        try harness.expectSingleError(
            json: chatRequest(mock: #"{"status":302}"#), correlationID: "corr-302",
            ExpectedError(
                status: 502, type: "upstream_error", code: "bad_response", message: "Request failed", retryable: false,
                attempts: 1, upstreamStatus: 302))
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a Retry-After longer than retry.max_retry_after is not waited for: one try, retryable true")
    func retryAfterTooLong() async throws {
        let harness = try await IntegrationHarness.start("err429long", settings: fastRetries)
        let key = "retry-after-\(UUID().uuidString)"
        try harness.expectSingleError(
            json: chatRequest(mock: #"{"status":429,"retry_after":"3600","key":"\#(key)"}"#), correlationID: "corr-429long",
            ExpectedError(
                status: 429, type: "rate_limit_error", code: "rate_limit_exceeded", message: "Rate limit reached",
                retryable: true, attempts: 1, upstreamStatus: 429))
        #expect(harness.mock.requestCount(key: key) == 1)
        #expect(try await harness.shutdown() == 0)
    }

    // MARK: Transport and response failures

    @Test("an upstream that refuses connections gives 502 connection_failed after every try, without upstream_status")
    func connectionFailed() async throws {
        let harness = try await IntegrationHarness.start("errconnect", settings: fastRetries)
        try await harness.mock.shutdown()
        try harness.expectSingleError(
            json: chatRequest(), correlationID: "corr-connect",
            ExpectedError(
                status: 502, type: "upstream_error", code: "connection_failed",
                messagePrefix: "could not reach the upstream API", retryable: true, attempts: 4, upstreamStatus: nil))
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a 200 that is neither JSON nor SSE is a 502 bad_response, not retried")
    func badResponse() async throws {
        let harness = try await IntegrationHarness.start("errbad", settings: fastRetries)
        let key = "bad-\(UUID().uuidString)"
        try harness.expectSingleError(
            json: chatRequest(mock: #"{"bad_response":true,"key":"\#(key)"}"#), correlationID: "corr-bad",
            ExpectedError(
                status: 502, type: "upstream_error", code: "bad_response",
                messagePrefix: "the upstream API returned an unusable response", retryable: false, attempts: 1,
                upstreamStatus: nil))
        #expect(harness.mock.requestCount(key: key) == 1)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a JSON answer larger than upstream.max_response_bytes is a 502 response_too_large")
    func responseTooLarge() async throws {
        let harness = try await IntegrationHarness.start(
            "errlarge", settings: fastRetries.merging(["upstream.max_response_bytes": "1024"]) { $1 })
        try harness.expectSingleError(
            json: chatRequest(mock: #"{"words":600}"#), correlationID: "corr-large",
            ExpectedError(
                status: 502, type: "upstream_error", code: "response_too_large",
                messagePrefix: "the upstream response is larger than the 1024 bytes", retryable: false, attempts: 1,
                upstreamStatus: nil))
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a stream whose events together pass upstream.max_response_bytes ends with 502 response_too_large after its chunks, not retried")
    func streamTooLarge() async throws {
        let harness = try await IntegrationHarness.start(
            "errstreamlarge", settings: fastRetries.merging(["upstream.max_response_bytes": "2048"]) { $1 })
        let key = "streamlarge-\(UUID().uuidString)"
        let replies = try harness.exchange(
            json: chatRequest(stream: true, mock: #"{"words":200,"key":"\#(key)"}"#), correlationID: "corr-streamlarge")
        #expect(replies.count >= 2, "the chunks within the limit are forwarded")
        let chunkBytes = replies.dropLast().reduce(0) { $0 + $1.body.count }
        #expect(chunkBytes <= 2048)
        try expectErrorReply(
            try #require(replies.last),
            ExpectedError(
                status: 502, type: "upstream_error", code: "response_too_large",
                messagePrefix: "the upstream response is larger than the 2048 bytes", retryable: false, attempts: 1,
                upstreamStatus: nil),
            correlationID: "corr-streamlarge", seq: Int64(replies.count - 1))
        #expect(harness.mock.requestCount(key: key) == 1)
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    @Test(
        "a stream without any event is a 502 empty_stream, retryable, attempts = tries made",
        arguments: [
            DirectiveCase("200 event-stream headers, then the end", #"{"empty_stream":true}"#),
            DirectiveCase("only keep-alive comments, then the end", #"{"empty_stream":true,"first_byte_delay_ms":150,"keepalive_ms":30}"#),
        ])
    func emptyStream(_ directives: DirectiveCase) async throws {
        let harness = try await IntegrationHarness.start("errempty", settings: fastRetries)
        let key = "empty-\(UUID().uuidString)"
        let mock = directives.json.dropLast() + #","key":"\#(key)"}"#
        let replies = try harness.exchange(json: chatRequest(stream: true, mock: String(mock)), correlationID: "corr-empty")
        #expect(replies.count == 1, "no chunks before the error")
        // Not retried by the worker (the requester may try again: retryable).
        #expect(harness.mock.requestCount(key: key) == 1)
        try expectErrorReply(
            try #require(replies.first),
            ExpectedError(
                status: 502, type: "upstream_error", code: "empty_stream",
                message: "the upstream stream ended without any data", retryable: true, attempts: 1,
                upstreamStatus: nil),
            correlationID: "corr-empty")
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    /// A stream that ends badly after some chunks: they are forwarded, then
    /// one error reply; the upstream is called once (published chunks are
    /// never retried).
    @Test("a stream that ends badly after chunks gets an error final after them", arguments: [
        StreamEndCase(
            "data: {\"error\":...} inside a stream ends it with a 502 carrying the upstream's code and message",
            label: "errsse", mock: #""stream_error":true"#,
            expected: ExpectedError(
                status: 502, type: "upstream_error", code: "internal_error", message: "Internal error during generation",
                retryable: false, attempts: 1, upstreamStatus: nil)),
        StreamEndCase(
            "a stream that breaks after chunks were published ends with 502 stream_interrupted, not retried",
            label: "errdrop", mock: #""drop_after":2"#,
            expected: ExpectedError(
                status: 502, type: "upstream_error", code: "stream_interrupted",
                messagePrefix: "the upstream stream broke off", retryable: true, attempts: 1, upstreamStatus: nil)),
    ])
    func streamEndsBadlyAfterChunks(_ row: StreamEndCase) async throws {
        let harness = try await IntegrationHarness.start(row.label, settings: fastRetries)
        let key = "\(row.label)-\(UUID().uuidString)"
        let correlationID = "corr-\(row.label)"
        let replies = try harness.exchange(
            json: chatRequest("one two three four five", stream: true, mock: #"{\#(row.mock),"key":"\#(key)"}"#),
            correlationID: correlationID)
        #expect(replies.count >= 2, "the chunks before the failure are forwarded")
        let streamed = try expectChunksThenFinal(replies, correlationID: correlationID)
        #expect(streamed == "Echo: one ", "two content events were sent before the failure")
        try expectErrorReply(
            try #require(replies.last), row.expected, correlationID: correlationID, seq: Int64(replies.count - 1))
        #expect(harness.mock.requestCount(key: key) == 1, "a request with published chunks is never retried")
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    // MARK: Timeouts

    /// No data event before `upstream.first_byte_timeout`: every try times
    /// out, then one error reply (nothing is forwarded, keep-alives included).
    @Test("no first byte in time: first_byte_timeout", arguments: [
        TimeoutCase(
            "no first byte within upstream.first_byte_timeout: retried, then 504 first_byte_timeout",
            label: "errfirstbyte", settings: ["upstream.first_byte_timeout": "0.3"], stream: false,
            mock: #""first_byte_delay_ms":20000"#, tries: 4),
        TimeoutCase(
            "SSE keep-alive comments are not a first byte: a stream of only keep-alives times out",
            label: "errkeepalive", settings: ["upstream.first_byte_timeout": "0.4", "retry.max_attempts": "2"],
            stream: true, mock: #""keepalive_only":true,"keepalive_ms":50"#, tries: 2),
    ])
    func firstByteTimeout(_ row: TimeoutCase) async throws {
        let harness = try await IntegrationHarness.start(row.label, settings: fastRetries.merging(row.settings) { $1 })
        let key = "\(row.label)-\(UUID().uuidString)"
        let correlationID = "corr-\(row.label)"
        let replies = try harness.exchange(
            json: chatRequest(stream: row.stream, mock: #"{\#(row.mock),"key":"\#(key)"}"#), correlationID: correlationID)
        #expect(replies.count == 1, "nothing is forwarded before the error")
        try expectErrorReply(
            try #require(replies.first),
            ExpectedError(
                status: 504, type: "timeout_error", code: "first_byte_timeout",
                message: "timed out waiting for the upstream API to start answering", retryable: true,
                attempts: row.tries, upstreamStatus: nil),
            correlationID: correlationID)
        #expect(harness.mock.requestCount(key: key) == row.tries)
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    /// A stream that stalls after its first chunk: 504 idle_timeout after the
    /// chunks, not retried (chunks went out).
    @Test("a stream that goes quiet: idle_timeout", arguments: [
        TimeoutCase(
            "a stream that stalls longer than upstream.idle_timeout ends with 504 idle_timeout after its chunks",
            label: "erridle", settings: ["upstream.idle_timeout": "0.3"], stream: true, mock: #""interval_ms":20000"#,
            tries: 1),
        TimeoutCase(
            "keep-alive comments during a stall do not reset upstream.idle_timeout",
            label: "erridleka", settings: ["upstream.idle_timeout": "0.4"], stream: true,
            mock: #""interval_ms":20000,"keepalive_ms":50"#, tries: 1),
    ])
    func idleTimeout(_ row: TimeoutCase) async throws {
        let harness = try await IntegrationHarness.start(row.label, settings: fastRetries.merging(row.settings) { $1 })
        let key = "\(row.label)-\(UUID().uuidString)"
        let correlationID = "corr-\(row.label)"
        let replies = try harness.exchange(
            json: chatRequest("one two three", stream: true, mock: #"{\#(row.mock),"key":"\#(key)"}"#),
            correlationID: correlationID, timeout: 10)
        #expect(replies.count >= 2, "the first chunk arrives before the stall")
        try expectChunksThenFinal(replies, correlationID: correlationID)
        try expectErrorReply(
            try #require(replies.last),
            ExpectedError(
                status: 504, type: "timeout_error", code: "idle_timeout", message: "the upstream API stopped sending data",
                retryable: true, attempts: row.tries, upstreamStatus: nil),
            correlationID: correlationID, seq: Int64(replies.count - 1))
        #expect(harness.mock.requestCount(key: key) == row.tries)
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a request running past worker.request_timeout ends with 504 request_timeout")
    func requestTimeout() async throws {
        let harness = try await IntegrationHarness.start(
            "errrequest", settings: fastRetries.merging(["worker.request_timeout": "1"]) { $1 })
        let replies = try harness.exchange(
            json: chatRequest(stream: true, mock: #"{"interval_ms":100,"words":200}"#), correlationID: "corr-request")
        #expect(replies.count >= 2, "chunks flow until the request's time is up")
        try expectChunksThenFinal(replies, correlationID: "corr-request")
        try expectErrorReply(
            try #require(replies.last),
            ExpectedError(
                status: 504, type: "timeout_error", code: "request_timeout", message: "the upstream request took too long",
                retryable: true, attempts: 1, upstreamStatus: nil),
            correlationID: "corr-request", seq: Int64(replies.count - 1))
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("x-deadline-ms already passed: 504 deadline_exceeded, attempts 0, the upstream is not called")
    func deadlineAlreadyPassed() async throws {
        let harness = try await IntegrationHarness.start("errdeadline")
        // A decimal string is a valid form of the header too.
        let replies = try harness.exchange(
            Array(chatRequest().utf8), correlationID: "corr-deadline",
            headers: [("x-deadline-ms", .string(String(unixMilliseconds() - 5000)))])
        #expect(replies.count == 1)
        try expectErrorReply(
            try #require(replies.first),
            ExpectedError(
                status: 504, type: "timeout_error", code: "deadline_exceeded",
                message: "the request's deadline passed before an answer arrived", retryable: false, attempts: 0,
                upstreamStatus: nil),
            correlationID: "corr-deadline")
        #expect(harness.mock.recordedRequests().isEmpty, "a request past its deadline must not reach the upstream")
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("x-deadline-ms passing during the upstream call: 504 deadline_exceeded after one try")
    func deadlineDuringCall() async throws {
        let harness = try await IntegrationHarness.start("errdeadline2", settings: fastRetries)
        let replies = try harness.exchange(
            Array(chatRequest(mock: #"{"first_byte_delay_ms":20000}"#).utf8), correlationID: "corr-deadline2",
            headers: [("x-deadline-ms", .int(unixMilliseconds() + 800))])
        #expect(replies.count == 1)
        try expectErrorReply(
            try #require(replies.first),
            ExpectedError(
                status: 504, type: "timeout_error", code: "deadline_exceeded",
                message: "the request's deadline passed before an answer arrived", retryable: false, attempts: 1,
                upstreamStatus: nil),
            correlationID: "corr-deadline2")
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    // MARK: Requests the worker refuses itself

    @Test("a model outside upstream.models is 404 model_not_found, attempts 0, the upstream is not called")
    func modelNotFound() async throws {
        let harness = try await IntegrationHarness.start(
            "errmodel", settings: ["upstream.models": "deepseek-chat,deepseek-reasoner"])
        try harness.expectSingleError(
            json: chatRequest(model: "gpt-4o"), correlationID: "corr-model",
            ExpectedError(
                status: 404, type: "not_found_error", code: "model_not_found",
                message: #"the model "gpt-4o" does not exist or is not served here"#, param: "model", retryable: false,
                attempts: 0, upstreamStatus: nil))
        #expect(harness.mock.recordedRequests().isEmpty)
        // A listed model still goes through.
        let served = try harness.exchange(json: chatRequest(model: "deepseek-reasoner"), correlationID: "corr-served")
        #expect(served.map(\.type) == ["chat.completion"])
        #expect(try await harness.shutdown() == 0)
    }

    // MARK: Retries that succeed

    @Test("429 on the first tries, then success: one chat.completion, x-seq 0, three upstream calls")
    func rateLimitedThenSuccess() async throws {
        let harness = try await IntegrationHarness.start("retry429", settings: fastRetries)
        let key = "r429-\(UUID().uuidString)"
        let replies = try harness.exchange(
            json: chatRequest("retry me", mock: #"{"fail_first":2,"fail_status":429,"key":"\#(key)"}"#),
            correlationID: "corr-r429")
        #expect(replies.count == 1)
        let reply = try #require(replies.first)
        #expect(reply.type == "chat.completion", "reply: \(reply.text)")
        #expect(reply.seq == 0)
        #expect(reply.attempt == 1)
        #expect(reply.deliveryMode == 2)
        #expect(reply.correlationID == "corr-r429")
        #expect(reply.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: retry me")
        #expect(harness.mock.requestCount(key: key) == 3)
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("503 twice, then success: one chat.completion, mock.requestCount == 3")
    func unavailableTwiceThenSuccess() async throws {
        let harness = try await IntegrationHarness.start("retry503", settings: fastRetries)
        let key = "r503-\(UUID().uuidString)"
        let replies = try harness.exchange(
            json: chatRequest("second time lucky", mock: #"{"fail_first":2,"key":"\#(key)"}"#), correlationID: "corr-r503")
        #expect(replies.count == 1)
        let reply = try #require(replies.first)
        #expect(reply.type == "chat.completion", "reply: \(reply.text)")
        #expect(reply.seq == 0)
        #expect(reply.attempt == 1)
        #expect(reply.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: second time lucky")
        #expect(harness.mock.requestCount(key: key) == 3)
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a stream retried after a 503 starts its chunks at x-seq 0")
    func streamRetriedAfterUnavailable() async throws {
        let harness = try await IntegrationHarness.start("retrystream", settings: fastRetries)
        let key = "rstream-\(UUID().uuidString)"
        let replies = try harness.exchange(
            json: chatRequest("alpha beta gamma", stream: true, mock: #"{"fail_first":1,"key":"\#(key)"}"#),
            correlationID: "corr-rstream")
        #expect(replies.count >= 3)
        let streamed = try expectChunksThenFinal(replies, correlationID: "corr-rstream")
        #expect(streamed == "Echo: alpha beta gamma")
        let final = try #require(replies.last)
        #expect(final.type == "chat.completion", "final: \(final.text)")
        #expect(final.deliveryMode == 2)
        #expect(final.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: alpha beta gamma")
        #expect(harness.mock.requestCount(key: key) == 2)
        #expect(try harness.extraReply() == nil, "exactly one final reply")
        #expect(try await harness.shutdown() == 0)
    }
}
