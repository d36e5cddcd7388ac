import ChatQueueAMQP
import Testing

/// Deliveries assembled from single frames, as the worker reads them without blocking.
@Suite("AMQP content assembly")
struct ContentAssemblerTests {
    let deliver = AMQPMethod.deliver(consumerTag: "t", deliveryTag: 7, redelivered: false, exchange: "", routingKey: "q")

    @Test("method, header and split body frames make one message")
    func assemblesSplitBody() throws {
        var assembler = ContentAssembler(maxBodyBytes: 100)
        #expect(try assembler.handle(.method(deliver, channel: 1)) == nil)
        #expect(try assembler.handle(.header(bodySize: 5, properties: AMQPMessageProperties(replyTo: "r"), channel: 1)) == nil)
        #expect(assembler.isMidMessage)
        #expect(try assembler.handle(.body(Array("he".utf8), channel: 1)) == nil)
        let output = try assembler.handle(.body(Array("llo".utf8), channel: 1))
        guard case .message(let message) = output else {
            Issue.record("expected a message, got \(String(describing: output))")
            return
        }
        #expect(message.body == Array("hello".utf8))
        #expect(message.properties.replyTo == "r")
        #expect(!message.truncated)
        #expect(!assembler.isMidMessage)
    }

    @Test("an empty body completes at the header")
    func emptyBody() throws {
        var assembler = ContentAssembler(maxBodyBytes: 100)
        _ = try assembler.handle(.method(deliver, channel: 1))
        let output = try assembler.handle(.header(bodySize: 0, properties: AMQPMessageProperties(), channel: 1))
        guard case .message(let message) = output else {
            Issue.record("expected a message")
            return
        }
        #expect(message.body.isEmpty)
    }

    @Test("a body over the limit is read to its end but not kept")
    func oversizedBody() throws {
        var assembler = ContentAssembler(maxBodyBytes: 4)
        _ = try assembler.handle(.method(deliver, channel: 1))
        _ = try assembler.handle(.header(bodySize: 10, properties: AMQPMessageProperties(), channel: 1))
        #expect(try assembler.handle(.body(Array(repeating: 1, count: 6), channel: 1)) == nil)
        guard case .message(let message) = try assembler.handle(.body(Array(repeating: 1, count: 4), channel: 1)) else {
            Issue.record("expected a message")
            return
        }
        #expect(message.truncated)
        #expect(message.body.isEmpty)
        #expect(message.bodySize == 10)
    }

    @Test("an announced body size of UInt64.max is truncated, never converted or summed past its bounds")
    func hugeAnnouncedSize() throws {
        var assembler = ContentAssembler(maxBodyBytes: 4)
        _ = try assembler.handle(.method(deliver, channel: 1))
        #expect(try assembler.handle(.header(bodySize: .max, properties: AMQPMessageProperties(), channel: 1)) == nil)
        #expect(try assembler.handle(.body(Array(repeating: 1, count: 6), channel: 1)) == nil)
        #expect(assembler.isMidMessage)
    }

    @Test("methods without content pass straight through")
    func plainMethods() throws {
        var assembler = ContentAssembler(maxBodyBytes: 4)
        #expect(try assembler.handle(.method(.ack(deliveryTag: 3, multiple: true), channel: 1)) == .method(.ack(deliveryTag: 3, multiple: true), channel: 1))
    }

    @Test("a body frame without a delivery is a protocol error")
    func outOfOrder() {
        var assembler = ContentAssembler(maxBodyBytes: 4)
        #expect(throws: AMQPError.self) { try assembler.handle(.body([1], channel: 1)) }
    }
}
