/// The send time the mock upstream writes into each chunk when a request asks
/// for `"stamp": true`: a top-level `"x_mock_sent_at_ms": 1732712345678.123`
/// (Unix milliseconds, microsecond digits), appended as the chunk's last
/// member. The worker forwards chunk JSON byte for byte, so it arrives intact.
public enum ChunkStamp {
    static let key = Array(#""x_mock_sent_at_ms":"#.utf8)

    /// The stamp in Unix milliseconds, or nil when the body has none. Searches
    /// from the end (where the mock puts it) without parsing the whole JSON.
    public static func sentAtMilliseconds(in body: [UInt8]) -> Double? {
        body.withUnsafeBufferPointer { sentAtMilliseconds(in: $0) }
    }

    public static func sentAtMilliseconds(in body: UnsafeBufferPointer<UInt8>) -> Double? {
        let keyCount = key.count
        guard body.count > keyCount else { return nil }
        var start = body.count - keyCount
        while start >= 0 {
            if body[start] == UInt8(ascii: "\""), matchesKey(body, at: start) {
                return number(in: body, from: start + keyCount)
            }
            start -= 1
        }
        return nil
    }

    private static func matchesKey(_ body: UnsafeBufferPointer<UInt8>, at start: Int) -> Bool {
        for offset in 0..<key.count where body[start + offset] != key[offset] { return false }
        return true
    }

    /// A non-negative decimal number (digits, optionally a fraction) after optional spaces.
    private static func number(in body: UnsafeBufferPointer<UInt8>, from position: Int) -> Double? {
        var index = position
        while index < body.count, body[index] == UInt8(ascii: " ") { index += 1 }
        var whole: Double = 0
        var digits = 0
        while index < body.count, let digit = digit(body[index]) {
            whole = whole * 10 + digit
            digits += 1
            index += 1
        }
        guard digits > 0 else { return nil }
        guard index < body.count, body[index] == UInt8(ascii: ".") else { return whole }
        index += 1
        var scale = 0.1
        while index < body.count, let digit = digit(body[index]) {
            whole += digit * scale
            scale /= 10
            index += 1
        }
        return whole
    }

    private static func digit(_ byte: UInt8) -> Double? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Double(byte - UInt8(ascii: "0")) : nil
    }
}
