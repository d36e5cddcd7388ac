import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// The wire contract beyond the happy path: what reaches the upstream, the
/// credentials, reply routing, request identity and behaviour under load.
@Suite("Wire contract", .serialized)
struct ContractTests {
    @Test("request bodies reach the upstream byte for byte: unknown fields, odd whitespace, unicode, escapes")
    func bodyPassthrough() async throws {
        let harness = try await IntegrationHarness.start("passthrough")
        let bodies = [
            "{ \"model\" :\t\"deepseek-chat\",\r\n  \"messages\":[ {\"role\":\"system\",\"content\":\"日本語で ✓\"} ,\n"
                + "   {\"role\" : \"user\", \"content\":\"héllo wörld 🌍 \\u00e9\\n\\\"quoted\\\" \\ud83d\\ude80\"}],\n"
                + "  \"x_unknown\": {\"nested\": [1, 2.50, -0.0, 1E+3, true, null, {}], \"emoji\":\"🚀\"},\n"
                + "  \"temperature\": 0.70 , \"seed\": 42e-0 ,\"stream\" : false  }\n\n  ",
            "{\"stream\":true,\"messages\":[{\"content\":\"ünïcödé ⟨stream⟩\",\"role\":\"user\",\"name\":\"x\"}],"
                + "\"model\":\"deepseek-chat\",\"stream_options\":{\"include_usage\":true},\"thinking\":{\"type\":\"disabled\"}}",
        ]
        let sent = bodies.map { Array($0.utf8) }

        let nonStream = try harness.exchange(sent[0], correlationID: "corr-pass-1")
        #expect(nonStream.map(\.type) == ["chat.completion"], "replies: \(nonStream.map(\.text))")
        #expect(
            nonStream.last?.json?["choices"]?[0]?["message"]?["content"]?.stringValue
                == "Echo: héllo wörld 🌍 é\n\"quoted\" 🚀")
        let stream = try harness.exchange(sent[1], correlationID: "corr-pass-2")
        #expect(stream.last?.type == "chat.completion", "replies: \(stream.map(\.text))")
        #expect(try expectChunksThenFinal(stream, correlationID: "corr-pass-2") == "Echo: ünïcödé ⟨stream⟩")

        let recorded = harness.mock.recordedRequests()
        #expect(recorded.count == 2)
        for (request, body) in zip(recorded, sent) {
            #expect(request.method == "POST")
            #expect(request.path == "/chat/completions")
            #expect(request.body == body, "upstream got:\n\(request.bodyText)\nsent:\n\(String(decoding: body, as: UTF8.self))")
            #expect(request.header("content-type") == "application/json")
            #expect(request.header("authorization") == nil, "no API key configured, no Authorization header")
        }
        #expect(try await harness.shutdown() == 0)
    }

    @Test("CHATQUEUE_UPSTREAM_API_KEY is sent as Authorization: Bearer and never written to the debug log")
    func apiKeyHeaderAndSecrecy() async throws {
        let key = "sk-integration-7f3a9c1e5b2d4068"
        var mockOptions = MockUpstreamOptions()
        mockOptions.requireAPIKey = key
        let harness = try await IntegrationHarness.start(
            "apikey", mockOptions: mockOptions, environment: ["CHATQUEUE_UPSTREAM_API_KEY": key])
        let replies = try harness.exchange(json: chatRequest("with a key"), correlationID: "corr-key")
        #expect(replies.map(\.type) == ["chat.completion"], "replies: \(replies.map(\.text))")
        let streamed = try harness.exchange(json: chatRequest("streamed", stream: true), correlationID: "corr-key-stream")
        #expect(streamed.last?.type == "chat.completion")
        // An error path too: whatever is logged about failures must not include the key.
        let failed = try harness.exchange(json: chatRequest(mock: #"{"status":400}"#), correlationID: "corr-key-error")
        #expect(failed.last?.type == "error")

        let recorded = harness.mock.recordedRequests()
        #expect(recorded.count == 3)
        for request in recorded {
            #expect(request.header("authorization") == "Bearer \(key)")
        }
        #expect(try await harness.shutdown() == 0)
        let log = harness.worker.log
        #expect(log.contains("request received"), "the worker must have logged at debug level:\n\(log)")
        #expect(!log.contains(key), "the API key leaked into the log:\n\(log)")
        #expect(!log.contains(String(key.dropFirst(3))), "part of the API key leaked into the log:\n\(log)")
    }

    @Test("replies reach a requester using RabbitMQ direct reply-to")
    func directReplyTo() async throws {
        let harness = try await IntegrationHarness.start("directreply", directReplyTo: true)
        #expect(harness.requester.replyTo == Requester.directReplyTo)
        let stream = try harness.exchange(json: chatRequest("direct one two", stream: true), correlationID: "corr-direct-s")
        #expect(try expectChunksThenFinal(stream, correlationID: "corr-direct-s") == "Echo: direct one two")
        #expect(stream.last?.type == "chat.completion")
        let single = try harness.exchange(json: chatRequest("direct"), correlationID: "corr-direct")
        #expect(single.map(\.type) == ["chat.completion"])
        #expect(single.first?.correlationID == "corr-direct")
        #expect(single.first?.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: direct")
        let error = try harness.exchange(json: "[]", correlationID: "corr-direct-error")
        #expect(error.map(\.type) == ["error"])
        #expect(try harness.extraReply() == nil)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("request identity: message_id is x-request-id; correlation_id echoed, else the request id; else a UUID")
    func requestIdentity() async throws {
        let harness = try await IntegrationHarness.start("identity")
        let body = Array(chatRequest().utf8)

        let both = try #require(try harness.exchange(body, correlationID: "corr-1", messageID: "msg-1").last)
        #expect(both.type == "chat.completion")
        #expect(both.requestID == "msg-1")
        #expect(both.correlationID == "corr-1")

        // message_id only: it is echoed as correlation_id and is the error's request_id.
        let errorBody = Array(chatRequest(mock: #"{"status":404}"#).utf8)
        let messageOnly = try #require(try harness.exchange(errorBody, messageID: "msg-2").last)
        #expect(messageOnly.type == "error")
        #expect(messageOnly.requestID == "msg-2")
        #expect(messageOnly.correlationID == "msg-2")
        #expect(messageOnly.json?["request_id"]?.stringValue == "msg-2")

        let correlationOnly = try #require(try harness.exchange(body, correlationID: "corr-3").last)
        #expect(correlationOnly.requestID == "corr-3")
        #expect(correlationOnly.correlationID == "corr-3")

        let anonymous = try #require(try harness.exchange(errorBody).last)
        let generated = try #require(anonymous.requestID)
        #expect(UUID(uuidString: generated) != nil, "a generated request id is a UUID, got \(generated)")
        #expect(generated == generated.lowercased())
        #expect(anonymous.correlationID == generated)
        #expect(anonymous.json?["request_id"]?.stringValue == generated)
        let again = try #require(try harness.exchange(errorBody).last)
        #expect(again.requestID != generated, "each request gets its own id")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("100 concurrent requests, stream and not: each gets consecutive chunks from x-seq 0 and exactly one final, last")
    func hundredConcurrentRequests() async throws {
        let harness = try await IntegrationHarness.start("concurrent")
        let count = 100
        var expectedText: [String: String] = [:]
        var streaming: [String: Bool] = [:]
        for index in 0..<count {
            let id = "req-\(index)"
            let words = (0...(index % 5)).map { "w\(index)x\($0)" }.joined(separator: " ")
            expectedText[id] = "Echo: " + words
            streaming[id] = index % 2 == 0
            try harness.requester.send(
                to: harness.queue, body: Array(chatRequest(words, stream: index % 2 == 0).utf8), correlationID: id,
                messageID: id)
        }

        var repliesByID: [String: [ReceivedReply]] = [:]
        var finals = 0
        let deadline = Date().addingTimeInterval(120)
        while finals < count {
            let left = deadline.timeIntervalSinceNow
            guard left > 0, let reply = try harness.requester.nextReply(timeout: left) else {
                Issue.record("only \(finals) of \(count) finals arrived; worker log:\n\(harness.worker.log)")
                break
            }
            let id = reply.correlationID ?? "?"
            repliesByID[id, default: []].append(reply)
            if reply.isFinal { finals += 1 }
        }
        #expect(try harness.extraReply() == nil, "no reply after the last final")

        #expect(Set(repliesByID.keys) == Set(expectedText.keys))
        for (id, replies) in repliesByID.sorted(by: { $0.key < $1.key }) {
            #expect(replies.filter(\.isFinal).count == 1, "\(id): \(replies.map(\.type))")
            #expect(replies.last?.type == "chat.completion", "\(id): final is \(replies.last?.type ?? "-"), \(replies.last?.text ?? "")")
            #expect(replies.allSatisfy { $0.requestID == id })
            if streaming[id] == true {
                #expect(replies.count >= 3, "\(id): a stream has chunks")
                #expect(try expectChunksThenFinal(replies, correlationID: id) == expectedText[id], "\(id)")
            } else {
                #expect(replies.count == 1, "\(id): a non-stream request gets no chunks")
                #expect(replies.first?.seq == 0)
            }
            #expect(replies.last?.json?["choices"]?[0]?["message"]?["content"]?.stringValue == expectedText[id], "\(id)")
        }
        #expect(harness.mock.recordedRequests().count == count, "one upstream call per request")
        #expect(try harness.messageCount(harness.queue) == 0)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a reply to a deleted reply queue is counted as unroutable; the request is still acked and the worker serves on")
    func deletedReplyQueue() async throws {
        let gone = IntegrationEnvironment.uniqueQueueName("gone")
        let harness = try await IntegrationHarness.start("gonequeue", settings: ["replies.allowed_queues": gone])
        let admin = try AMQPConnection(options: IntegrationEnvironment.brokerOptions(name: "test gone queue"))
        try admin.declareQueue(gone, durable: false, exclusive: false, autoDelete: false)
        try admin.deleteQueue(gone)
        admin.close()

        // A stream: every chunk and the final come back unroutable.
        try harness.requester.send(
            to: harness.queue, body: Array(chatRequest("into the void", stream: true).utf8), correlationID: "corr-gone",
            messageID: "msg-gone", replyTo: gone)
        // Every chunk and then the final came back: each is counted, none is fatal.
        func everyReplyReturned(_ status: JSONValue) -> Bool {
            let chunks = status["chunks_published"]?.integerValue ?? 0
            return chunks > 0 && status["requests"]?["unroutable_replies"]?.integerValue == chunks + 1
                && status["requests"]?["succeeded"]?.integerValue == 1
        }
        let returned = try await harness.worker.waitForStatus(timeout: 30, until: everyReplyReturned)
        #expect(returned.map(everyReplyReturned) == true, "the returned replies must be counted: \(String(describing: returned))")

        // Still serving.
        let replies = try harness.exchange(json: chatRequest("still there"), correlationID: "corr-after")
        #expect(replies.map(\.type) == ["chat.completion"])
        #expect(replies.first?.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: still there")

        // Acked, not left unacked or dead-lettered: after the worker is gone nothing returns to the queue.
        #expect(harness.worker.stop() == 0)
        #expect(try harness.messageCount(harness.queue) == 0, "the request was not acknowledged")
        #expect(try harness.messageCount(harness.deadLetterQueue) == 0)
        #expect(harness.worker.status?["broker"]?["reconnects"]?.integerValue == 0, "the connection was lost:\n\(harness.worker.log)")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("non-stream answers are published without the upstream's blank-line padding")
    func paddingStripped() async throws {
        let harness = try await IntegrationHarness.start("padding")
        let replies = try harness.exchange(
            json: chatRequest("padded", mock: #"{"pad_lines":5,"first_byte_delay_ms":300,"keepalive_ms":50}"#),
            correlationID: "corr-pad")
        let reply = try #require(replies.first)
        #expect(replies.count == 1)
        #expect(reply.type == "chat.completion")
        #expect(reply.body.first == UInt8(ascii: "{"), "body starts with \(reply.text.prefix(10).debugDescription)")
        #expect(reply.body.last == UInt8(ascii: "}"))
        #expect(reply.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: padded")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("SSE keep-alive comments and [DONE] are not forwarded as chunks")
    func keepalivesNotForwarded() async throws {
        let harness = try await IntegrationHarness.start("sseclean")
        let replies = try harness.exchange(
            json: chatRequest("a b c", stream: true, mock: #"{"first_byte_delay_ms":200,"interval_ms":60,"keepalive_ms":15}"#),
            correlationID: "corr-sse")
        #expect(try expectChunksThenFinal(replies, correlationID: "corr-sse") == "Echo: a b c")
        #expect(replies.last?.type == "chat.completion")
        for chunk in replies.dropLast() {
            #expect(chunk.body.first == UInt8(ascii: "{"), "chunk: \(chunk.text.debugDescription)")
            #expect(!chunk.text.contains("keep-alive") && !chunk.text.contains("[DONE]"))
        }
        #expect(try await harness.shutdown() == 0)
    }
}
