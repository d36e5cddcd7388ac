import ChatQueueAMQP
import ChatQueueCore
import Foundation
import Testing

/// A reply queue that refuses messages (`x-max-length` 0 with
/// `x-overflow: reject-publish`): the broker nacks the final reply. The worker
/// publishes it again a bounded number of times without calling the upstream
/// again, then dead-letters the request, and goes idle: no requeue loop.
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

    @Test("a completion the broker refuses is published 3 times, then the request is dead-lettered; the upstream is called once")
    func refusedCompletion() async throws {
        let harness = try await IntegrationHarness.start("refusedfinal", settings: ["replies.allowed_queues": "test.refusing.*"])
        let replyQueue = try refusingQueue(harness)
        let key = "refused-\(UUID().uuidString)"
        try harness.publish(Array(chatRequest(mock: #"{"key":"\#(key)"}"#).utf8), replyTo: replyQueue, correlationID: "refused")
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: 1, timeout: 30) == 1)
        #expect(harness.mock.requestCount(key: key) == 1, "the upstream was called again for a refused final")
        #expect(try harness.messageCount(harness.queue) == 0, "the request went back to the queue")
        #expect(try await harness.worker.waitForMetric("chatqueue_final_republishes_total", atLeast: 2, timeout: 5) == 2)
        #expect(try await harness.worker.waitForMetric("chatqueue_final_refused_total", atLeast: 1, timeout: 5) == 1)
        // Settled: a new request is served normally afterwards.
        let replies = try harness.exchange(json: chatRequest("after"))
        #expect(replies.last?.type == "chat.completion")
        #expect(harness.mock.requestCount(key: key) == 1)
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
