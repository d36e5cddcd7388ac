import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// What a requester can make a worker do beyond answering it: aim replies at
/// other queues (`replies.allowed_queues`), or route upstream calls through a
/// proxy the worker's environment names (`upstream.proxy`).
@Suite("Requester boundary: allowed reply queues, no implicit proxies")
struct RequesterBoundaryTests {
    /// A queue of "another service", with a consumer-less count the test can check.
    private func declareVictim(_ name: String) throws -> AMQPConnection {
        let admin = try AMQPConnection(options: IntegrationEnvironment.brokerOptions(name: "test victim"))
        try admin.declareQueue(name, durable: false, exclusive: false, autoDelete: false)
        return admin
    }

    @Test("a reply_to outside replies.allowed_queues is dead-lettered unanswered: no upstream call, nothing published there")
    func disallowedReplyTo() async throws {
        let harness = try await IntegrationHarness.start("boundary", settings: ["replies.allowed_queues": "test.allowed.*"])
        let victim = IntegrationEnvironment.uniqueQueueName("victim")
        let admin = try declareVictim(victim)
        defer {
            try? admin.deleteQueue(victim)
            admin.close()
        }
        let body = Array(chatRequest("reply somewhere else", stream: true).utf8)
        try harness.publish(body, replyTo: victim, correlationID: "corr-victim", messageID: "msg-victim")
        // Names that only share the allowed prefix without its separator are refused too.
        try harness.publish(body, replyTo: "test.allowedx", correlationID: "corr-near")

        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 2) == 2)
        #expect(try harness.messageCount(victim) == 0, "a reply was published to another service's queue")
        #expect(harness.mock.recordedRequests().isEmpty, "a refused request must not cost an upstream call")
        #expect(try harness.extraReply(within: 0.5) == nil)

        _ = try harness.requester.connection.consume(queue: harness.deadLetterQueue, noAck: true)
        var letters: [ReceivedReply] = []
        while letters.count < 2, let letter = try harness.requester.nextReply(timeout: 5) { letters.append(letter) }
        #expect(Set(letters.compactMap(\.correlationID)) == ["corr-victim", "corr-near"])
        #expect(letters.allSatisfy { $0.body == body }, "dead-lettered as received")
        // RabbitMQ records why: the worker rejected it. The bodies are valid requests, so their reply_to is
        // what the worker refused: counted as rejected, neither answered nor failed.
        #expect(letters.allSatisfy { $0.headers["x-first-death-reason"]?.stringValue == "rejected" })
        let counted = try await harness.worker.waitForStatus(timeout: 5) { $0["requests"]?["rejected"]?.integerValue == 2 }
        #expect(counted?["requests"]?["rejected"]?.integerValue == 2)
        #expect(counted?["requests"]?["failed"]?.integerValue == 0)
        #expect(counted?["requests"]?["succeeded"]?.integerValue == 0)

        // Still serving allowed requesters.
        let replies = try harness.exchange(json: chatRequest("from an allowed requester"), correlationID: "corr-ok")
        #expect(replies.map(\.type) == ["chat.completion"])
        #expect(try await harness.shutdown() == 0)
    }

    @Test("exact names and prefixes listed in replies.allowed_queues are served")
    func allowedNamedQueues() async throws {
        let exact = IntegrationEnvironment.uniqueQueueName("exactreplies")
        let prefix = IntegrationEnvironment.uniqueQueueName("prefixreplies")
        let harness = try await IntegrationHarness.start(
            "allowednamed", settings: ["replies.allowed_queues": "\(exact), \(prefix).*"])
        let reader = try Requester(options: IntegrationEnvironment.brokerOptions(name: "test named replies"))
        defer { reader.connection.close() }
        for name in [exact, "\(prefix).one"] {
            try reader.connection.declareQueue(name, durable: false, exclusive: true, autoDelete: true)
            _ = try reader.connection.consume(queue: name, noAck: true)
        }
        for (index, name) in [exact, "\(prefix).one"].enumerated() {
            try harness.publish(
                Array(chatRequest("to \(index)").utf8), replyTo: name, correlationID: "corr-\(index)")
            let reply = try #require(try reader.nextReply(timeout: 30), "no reply on \(name):\n\(harness.worker.log)")
            #expect(reply.type == "chat.completion")
            #expect(reply.correlationID == "corr-\(index)")
            #expect(reply.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: to \(index)")
        }
        #expect(try harness.messageCount(harness.deadLetterQueue) == 0)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("server-named reply queues and direct reply-to are served with nothing configured")
    func alwaysAllowedQueues() async throws {
        let harness = try await IntegrationHarness.start("servernamed")
        #expect(harness.requester.replyTo.hasPrefix("amq.gen-"))
        let named = try harness.exchange(json: chatRequest("server-named", stream: true), correlationID: "corr-gen")
        #expect(named.last?.type == "chat.completion")
        #expect(named.count > 1, "chunks and the final")

        let direct = try Requester(
            options: IntegrationEnvironment.brokerOptions(name: "test direct reply-to"), directReplyTo: true)
        defer { direct.connection.close() }
        try direct.send(to: harness.queue, body: Array(chatRequest("direct").utf8), correlationID: "corr-direct")
        let reply = try #require(try direct.nextReply(timeout: 30), "no reply through direct reply-to")
        #expect(reply.type == "chat.completion")
        #expect(reply.correlationID == "corr-direct")
        #expect(try harness.messageCount(harness.deadLetterQueue) == 0)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("http_proxy, HTTPS_PROXY and ALL_PROXY in the worker's environment are not used")
    func environmentProxiesIgnored() async throws {
        let closed = "http://127.0.0.1:9"
        let harness = try await IntegrationHarness.start(
            "envproxy",
            environment: [
                "http_proxy": closed, "HTTP_PROXY": closed, "https_proxy": closed, "HTTPS_PROXY": closed,
                "ALL_PROXY": closed, "all_proxy": closed,
            ])
        let replies = try harness.exchange(json: chatRequest("no detour"), correlationID: "corr-noproxy")
        #expect(replies.map(\.type) == ["chat.completion"], "\(replies.map(\.text))")
        #expect(harness.mock.recordedRequests().count == 1)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("upstream.proxy is used: a closed proxy port fails the call with connection_failed")
    func configuredProxyUsed() async throws {
        let harness = try await IntegrationHarness.start(
            "cfgproxy",
            settings: ["upstream.proxy": "http://127.0.0.1:9", "retry.max_attempts": "1"])
        try harness.expectSingleError(
            json: chatRequest(), correlationID: "corr-proxy",
            ExpectedError(
                status: 502, type: "upstream_error", code: "connection_failed",
                messagePrefix: "could not reach the upstream API", retryable: true, attempts: 1, upstreamStatus: nil))
        #expect(harness.mock.recordedRequests().isEmpty, "the call must go through the proxy, not around it")
        #expect(try await harness.shutdown() == 0)
    }
}
