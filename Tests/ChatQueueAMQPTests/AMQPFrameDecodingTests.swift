import CRabbitMQ
import Testing

@testable import ChatQueueAMQP

/// Frames as rabbitmq-c hands them over, copied into our types: what it
/// decoded arrives intact, and a frame without its decoded payload is an
/// error, not a trap.
@Suite("Frame decoding")
struct AMQPFrameDecodingTests {
    private func methodFrame(_ id: amqp_method_number_t, decoded: UnsafeMutableRawPointer?) -> amqp_frame_t {
        var frame = amqp_frame_t()
        frame.frame_type = UInt8(AMQP_FRAME_METHOD)
        frame.channel = 1
        frame.payload.method = amqp_method_t(id: id, decoded: decoded)
        return frame
    }

    @Test(
        "a method the worker acts on without its decoded arguments is an unexpected frame",
        arguments: [
            CQ_BASIC_DELIVER, CQ_BASIC_RETURN, CQ_BASIC_ACK, CQ_BASIC_NACK, CQ_BASIC_CANCEL, CQ_BASIC_CANCEL_OK,
            CQ_CHANNEL_CLOSE, CQ_CONNECTION_CLOSE, CQ_CONNECTION_BLOCKED,
        ])
    func methodWithoutArguments(id: amqp_method_number_t) {
        let error = #expect(throws: AMQPError.self) { try AMQPFrame.decoded(from: methodFrame(id, decoded: nil)) }
        #expect(error?.code == .unexpectedFrame)
    }

    @Test("a method without arguments the worker needs none of still decodes (connection.unblocked, connection.close-ok, others)")
    func argumentFreeMethods() throws {
        #expect(try AMQPFrame.decoded(from: methodFrame(CQ_CONNECTION_UNBLOCKED, decoded: nil)) == .method(.connectionUnblocked, channel: 1))
        #expect(try AMQPFrame.decoded(from: methodFrame(0x000A_0033, decoded: nil)) == .method(.connectionCloseOK, channel: 1))
        // channel.close-ok: nothing the worker acts on.
        #expect(try AMQPFrame.decoded(from: methodFrame(0x0014_0029, decoded: nil)) == .method(.other(id: 0x0014_0029), channel: 1))
    }

    @Test("a content header without decoded properties, or of a class other than basic, is an unexpected frame")
    func malformedHeader() {
        var frame = amqp_frame_t()
        frame.frame_type = UInt8(AMQP_FRAME_HEADER)
        frame.channel = 1
        frame.payload.properties.class_id = 60
        frame.payload.properties.body_size = 3
        frame.payload.properties.decoded = nil
        #expect(throws: AMQPError.self) { try AMQPFrame.decoded(from: frame) }

        var properties = amqp_basic_properties_t()
        withUnsafeMutablePointer(to: &properties) { pointer in
            frame.payload.properties.decoded = UnsafeMutableRawPointer(pointer)
            frame.payload.properties.class_id = 10
            let error = #expect(throws: AMQPError.self) { try AMQPFrame.decoded(from: frame) }
            #expect(error?.code == .unexpectedFrame)
            frame.payload.properties.class_id = 60
            #expect(
                (try? AMQPFrame.decoded(from: frame))
                    == .header(bodySize: 3, properties: AMQPMessageProperties(), channel: 1))
        }
    }

    @Test("methods encoded on the wire and decoded by rabbitmq-c come out with their arguments")
    func wireRoundTrip() throws {
        let decoder = RabbitMQDecoder()
        defer { withExtendedLifetime(decoder) {} }  // what it decoded points into its memory
        /// rabbitmq-c's decoding of one method frame's payload, then ours.
        func decode(_ payload: [UInt8]) throws -> AMQPFrame? {
            let (id, decoded) = decoder.method(payload)
            #expect(decoded != nil)
            return try AMQPFrame.decoded(from: methodFrame(id, decoded: decoded))
        }
        var out: [UInt8] = []
        AMQPFrameEncoder.appendSettlement(CQ_BASIC_ACK, deliveryTag: 1 << 40, bits: 1, channel: 1, to: &out)
        #expect(try decode(Array(out[7..<(out.count - 1)])) == .method(.ack(deliveryTag: 1 << 40, multiple: true), channel: 1))
        out = []
        AMQPFrameEncoder.appendSettlement(CQ_BASIC_NACK, deliveryTag: 9, bits: 2, channel: 1, to: &out)
        #expect(
            try decode(Array(out[7..<(out.count - 1)]))
                == .method(.nack(deliveryTag: 9, multiple: false, requeue: true), channel: 1))
    }

    @Test("a body frame is copied out; an empty one is an empty body")
    func bodyFrames() throws {
        var bytes: [UInt8] = [7, 8, 9]
        var frame = amqp_frame_t()
        frame.frame_type = UInt8(AMQP_FRAME_BODY)
        frame.channel = 1
        let decoded = try bytes.withUnsafeMutableBytes { raw in
            frame.payload.body_fragment = amqp_bytes_t(len: raw.count, bytes: raw.baseAddress)
            return try AMQPFrame.decoded(from: frame)
        }
        #expect(decoded == .body([7, 8, 9], channel: 1))
        frame.payload.body_fragment = amqp_bytes_t(len: 0, bytes: nil)
        #expect(try AMQPFrame.decoded(from: frame) == .body([], channel: 1))
    }
}
