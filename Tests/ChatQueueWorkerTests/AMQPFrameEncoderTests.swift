@testable import ChatQueueAMQP
import Testing

/// The frames chatqueue writes itself (batched publishing), byte by byte.
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

    @Test("a publish is a method frame, a header frame and body frames no larger than frame_max")
    func publishFrames() {
        let prepared = AMQPPreparedProperties(
            routingKey: "replies.q",
            AMQPOutgoingProperties(contentType: "application/json", persistent: true, headers: [("x-seq", .int(3))]))
        let body = Array("0123456789".utf8)
        var out: [UInt8] = []
        let status = body.withUnsafeBytes {
            AMQPFrameEncoder.appendPublish(
                routingKey: prepared.routingKey, mandatory: true, properties: prepared.properties, body: $0, channel: 1,
                frameMax: 16, to: &out)
        }
        #expect(status == 0)
        let parsed = frames(out)
        #expect(parsed.map(\.type) == [1, 2, 3, 3])
        #expect(parsed.allSatisfy { $0.channel == 1 })
        // basic.publish (60, 40), ticket 0, exchange "", routing key, mandatory bit.
        let routingKey = Array("replies.q".utf8)
        #expect(parsed[0].payload == [0, 60, 0, 40, 0, 0, 0, UInt8(routingKey.count)] + routingKey + [1])
        // Content header: class 60, weight 0, body size 10, then the property flags.
        #expect(Array(parsed[1].payload.prefix(12)) == [0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10])
        #expect(parsed[1].payload.count > 14)
        #expect(parsed[2].payload + parsed[3].payload == body)
        #expect(parsed[2].payload.count == 8)
    }

    @Test("an empty body has no body frame")
    func emptyBody() {
        let prepared = AMQPPreparedProperties(routingKey: "q", AMQPOutgoingProperties(persistent: false, headers: []))
        var out: [UInt8] = []
        let status = [UInt8]().withUnsafeBytes {
            AMQPFrameEncoder.appendPublish(
                routingKey: prepared.routingKey, mandatory: false, properties: prepared.properties, body: $0, channel: 1,
                frameMax: 131072, to: &out)
        }
        #expect(status == 0)
        #expect(frames(out).map(\.type) == [1, 2])
    }
}
