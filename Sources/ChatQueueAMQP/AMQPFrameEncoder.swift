import CRabbitMQ

/// Encodes AMQP 0-9-1 frames into a byte buffer, so a batch of messages can
/// be written with one system call: `amqp_basic_publish` makes three (method,
/// header and body frame, each its own send). A frame is type (1 byte),
/// channel (2), payload size (4, big-endian), payload, 0xCE (AMQP 0-9-1
/// section 4.2.3); the properties are written by `AMQPPropertiesWriter`.
enum AMQPFrameEncoder {
    static let methodFrame: UInt8 = 1
    static let headerFrame: UInt8 = 2
    static let bodyFrame: UInt8 = 3
    static let frameEnd: UInt8 = 0xCE
    /// Type, channel and size in front of the payload, the end octet after it.
    static let envelopeSize = 8
    static let basicClass: UInt16 = 60

    /// Appends one frame whose payload `payload` appends.
    static func appendFrame(_ type: UInt8, channel: UInt16, to out: inout [UInt8], payload: (inout [UInt8]) -> Void) {
        let start = out.count
        out.append(type)
        append(channel, to: &out)
        append(UInt32(0), to: &out)  // size, patched below
        payload(&out)
        patch(UInt32(out.count - start - 7), at: start + 3, in: &out)
        out.append(frameEnd)
    }

    /// Writes a big-endian size over the placeholder at `offset`.
    static func patch(_ value: UInt32, at offset: Int, in out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes in
            for index in 0..<4 { out[offset + index] = bytes[index] }
        }
    }

    static func append<Integer: FixedWidthInteger>(_ value: Integer, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }
}

/// Writes `basic` content properties straight into a frame being encoded: no
/// `amqp_basic_properties_t`, no table array, no allocation. Properties must
/// be written in the protocol's order (the order of the methods here); the
/// flag word in front of them is patched as they are written.
public struct AMQPPropertiesWriter {
    fileprivate var out: [UInt8]
    private let flagsAt: Int
    private var flags: UInt16 = 0
    /// Set when a string was too long for its field (a short string holds 255 bytes).
    fileprivate private(set) var overflow = false

    /// Takes over `out` (moved, not copied: it may hold a whole batch).
    fileprivate init(taking out: inout [UInt8]) {
        self.out = []
        swap(&self.out, &out)
        flagsAt = self.out.count
        self.out.append(0)
        self.out.append(0)
    }

    private mutating func flag(_ bit: UInt16) {
        precondition(flags & (bit &- 1) == 0, "AMQP properties written out of order")
        flags |= bit
        out[flagsAt] = UInt8(truncatingIfNeeded: flags >> 8)
        out[flagsAt + 1] = UInt8(truncatingIfNeeded: flags)
    }

    private mutating func shortString(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            guard bytes.count <= 255 else {
                overflow = true
                out.append(0)
                return
            }
            out.append(UInt8(bytes.count))
            out.append(contentsOf: bytes)
        }
    }

    public mutating func contentType(_ value: String) {
        flag(1 << 15)
        shortString(value)
    }

    /// The headers table; `entries` appends its fields.
    public mutating func headers(_ entries: (inout AMQPTableWriter) -> Void) {
        flag(1 << 13)
        let lengthAt = out.count
        AMQPFrameEncoder.append(UInt32(0), to: &out)
        var table = AMQPTableWriter(taking: &out)
        entries(&table)
        swap(&out, &table.out)
        overflow = overflow || table.overflow
        AMQPFrameEncoder.patch(UInt32(out.count - lengthAt - 4), at: lengthAt, in: &out)
    }

    /// 1: transient, 2: persistent.
    public mutating func deliveryMode(_ value: UInt8) {
        flag(1 << 12)
        out.append(value)
    }

    public mutating func correlationID(_ value: String) {
        flag(1 << 10)
        shortString(value)
    }

    public mutating func type(_ value: String) {
        flag(1 << 5)
        shortString(value)
    }
}

/// Appends the fields of an AMQP field table (see `AMQPPropertiesWriter.headers`).
public struct AMQPTableWriter {
    fileprivate var out: [UInt8]
    fileprivate private(set) var overflow = false

    fileprivate init(taking out: inout [UInt8]) {
        self.out = []
        swap(&self.out, &out)
    }

    private mutating func key(_ name: StaticString) {
        guard name.utf8CodeUnitCount <= 255 else {
            overflow = true
            return
        }
        out.append(UInt8(name.utf8CodeUnitCount))
        out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    /// A long string ('S').
    public mutating func string(_ name: StaticString, _ value: String) {
        key(name)
        out.append(UInt8(ascii: "S"))
        var value = value
        value.withUTF8 { bytes in
            AMQPFrameEncoder.append(UInt32(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        }
    }

    /// A signed 64-bit integer ('l').
    public mutating func int64(_ name: StaticString, _ value: Int64) {
        key(name)
        out.append(UInt8(ascii: "l"))
        AMQPFrameEncoder.append(value, to: &out)
    }
}

extension AMQPFrameEncoder {
    /// Appends a `basic.publish` through the default exchange: method frame,
    /// content header frame (properties written by `properties`), and the body
    /// in frames of at most `frameMax` bytes. Fails, appending nothing, when
    /// a short string is over 255 bytes.
    static func appendPublish(
        routingKey: String, mandatory: Bool, body: UnsafeRawBufferPointer, channel: UInt16, frameMax: Int,
        to out: inout [UInt8], properties: (inout AMQPPropertiesWriter) -> Void
    ) -> Int32 {
        let start = out.count
        var overflow = false
        var key = routingKey
        appendFrame(methodFrame, channel: channel, to: &out) { out in
            append(UInt32(CQ_BASIC_PUBLISH), to: &out)
            append(UInt16(0), to: &out)  // ticket
            out.append(0)  // exchange: the default one
            key.withUTF8 { bytes in
                overflow = bytes.count > 255
                out.append(UInt8(truncatingIfNeeded: bytes.count))
                out.append(contentsOf: bytes.prefix(255))
            }
            out.append(mandatory ? 1 : 0)
        }
        appendFrame(headerFrame, channel: channel, to: &out) { out in
            append(basicClass, to: &out)
            append(UInt16(0), to: &out)  // weight
            append(UInt64(body.count), to: &out)
            var writer = AMQPPropertiesWriter(taking: &out)
            properties(&writer)
            swap(&out, &writer.out)
            overflow = overflow || writer.overflow
        }
        guard !overflow else {
            out.removeLast(out.count - start)
            return Int32(AMQP_STATUS_BAD_AMQP_DATA.rawValue)
        }
        appendBody(body, channel: channel, frameMax: frameMax, to: &out)
        return 0
    }

    /// basic.ack, basic.reject or basic.nack: the delivery tag and one octet
    /// of flags (ack: multiple; reject: requeue; nack: multiple, requeue).
    static func appendSettlement(
        _ method: amqp_method_number_t, deliveryTag: UInt64, bits: UInt8, channel: UInt16, to out: inout [UInt8]
    ) {
        appendFrame(methodFrame, channel: channel, to: &out) { out in
            append(UInt32(method), to: &out)
            append(deliveryTag, to: &out)
            out.append(bits)
        }
    }

    static func appendBody(_ body: UnsafeRawBufferPointer, channel: UInt16, frameMax: Int, to out: inout [UInt8]) {
        let piece = max(frameMax - envelopeSize, 1)
        var offset = 0
        while offset < body.count {
            let end = min(offset + piece, body.count)
            appendFrame(bodyFrame, channel: channel, to: &out) { out in
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: body[offset..<end]))
            }
            offset = end
        }
    }
}
