/// Eight-bytes-at-a-time checks (SWAR) for the parsers' hot loops: they skip
/// runs of ordinary bytes with one 64-bit load and a few arithmetic
/// operations instead of one comparison chain per byte. Each function answers
/// "is there possibly an interesting byte in this word?" exactly; the caller
/// then finds it with a byte loop.
enum WordScan {
    private static var ones: UInt64 { 0x0101_0101_0101_0101 }
    private static var highBits: UInt64 { 0x8080_8080_8080_8080 }

    /// High bit set in some byte lane iff `word` has a zero byte.
    @inline(__always)
    private static func zeroByteLanes(_ word: UInt64) -> UInt64 {
        (word &- ones) & ~word & highBits
    }

    /// Whether `word` contains `byte`.
    @inline(__always)
    static func contains(_ word: UInt64, _ byte: UInt8) -> Bool {
        zeroByteLanes(word ^ (ones &* UInt64(byte))) != 0
    }

    /// Whether a JSON string scan must stop in `word`: a quote, a backslash, a
    /// control character (< 0x20) or a non-ASCII byte (which needs UTF-8 checks).
    @inline(__always)
    static func needsJSONStringAttention(_ word: UInt64) -> Bool {
        let quoteLanes = zeroByteLanes(word ^ (ones &* 0x22))
        let backslashLanes = zeroByteLanes(word ^ (ones &* 0x5C))
        let controlLanes = (word &- ones &* 0x20) & ~word
        return (quoteLanes | backslashLanes | controlLanes | word) & highBits != 0
    }

    /// Whether `word` contains a CR or LF.
    @inline(__always)
    static func containsLineEnd(_ word: UInt64) -> Bool {
        (zeroByteLanes(word ^ (ones &* 0x0A)) | zeroByteLanes(word ^ (ones &* 0x0D))) != 0
    }
}
