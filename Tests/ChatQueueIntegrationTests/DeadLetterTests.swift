import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// One way a request can be invalid, with the error it must get.
struct InvalidFieldCase: Sendable, CustomTestStringConvertible {
    var body: String
    var param: String
    var message: String
    var testDescription: String { param }
}

/// Invalid requests get their error reply and land in `<queue>.dead`; a
/// request with nowhere to reply lands there unanswered (docs/protocol.md
/// "Delivery guarantees").
@Suite("Dead-lettering", .serialized)
struct DeadLetterTests {
    /// The invalid-request error for `code`: 400 (413 for size), never retryable, upstream not called.
    private static func invalid(
        _ code: String, status: Int = 400, message: String? = nil, messagePrefix: String? = nil, param: String? = nil
    ) -> ExpectedError {
        ExpectedError(
            status: status, type: "invalid_request_error", code: code, message: message, messagePrefix: messagePrefix,
            param: param, retryable: false, attempts: 0, upstreamStatus: nil)
    }

    /// Reads the dead-lettered messages (consuming them) through the requester's connection.
    private static func takeDeadLetters(_ harness: IntegrationHarness, count: Int) throws -> [ReceivedReply] {
        _ = try harness.requester.connection.consume(queue: harness.deadLetterQueue, noAck: true)
        var letters: [ReceivedReply] = []
        while letters.count < count, let letter = try harness.requester.nextReply(timeout: 5) { letters.append(letter) }
        return letters
    }

    @Test("invalid JSON: 400 invalid_json reply, then the request, unchanged, in the dead-letter queue")
    func invalidJSON() async throws {
        let harness = try await IntegrationHarness.start("dlqjson")
        let body = Array(#"{"model":"deepseek-chat","messages":["#.utf8)
        let replies = try harness.exchange(body, correlationID: "corr-json", messageID: "msg-json")
        #expect(replies.count == 1)
        try expectErrorReply(
            try #require(replies.first), Self.invalid("invalid_json", messagePrefix: "request body is not valid JSON"),
            correlationID: "corr-json", requestID: "msg-json")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1) == 1)
        #expect(try harness.messageCount(harness.queue) == 0)
        let letters = try Self.takeDeadLetters(harness, count: 1)
        #expect(letters.count == 1)
        #expect(letters.first?.body == body, "the dead letter is the original request")
        #expect(letters.first?.correlationID == "corr-json")
        #expect(harness.mock.recordedRequests().isEmpty)
        #expect(try harness.extraReply() == nil)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a body that is JSON but not an object, or not UTF-8, is invalid_json and dead-lettered")
    func invalidJSONShapes() async throws {
        let harness = try await IntegrationHarness.start("dlqshape")
        let notObject = try harness.exchange(Array(#"["model","deepseek-chat"]"#.utf8), correlationID: "corr-array")
        try expectErrorReply(
            try #require(notObject.first), Self.invalid("invalid_json", message: "request body must be a JSON object"),
            correlationID: "corr-array")
        var latin1 = Array(#"{"model":"deepseek-chat","messages":[{"role":"user","content":"caf"#.utf8)
        latin1 += [0xE9] + Array(#""}]}"#.utf8)
        let notUTF8 = try harness.exchange(latin1, correlationID: "corr-latin1")
        try expectErrorReply(try #require(notUTF8.first), Self.invalid("invalid_json"), correlationID: "corr-latin1")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 2) == 2)
        #expect(harness.mock.recordedRequests().isEmpty)
        #expect(try await harness.shutdown() == 0)
    }

    @Test(
        "a field failing its check is 400 invalid_field naming the field, and dead-lettered",
        arguments: [
            InvalidFieldCase(
                body: #"{"model":"deepseek-chat","messages":[{"content":"no role"}]}"#, param: "messages[0].role",
                message: "messages[0].role must be a string"),
            InvalidFieldCase(
                body: #"{"model":"deepseek-chat","messages":[{"role":"user","content":"a"},42]}"#, param: "messages[1]",
                message: "messages[1] must be an object"),
            InvalidFieldCase(
                body: #"{"messages":[{"role":"user","content":"a"}]}"#, param: "model", message: "model is required"),
            InvalidFieldCase(
                body: #"{"model":"deepseek-chat","messages":[{"role":"user","content":"a"}],"temperature":2.5}"#,
                param: "temperature", message: "temperature must be a number between 0 and 2"),
        ])
    func invalidField(_ invalid: InvalidFieldCase) async throws {
        let harness = try await IntegrationHarness.start("dlqfield")
        let replies = try harness.exchange(json: invalid.body, correlationID: "corr-field")
        #expect(replies.count == 1)
        try expectErrorReply(
            try #require(replies.first), Self.invalid("invalid_field", message: invalid.message, param: invalid.param),
            correlationID: "corr-field")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1) == 1)
        #expect(harness.mock.recordedRequests().isEmpty)
        #expect(try harness.extraReply() == nil)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("an x-deadline-ms header that is not an integer is invalid_field x-deadline-ms, dead-lettered")
    func invalidDeadlineHeader() async throws {
        let harness = try await IntegrationHarness.start("dlqdeadline")
        let replies = try harness.exchange(
            Array(chatRequest().utf8), correlationID: "corr-deadline", headers: [("x-deadline-ms", .string("tomorrow"))])
        #expect(replies.count == 1)
        try expectErrorReply(
            try #require(replies.first), Self.invalid("invalid_field", param: "x-deadline-ms"), correlationID: "corr-deadline")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1) == 1)
        #expect(harness.mock.recordedRequests().isEmpty)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("an unsupported content_type is 400 unsupported_content_type, dead-lettered")
    func unsupportedContentType() async throws {
        let harness = try await IntegrationHarness.start("dlqctype")
        let replies = try harness.exchange(Array(chatRequest().utf8), correlationID: "corr-ctype", contentType: "text/plain")
        #expect(replies.count == 1)
        try expectErrorReply(
            try #require(replies.first),
            Self.invalid(
                "unsupported_content_type", message: #"unsupported content type "text/plain"; expected application/json"#),
            correlationID: "corr-ctype")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1) == 1)
        #expect(harness.mock.recordedRequests().isEmpty)
        // application/json with parameters is accepted.
        let accepted = try harness.exchange(
            Array(chatRequest().utf8), correlationID: "corr-charset", contentType: "Application/JSON; charset=utf-8")
        #expect(accepted.map(\.type) == ["chat.completion"])
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a body over worker.max_request_bytes is 413 request_too_large; the dead letter keeps the whole body")
    func requestTooLarge() async throws {
        let harness = try await IntegrationHarness.start("dlqlarge", settings: ["worker.max_request_bytes": "1024"])
        let filler = String(repeating: "x", count: 4000)
        let body = Array(chatRequest(filler).utf8)
        let replies = try harness.exchange(body, correlationID: "corr-large")
        #expect(replies.count == 1)
        try expectErrorReply(
            try #require(replies.first),
            Self.invalid(
                "request_too_large", status: 413,
                message: "request body is \(body.count) bytes, larger than the limit of 1024 bytes"),
            correlationID: "corr-large")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1) == 1)
        let letters = try Self.takeDeadLetters(harness, count: 1)
        #expect(letters.first?.body == body, "the broker dead-letters the original, complete message")
        #expect(harness.mock.recordedRequests().isEmpty)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a request without reply_to (no replies.default_queue) is dead-lettered without any reply")
    func noReplyTo() async throws {
        let harness = try await IntegrationHarness.start("dlqnoreply")
        let body = Array(chatRequest("nobody listens").utf8)
        try harness.publish(body, replyTo: nil, correlationID: "corr-noreply")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1) == 1)
        #expect(try harness.extraReply(within: 1) == nil, "there is nowhere to reply to")
        #expect(harness.mock.recordedRequests().isEmpty, "an unanswerable request must not cost an upstream call")
        let letters = try Self.takeDeadLetters(harness, count: 1)
        #expect(letters.first?.body == body)
        #expect(letters.first?.correlationID == "corr-noreply")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("with replies.default_queue, requests without reply_to are answered there (invalid ones also dead-lettered)")
    func defaultReplyQueue() async throws {
        let defaultQueue = IntegrationEnvironment.uniqueQueueName("defaultreplies")
        let harness = try await IntegrationHarness.start("dlqdefault", settings: ["replies.default_queue": defaultQueue])
        // A reader of the default queue, apart from the harness's requester and its own reply queue.
        let reader = try Requester(options: IntegrationEnvironment.brokerOptions(name: "test default-queue reader"))
        defer { reader.connection.close() }
        try reader.connection.declareQueue(defaultQueue, durable: false, exclusive: true, autoDelete: true)
        _ = try reader.connection.consume(queue: defaultQueue, noAck: true)

        try harness.publish(Array(chatRequest("to whom it may concern").utf8), replyTo: nil, correlationID: "corr-default")
        let answer = try #require(try reader.nextReply(timeout: 30), "no reply in replies.default_queue")
        #expect(answer.type == "chat.completion", "reply: \(answer.text)")
        #expect(answer.correlationID == "corr-default")
        #expect(answer.requestID == "corr-default")
        #expect(answer.seq == 0)
        #expect(answer.deliveryMode == 2)
        #expect(answer.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: to whom it may concern")

        try harness.publish(Array("not json".utf8), replyTo: nil, correlationID: "corr-default-bad")
        let error = try #require(try reader.nextReply(timeout: 30), "no error reply in replies.default_queue")
        try expectErrorReply(error, Self.invalid("invalid_json"), correlationID: "corr-default-bad")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1) == 1)

        #expect(try reader.nextReply(timeout: 0.5) == nil, "exactly one final reply each")
        #expect(try harness.extraReply(within: 0.2) == nil, "nothing goes to the requester's own queue")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("errors that are not about an invalid request (model_not_found, upstream 4xx) are acknowledged, not dead-lettered")
    func answeredErrorsAreAcknowledged() async throws {
        let harness = try await IntegrationHarness.start("dlqack", settings: ["upstream.models": "deepseek-chat"])
        let model = try harness.exchange(json: chatRequest(model: "unknown-model"), correlationID: "corr-model")
        #expect(model.first?.type == "error")
        let upstream = try harness.exchange(json: chatRequest(mock: #"{"status":400}"#), correlationID: "corr-upstream")
        #expect(upstream.first?.type == "error")
        // Settlements go out in order: once this invalid one is dead-lettered, the two above were settled before it.
        _ = try harness.exchange(json: "{", correlationID: "corr-sentinel")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1) == 1)
        let letters = try Self.takeDeadLetters(harness, count: 1)
        #expect(letters.map(\.correlationID) == ["corr-sentinel"])
        #expect(try harness.messageCount(harness.queue) == 0)
        #expect(try await harness.shutdown() == 0)
    }
}
