import ChatQueueAMQP
import Testing

@testable import ChatQueueWorker

struct RequestMetadataTests {
    private func metadata(_ properties: AMQPMessageProperties, redelivered: Bool = false, defaultQueue: String? = nil)
        -> RequestMetadata
    {
        RequestMetadata(properties: properties, redelivered: redelivered, defaultReplyQueue: defaultQueue) { "generated" }
    }

    @Test("request id: message_id, else correlation_id, else generated; correlation id falls back to it")
    func identity() {
        let both = metadata(AMQPMessageProperties(correlationID: "c", messageID: "m"))
        #expect(both.requestID == "m")
        #expect(both.correlationID == "c")
        let correlationOnly = metadata(AMQPMessageProperties(correlationID: "c"))
        #expect(correlationOnly.requestID == "c")
        let neither = metadata(AMQPMessageProperties())
        #expect(neither.requestID == "generated")
        #expect(neither.correlationID == "generated")
    }

    @Test("reply target: reply_to, else replies.default_queue, else none")
    func replyTarget() {
        #expect(metadata(AMQPMessageProperties(replyTo: "q"), defaultQueue: "d").replyTo == "q")
        #expect(metadata(AMQPMessageProperties(), defaultQueue: "d").replyTo == "d")
        #expect(metadata(AMQPMessageProperties()).replyTo == nil)
    }

    @Test("attempt: x-delivery-count + 1, else 2 when redelivered, else 1")
    func attempt() {
        #expect(metadata(AMQPMessageProperties(headers: ["x-delivery-count": .int(2)])).attempt == 3)
        #expect(metadata(AMQPMessageProperties(), redelivered: true).attempt == 2)
        #expect(metadata(AMQPMessageProperties()).attempt == 1)
    }

    @Test("x-deadline-ms: integers of any width or decimal strings; anything else is invalid")
    func deadline() {
        #expect(metadata(AMQPMessageProperties(headers: ["x-deadline-ms": .int(1_700_000_000_000)])).deadlineMilliseconds == 1_700_000_000_000)
        #expect(metadata(AMQPMessageProperties(headers: ["x-deadline-ms": .string("42")])).deadlineMilliseconds == 42)
        let invalid = metadata(AMQPMessageProperties(headers: ["x-deadline-ms": .string("tomorrow")]))
        #expect(invalid.invalidDeadline)
        #expect(invalid.deadlineMilliseconds == nil)
    }
}
