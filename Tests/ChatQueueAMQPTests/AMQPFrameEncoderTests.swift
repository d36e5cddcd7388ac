import CRabbitMQ
import Testing

@testable import ChatQueueAMQP

/// The frames chatqueue writes itself (batched publishing), checked byte by
/// byte and decoded again with rabbitmq-c's own decoders.
@Suite("AMQP frame encoder")
struct AMQPFrameEncoderTests {
    /// Splits `bytes` into (type, channel, payload) frames, checking each envelope.
    private func frames(_ bytes: [UInt8]) -> [(type: UInt8, channel: UInt16, payload: [UInt8])] {
        var result: [(UInt8, UInt16, [UInt8])] = []
        var offset = 0
        while offset < bytes.count {
            let type = bytes[offset]
            let channel = UInt16(bytes[offset + 1]) << 8 | UInt16(bytes[offset + 2])
            let size = bytes[(offset + 3)..<(offset + 7)].reduce(0) { $0 << 8 | Int($1) }
            let payload = Array(bytes[(offset + 7)..<(offset + 7 + size)])
            #expect(bytes[offset + 7 + size] == 0xCE, "frame end octet")
            result.append((type, channel, payload))
            offset += 8 + size
        }
        return result
    }

    private func encodeReply(body: [UInt8], frameMax: Int, routingKey: String = "replies.q") -> ([UInt8], Int32) {
        var out: [UInt8] = []
        let status = body.withUnsafeBytes { bytes in
            AMQPFrameEncoder.appendPublish(
                routingKey: routingKey, mandatory: true, body: bytes, channel: 1, frameMax: frameMax, to: &out
            ) {
                $0.contentType("application/json")
                $0.headers { headers in
                    headers.string("x-request-id", "req-é1")
                    headers.int64("x-seq", -3)
                    headers.int64("x-attempt", 2)
                }
                $0.deliveryMode(2)
                $0.correlationID("corr-9")
                $0.type("chat.completion")
            }
        }
        return (out, status)
    }

    @Test("a publish is a method frame, a header frame and body frames no larger than frame_max")
    func publishFrames() {
        let body = Array("0123456789".utf8)
        let (out, status) = encodeReply(body: body, frameMax: 16)
        #expect(status == 0)
        let parsed = frames(out)
        #expect(parsed.map(\.type) == [1, 2, 3, 3])
        #expect(parsed.allSatisfy { $0.channel == 1 })
        // basic.publish (60, 40), ticket 0, exchange "", routing key, mandatory bit.
        let routingKey = Array("replies.q".utf8)
        #expect(parsed[0].payload == [0, 60, 0, 40, 0, 0, 0, UInt8(routingKey.count)] + routingKey + [1])
        // Content header: class 60, weight 0, body size 10, then the properties.
        #expect(Array(parsed[1].payload.prefix(12)) == [0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10])
        #expect(parsed[2].payload + parsed[3].payload == body)
        #expect(parsed[2].payload.count == 8)
    }

    @Test("rabbitmq-c decodes the method and the properties as written")
    func decodesWithRabbitMQC() throws {
        let (out, _) = encodeReply(body: [1, 2, 3], frameMax: 131072)
        let parsed = frames(out)
        var pool = amqp_pool_t()
        init_amqp_pool(&pool, 4096)
        defer { empty_amqp_pool(&pool) }

        var method = Array(parsed[0].payload.dropFirst(4))
        var decodedMethod: UnsafeMutableRawPointer?
        let methodStatus = method.withUnsafeMutableBytes {
            amqp_decode_method(CQ_BASIC_PUBLISH, &pool, amqp_bytes_t(len: $0.count, bytes: $0.baseAddress), &decodedMethod)
        }
        #expect(methodStatus == 0)
        let publish = try #require(decodedMethod).assumingMemoryBound(to: amqp_basic_publish_t.self).pointee
        #expect(String(amqpBytes: publish.routing_key) == "replies.q")
        #expect(publish.mandatory == 1 && publish.exchange.len == 0)

        var properties = Array(parsed[1].payload.dropFirst(12))
        var decoded: UnsafeMutableRawPointer?
        let status = properties.withUnsafeMutableBytes {
            amqp_decode_properties(60, &pool, amqp_bytes_t(len: $0.count, bytes: $0.baseAddress), &decoded)
        }
        #expect(status == 0)
        let p = try #require(decoded).assumingMemoryBound(to: amqp_basic_properties_t.self).pointee
        #expect(String(amqpBytes: p.content_type) == "application/json")
        #expect(String(amqpBytes: p.correlation_id) == "corr-9")
        #expect(String(amqpBytes: p.type) == "chat.completion")
        #expect(p.delivery_mode == 2)
        #expect(p._flags & CQ_FLAG_HEADERS != 0 && p._flags & CQ_FLAG_REPLY_TO == 0)
        let entries = UnsafeBufferPointer(start: p.headers.entries, count: Int(p.headers.num_entries))
        #expect(entries.map { String(amqpBytes: $0.key) } == ["x-request-id", "x-seq", "x-attempt"])
        #expect(entries[0].value.kind == UInt8(ascii: "S") && String(amqpBytes: entries[0].value.value.bytes) == "req-é1")
        #expect(entries[1].value.kind == UInt8(ascii: "l") && entries[1].value.value.i64 == -3)
        #expect(entries[2].value.value.i64 == 2)
    }

    @Test("an empty body has no body frame")
    func emptyBody() {
        let (out, status) = encodeReply(body: [], frameMax: 131072)
        #expect(status == 0)
        #expect(frames(out).map(\.type) == [1, 2])
    }

    @Test("a routing key over 255 bytes is refused and nothing is appended")
    func longRoutingKey() {
        let (out, status) = encodeReply(body: [1], frameMax: 131072, routingKey: String(repeating: "q", count: 256))
        #expect(status < 0)
        #expect(out.isEmpty)
    }

    @Test("ack, reject and nack frames decode with rabbitmq-c")
    func settlements() throws {
        var out: [UInt8] = []
        AMQPFrameEncoder.appendSettlement(CQ_BASIC_ACK, deliveryTag: 1 << 40, bits: 1, channel: 1, to: &out)
        AMQPFrameEncoder.appendSettlement(CQ_BASIC_REJECT, deliveryTag: 7, bits: 0, channel: 1, to: &out)
        AMQPFrameEncoder.appendSettlement(CQ_BASIC_NACK, deliveryTag: 9, bits: 2, channel: 1, to: &out)
        let parsed = frames(out)
        #expect(parsed.map(\.type) == [1, 1, 1])
        var pool = amqp_pool_t()
        init_amqp_pool(&pool, 4096)
        defer { empty_amqp_pool(&pool) }
        func decode(_ payload: [UInt8]) -> (amqp_method_number_t, UnsafeMutableRawPointer?) {
            let id = payload.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            var arguments = Array(payload.dropFirst(4))
            var decoded: UnsafeMutableRawPointer?
            let status = arguments.withUnsafeMutableBytes {
                amqp_decode_method(id, &pool, amqp_bytes_t(len: $0.count, bytes: $0.baseAddress), &decoded)
            }
            #expect(status == 0)
            return (id, decoded)
        }
        let (ackID, ack) = decode(parsed[0].payload)
        #expect(ackID == CQ_BASIC_ACK)
        let ackMethod = try #require(ack).assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
        #expect(ackMethod.delivery_tag == 1 << 40 && ackMethod.multiple == 1)
        let (rejectID, reject) = decode(parsed[1].payload)
        #expect(rejectID == CQ_BASIC_REJECT)
        let rejectMethod = try #require(reject).assumingMemoryBound(to: amqp_basic_reject_t.self).pointee
        #expect(rejectMethod.delivery_tag == 7 && rejectMethod.requeue == 0)
        let (nackID, nack) = decode(parsed[2].payload)
        #expect(nackID == CQ_BASIC_NACK)
        let nackMethod = try #require(nack).assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
        #expect(nackMethod.delivery_tag == 9 && nackMethod.multiple == 0 && nackMethod.requeue == 1)
    }
}
