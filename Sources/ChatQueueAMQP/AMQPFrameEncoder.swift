import CRabbitMQ

/// Encodes AMQP 0-9-1 frames into a byte buffer, so a batch of messages can
/// be written with one system call: `amqp_basic_publish` makes three (method,
/// header and body frame, each its own send). The method arguments and the
/// properties are encoded by rabbitmq-c's own `amqp_encode_method` /
/// `amqp_encode_properties`; only the frame envelope is written here:
/// type (1 byte), channel (2), payload size (4, big-endian), payload, 0xCE.
enum AMQPFrameEncoder {
    static let methodFrame: UInt8 = 1
    static let headerFrame: UInt8 = 2
    static let bodyFrame: UInt8 = 3
    static let frameEnd: UInt8 = 0xCE
    /// Type, channel and size in front of the payload, the end octet after it.
    static let envelopeSize = 8
    static let basicClass: UInt16 = 60

    /// Appends a `basic.publish` through the default exchange: method frame,
    /// content header frame, and the body in frames of at most `frameMax` bytes.
    static func appendPublish(
        routingKey: amqp_bytes_t, mandatory: Bool, properties: UnsafeMutablePointer<amqp_basic_properties_t>,
        body: UnsafeRawBufferPointer, channel: UInt16, frameMax: Int, to out: inout [UInt8]
    ) -> Int32 {
        var method = amqp_basic_publish_t(
            ticket: 0, exchange: amqp_empty_bytes, routing_key: routingKey, mandatory: mandatory ? 1 : 0, immediate: 0)
        var status = appendFrame(methodFrame, channel: channel, to: &out) { out in
            append(UInt32(CQ_BASIC_PUBLISH), to: &out)
            return appendEncoded(to: &out) { amqp_encode_method(CQ_BASIC_PUBLISH, &method, $0) }
        }
        guard status >= 0 else { return status }
        status = appendFrame(headerFrame, channel: channel, to: &out) { out in
            append(basicClass, to: &out)
            append(UInt16(0), to: &out)  // weight
            append(UInt64(body.count), to: &out)
            return appendEncoded(to: &out) { amqp_encode_properties(basicClass, properties, $0) }
        }
        guard status >= 0 else { return status }
        let piece = max(frameMax - envelopeSize, 1)
        var offset = 0
        while offset < body.count {
            let end = min(offset + piece, body.count)
            _ = appendFrame(bodyFrame, channel: channel, to: &out) { out in
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: body[offset..<end]))
                return 0
            }
            offset = end
        }
        return 0
    }

    /// Appends one frame whose payload `payload` appends (returning a negative
    /// rabbitmq-c status on failure, which removes the partial frame).
    static func appendFrame(
        _ type: UInt8, channel: UInt16, to out: inout [UInt8], payload: (inout [UInt8]) -> Int32
    ) -> Int32 {
        let start = out.count
        out.append(type)
        append(channel, to: &out)
        append(UInt32(0), to: &out)  // size, patched below
        let status = payload(&out)
        guard status >= 0 else {
            out.removeLast(out.count - start)
            return status
        }
        let size = UInt32(out.count - start - 7)
        out[start + 3] = UInt8(truncatingIfNeeded: size >> 24)
        out[start + 4] = UInt8(truncatingIfNeeded: size >> 16)
        out[start + 5] = UInt8(truncatingIfNeeded: size >> 8)
        out[start + 6] = UInt8(truncatingIfNeeded: size)
        out.append(frameEnd)
        return 0
    }

    /// Lets a rabbitmq-c encoder write into room reserved at the end of `out`
    /// (it returns the bytes written, or a negative status when the room is
    /// too small: then it is tried once more with 64 KiB).
    private static func appendEncoded(to out: inout [UInt8], _ encode: (amqp_bytes_t) -> Int32) -> Int32 {
        for room in [1024, 65536] {
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: room))
            let written = out.withUnsafeMutableBytes { buffer in
                encode(amqp_bytes_t(len: room, bytes: buffer.baseAddress! + start))
            }
            if written >= 0 {
                out.removeLast(room - Int(written))
                return 0
            }
            out.removeLast(room)
            if written != Int32(AMQP_STATUS_BAD_AMQP_DATA.rawValue) && written != Int32(AMQP_STATUS_TABLE_TOO_BIG.rawValue) {
                return written
            }
        }
        return Int32(AMQP_STATUS_TABLE_TOO_BIG.rawValue)
    }

    static func append<Integer: FixedWidthInteger>(_ value: Integer, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }
}
