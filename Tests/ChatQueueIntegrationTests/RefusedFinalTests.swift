import ChatQueueAMQP
import ChatQueueCore
import Foundation
import Testing

/// Set once from any thread, read from another.
final class ConditionFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// A reply queue that refuses messages (`x-max-length` 0 with
/// `x-overflow: reject-publish`): the broker nacks the final reply. The worker
/// publishes it again a bounded number of times, each time from a new
/// publisher connection, without calling the upstream again, then
/// dead-letters the request, and goes idle: no requeue loop.
@Suite("Refused final replies")
struct RefusedFinalTests {
    /// A reply queue whose every publish the broker refuses.
    private func refusingQueue(_ harness: IntegrationHarness) throws -> String {
        let name = IntegrationEnvironment.uniqueQueueName("refusing")
        try harness.requester.connection.declareQueue(
            name, durable: false, autoDelete: false,
            arguments: [("x-max-length", .int(0)), ("x-overflow", .string("reject-publish"))])
        return name
    }

    @Test("a completion the broker refuses is published 5 times, each refusal moving the replies to a new publisher connection, then the request is dead-lettered; the upstream is called once")
    func refusedCompletion() async throws {
        let harness = try await IntegrationHarness.start("refusedfinal", settings: ["replies.allowed_queues": "test.refusing.*"])
        let replyQueue = try refusingQueue(harness)
        let key = "refused-\(UUID().uuidString)"
        try harness.publish(Array(chatRequest(mock: #"{"key":"\#(key)"}"#).utf8), replyTo: replyQueue, correlationID: "refused")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1, timeout: 30) == 1)
        #expect(harness.mock.requestCount(key: key) == 1, "the upstream was called again for a refused final")
        #expect(try harness.messageCount(harness.queue) == 0, "the request went back to the queue")
        #expect(try await harness.worker.waitForMetric("chatqueue_final_republishes_total", atLeast: 4, timeout: 5) == 4)
        // One move per refusal: they come 1 s or more apart, the most allowed.
        #expect(try await harness.worker.waitForMetric("chatqueue_publisher_replacements_total", atLeast: 5, timeout: 5) == 5)
        #expect(try await harness.worker.waitForMetric("chatqueue_final_refused_total", atLeast: 1, timeout: 5) == 1)
        // Settled: a new request is served normally afterwards.
        let replies = try harness.exchange(json: chatRequest("after"))
        #expect(replies.last?.type == "chat.completion")
        #expect(harness.mock.requestCount(key: key) == 1)
        try harness.requester.connection.deleteQueue(replyQueue)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a refused final has the worker publish on a new connection; once the reply queue takes messages, the final arrives, once, without a new upstream call")
    func refusedThenAccepted() async throws {
        let harness = try await IntegrationHarness.start("refusedrecover", settings: ["replies.allowed_queues": "test.refusing.*"])
        // A reply queue of one message that refuses more (reject-publish), filled
        // with one: it refuses the final until the test purges the filler.
        let replyQueue = IntegrationEnvironment.uniqueQueueName("refusing")
        try harness.requester.connection.declareQueue(
            replyQueue, durable: false, autoDelete: false,
            arguments: [("x-max-length", .int(1)), ("x-overflow", .string("reject-publish"))])
        try harness.requester.connection.publish(
            routingKey: replyQueue, mandatory: true, properties: AMQPOutgoingProperties(type: "filler"), body: [0x2E])
        #expect(try harness.waitForMessageCount(replyQueue, toBe: 1, timeout: 10) == 1)

        let key = "recover-\(UUID().uuidString)"
        // The filler is purged, from a thread of its own, as soon as the worker
        // has replaced its publisher. (Not from this task: other tests may hold
        // the few threads async tests run on for longer than the 15 s the
        // worker keeps trying.)
        let worker = harness.worker
        let purged = ConditionFlag()
        Thread {
            let deadline = Date().addingTimeInterval(20)
            while (worker.metric("chatqueue_publisher_replacements_total") ?? 0) < 1 && Date() < deadline {
                usleep(10_000)
            }
            if let connection = try? AMQPConnection(options: IntegrationEnvironment.brokerOptions(name: "test purger")) {
                if (try? connection.purgeQueue(replyQueue)) != nil { purged.set() }
                connection.close()
            }
        }.start()
        try harness.publish(Array(chatRequest(mock: #"{"key":"\#(key)"}"#).utf8), replyTo: replyQueue, correlationID: "recover")
        // Read the reply queue only after the purge (a consumer would take the filler and make room).
        let purgeDeadline = Date().addingTimeInterval(25)
        while !purged.isSet && Date() < purgeDeadline { usleep(10_000) }
        #expect(purged.isSet, "the filler was not purged")
        var reader = try ReplyReader(connection: AMQPConnection(options: IntegrationEnvironment.brokerOptions()), queue: replyQueue)
        let final = try reader.next(timeout: 30)
        #expect(try await harness.worker.waitForMetric("chatqueue_publisher_replacements_total", atLeast: 1, timeout: 5) ?? 0 >= 1)
        #expect(final?.type == "chat.completion")
        #expect(final?.correlationID == "recover")
        #expect(try reader.next(timeout: 1) == nil, "a second final")
        #expect(try harness.waitForMessageCount(harness.queue, toBe: 0, timeout: 10) == 0)
        #expect(try harness.messageCount(harness.deadLetterQueue) == 0, "dead-lettered although the final got through")
        #expect(harness.mock.requestCount(key: key) == 1, "the upstream was called again for a refused final")
        #expect(try await harness.worker.waitForMetric("chatqueue_requests_total", "outcome=\"succeeded\"", atLeast: 1, timeout: 10) == 1)
        // The new connection serves the next request as usual.
        let replies = try harness.exchange(json: chatRequest("after"))
        #expect(replies.last?.type == "chat.completion")
        try harness.requester.connection.deleteQueue(replyQueue)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("an invalid request whose error reply is refused ends in the dead-letter queue once, without any upstream call")
    func refusedErrorReply() async throws {
        let harness = try await IntegrationHarness.start("refusedinvalid", settings: ["replies.allowed_queues": "test.refusing.*"])
        let replyQueue = try refusingQueue(harness)
        try harness.publish(Array("{not json".utf8), replyTo: replyQueue, correlationID: "refused-invalid")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1, timeout: 30) == 1)
        #expect(try harness.messageCount(harness.queue) == 0)
        #expect(harness.mock.recordedRequests().isEmpty)
        try harness.requester.connection.deleteQueue(replyQueue)
        #expect(try await harness.shutdown() == 0)
    }
}
