/// W3C Trace Context (https://www.w3.org/TR/trace-context/): the
/// `traceparent` and `tracestate` a request brings as AMQP headers, as the
/// OpenTelemetry messaging conventions put them, and the ones the worker
/// passes on (to the upstream as HTTP headers, to the requester on replies).
///
/// Values come from outside: parsing is strict and bounded, and anything
/// invalid is ignored (never forwarded), as the recommendation says.

/// A 16-byte trace id; all zeros is invalid.
public struct TraceID: Hashable, Sendable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public var isValid: Bool { high != 0 || low != 0 }

    /// 32 lowercase hex digits.
    public var hex: String { hexDigits(high) + hexDigits(low) }

    /// A new random id (never all zeros).
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> TraceID {
        var id = TraceID(high: generator.next(), low: generator.next())
        if !id.isValid { id.low = 1 }
        return id
    }
}

/// An 8-byte span id; zero is invalid.
public struct SpanID: Hashable, Sendable {
    public var value: UInt64

    public init(_ value: UInt64) {
        self.value = value
    }

    public var isValid: Bool { value != 0 }

    /// 16 lowercase hex digits.
    public var hex: String { hexDigits(value) }

    /// A new random id (never zero).
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> SpanID {
        let value: UInt64 = generator.next()
        return SpanID(value == 0 ? 1 : value)
    }
}

/// The trace a span belongs to and the span that is the parent of the next.
public struct TraceContext: Hashable, Sendable {
    public var traceID: TraceID
    /// The span new child spans hang from (for an incoming traceparent: the requester's span).
    public var spanID: SpanID
    /// trace-flags; bit 0 is `sampled`.
    public var flags: UInt8
    /// The `tracestate` to pass on unchanged, when it was valid; nil when absent or invalid.
    public var state: String?

    public init(traceID: TraceID, spanID: SpanID, flags: UInt8, state: String? = nil) {
        self.traceID = traceID
        self.spanID = spanID
        self.flags = flags
        self.state = state
    }

    public var isSampled: Bool { flags & 1 == 1 }

    /// The longest `traceparent` read: version 00 is 55 bytes; a later
    /// version may append fields, which are ignored (the spec's forward rule).
    public static let maxTraceparentBytes = 512
    /// The spec's limits: at most 32 list members, 512 bytes is the size
    /// a vendor must propagate; a longer value is dropped whole here.
    public static let maxTracestateBytes = 512
    static let maxTracestateMembers = 32

    /// Parses a `traceparent` (and, when it is valid, a `tracestate`).
    /// Returns nil for anything the spec calls invalid: wrong length or
    /// separators, upper-case or non-hex digits, version ff, an all-zero
    /// trace or span id, version 00 with trailing data. A `tracestate` that
    /// is malformed is dropped while the traceparent is kept.
    public static func parse(traceparent: some Collection<UInt8>, tracestate: (some Collection<UInt8>)?) -> TraceContext? {
        guard traceparent.count >= 55, traceparent.count <= maxTraceparentBytes else { return nil }
        let bytes = Array(traceparent)
        guard let version = hexByte(bytes, 0), version != 0xFF, bytes[2] == UInt8(ascii: "-"),
            let high = hexUInt64(bytes, 3), let low = hexUInt64(bytes, 19), bytes[35] == UInt8(ascii: "-"),
            let span = hexUInt64(bytes, 36), bytes[52] == UInt8(ascii: "-"), let flags = hexByte(bytes, 53)
        else { return nil }
        // Version 00 is exactly 55 bytes; a later version continues with "-".
        if version == 0 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55, bytes[55] != UInt8(ascii: "-") {
            return nil
        }
        let traceID = TraceID(high: high, low: low)
        let spanID = SpanID(span)
        guard traceID.isValid, spanID.isValid else { return nil }
        let state = tracestate.flatMap { validTracestate(Array($0)) }
        // Flags other than `sampled` are not understood by this version: only bit 0 is passed on.
        return TraceContext(traceID: traceID, spanID: spanID, flags: flags & 1, state: state)
    }

    /// The `traceparent` of a child of this context's trace: version 00, this
    /// trace id, `span` as the parent, these flags.
    public func traceparent(span: SpanID) -> String {
        "00-\(traceID.hex)-\(span.hex)-\(hexDigits(flags))"
    }

    /// A `tracestate` kept only when every list member is `key=value` with
    /// the spec's characters, at most 32 members and 512 bytes; empty members
    /// (",,") are allowed and kept as they are.
    static func validTracestate(_ bytes: [UInt8]) -> String? {
        guard !bytes.isEmpty, bytes.count <= maxTracestateBytes else { return nil }
        var members = 0
        var keys: Set<ArraySlice<UInt8>> = []
        for member in bytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            let trimmed = member.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }
            if trimmed.isEmpty { continue }
            let text = Array(trimmed.reversed())
            guard let equals = text.firstIndex(of: UInt8(ascii: "=")), equals > 0 else { return nil }
            let key = text[..<equals]
            let value = text[(equals + 1)...]
            guard isValidKey(key), keys.insert(key).inserted, !value.isEmpty, value.count <= 256,
                value.allSatisfy(isValueByte), value.last != 0x20
            else { return nil }
            members += 1
            guard members <= maxTracestateMembers else { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A list member's key: `simple-key` (lcalpha, then up to 255 of lcalpha,
    /// digits, `_ - * /`), or `tenant@system` (a tenant of 1 to 241 starting
    /// with lcalpha or a digit, a system of 1 to 14 starting with lcalpha).
    private static func isValidKey(_ key: ArraySlice<UInt8>) -> Bool {
        let parts = key.split(separator: UInt8(ascii: "@"), omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            return isKeyPart(key, maxCount: 256, digitFirst: false)
        case 2:
            return isKeyPart(parts[0], maxCount: 241, digitFirst: true)
                && isKeyPart(parts[1], maxCount: 14, digitFirst: false)
        default:
            return false
        }
    }

    private static func isKeyPart(_ part: ArraySlice<UInt8>, maxCount: Int, digitFirst: Bool) -> Bool {
        guard let first = part.first, part.count <= maxCount,
            isLowercase(first) || (digitFirst && isDigit(first))
        else { return false }
        return part.allSatisfy { isLowercase($0) || isDigit($0) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2A || $0 == 0x2F }
    }

    private static func isLowercase(_ byte: UInt8) -> Bool { byte >= 0x61 && byte <= 0x7A }
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// Printable ASCII but `,` and `=`; spaces only inside.
    private static func isValueByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte <= 0x7E && byte != 0x2C && byte != 0x3D
    }

    /// Two lowercase hex digits at `offset`.
    private static func hexByte(_ bytes: [UInt8], _ offset: Int) -> UInt8? {
        guard let high = hexValue(bytes[offset]), let low = hexValue(bytes[offset + 1]) else { return nil }
        return high << 4 | low
    }

    /// Sixteen lowercase hex digits at `offset`.
    private static func hexUInt64(_ bytes: [UInt8], _ offset: Int) -> UInt64? {
        var value: UInt64 = 0
        for index in offset..<(offset + 16) {
            guard let digit = hexValue(bytes[index]) else { return nil }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    /// The spec allows lowercase hex only.
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}

/// `value` as lowercase hex, zero-padded to its full width.
private func hexDigits<T: FixedWidthInteger & UnsignedInteger>(_ value: T) -> String {
    let digits = Array("0123456789abcdef".utf8)
    let width = T.bitWidth / 4
    var bytes = [UInt8](repeating: 0, count: width)
    var rest = value
    for index in stride(from: width - 1, through: 0, by: -1) {
        bytes[index] = digits[Int(rest & 0xF)]
        rest >>= 4
    }
    return String(decoding: bytes, as: UTF8.self)
}
