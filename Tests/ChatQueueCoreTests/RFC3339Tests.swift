import Testing

@testable import ChatQueueCore

@Suite("RFC 3339 timestamps")
struct RFC3339Tests {
    @Test(
        "RFC 3339 UTC with milliseconds",
        arguments: [
            (Int64(1_795_788_185_123), "2026-11-27T14:03:05.123Z"),
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_868_799_999, "2000-02-29T23:59:59.999Z"),
            (1_709_208_000_000, "2024-02-29T12:00:00.000Z"),
            (4_107_542_400_001, "2100-03-01T00:00:00.001Z"),
        ])
    func formatsTimestamps(milliseconds: Int64, text: String) {
        #expect(RFC3339.string(unixMilliseconds: milliseconds) == text)
        #expect(RFC3339.unixMilliseconds(parsing: text) == milliseconds)
    }

    @Test("every day of four centuries round-trips")
    func civilCalendarRoundTrip() {
        // 1900-01-01 to 2300-01-01, one sample per day at a varying time.
        var milliseconds: Int64 = -2_208_988_800_000
        while milliseconds < 10_413_792_000_000 {
            let text = RFC3339.string(unixMilliseconds: milliseconds)
            #expect(RFC3339.unixMilliseconds(parsing: text) == milliseconds, "\(text)")
            milliseconds += 86_400_000 + 3_723_001
        }
    }

    @Test("parsing accepts offsets and any fraction; rejects malformed text")
    func parsesVariants() {
        #expect(RFC3339.unixMilliseconds(parsing: "2026-11-27T15:03:05.123+01:00") == 1_795_788_185_123)
        #expect(RFC3339.unixMilliseconds(parsing: "2026-11-27t14:03:05z") == 1_795_788_185_000)
        #expect(RFC3339.unixMilliseconds(parsing: "2026-11-27T14:03:05.1Z") == 1_795_788_185_100)
        #expect(RFC3339.unixMilliseconds(parsing: "2026-11-27T14:03:05.123999Z") == 1_795_788_185_123)
        for bad in [
            "", "2026-11-27", "2026-11-27T14:03:05", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
            "2026-11-27T24:00:00Z", "2026-11-27T14:03:05.Z", "2026-11-27T14:03:05Zjunk", "26-11-27T14:03:05Z",
        ] {
            #expect(RFC3339.unixMilliseconds(parsing: bad) == nil, "\(bad)")
        }
    }
}
