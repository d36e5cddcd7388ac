import ChatQueueConfig
import ChatQueueCore

/// The `retry.*` configuration (Core's `RetryBackoff`, which the request
/// state machine follows) and the reading of the upstream's `Retry-After`
/// hints. Pure.
public typealias RetryPolicy = Settings.Retry

extension RetryBackoff {
    /// Parses `retry-after-ms` (milliseconds) or else `Retry-After` (seconds,
    /// or an HTTP date relative to `nowUnixSeconds`) into seconds; nil when
    /// there is no usable hint (see ``retryAfterHint(milliseconds:header:nowUnixSeconds:)``).
    public static func retryAfterSeconds(milliseconds: String?, header: String?, nowUnixSeconds: Double) -> Double? {
        if case .seconds(let seconds) = retryAfterHint(milliseconds: milliseconds, header: header, nowUnixSeconds: nowUnixSeconds) {
            return seconds
        }
        return nil
    }

    /// What the upstream said about waiting before the next try.
    public enum RetryAfterHint: Sendable, Equatable {
        /// No `retry-after-ms` or `Retry-After` header.
        case absent
        /// Wait at least this many seconds: finite and >= 0 (it may still exceed `maxRetryAfter`).
        case seconds(Double)
        /// A header is present but unusable (malformed, negative, NaN, infinite,
        /// an invalid or out-of-range date): retry as if it were absent. Holds
        /// the header's value as one printable line of at most 64 bytes (TextExcerpt), for one short log line.
        case ignored(String)
    }

    /// Reads `retry-after-ms` (milliseconds, OpenAI's), else `Retry-After`
    /// (delay-seconds, or an IMF-fixdate relative to `nowUnixSeconds`). A
    /// usable `retry-after-ms` wins; an unusable one falls back to `Retry-After`.
    public static func retryAfterHint(milliseconds: String?, header: String?, nowUnixSeconds: Double) -> RetryAfterHint {
        if let milliseconds, let value = Double(milliseconds), value >= 0, value.isFinite {
            return .seconds(value / 1000)
        }
        if let header {
            if let seconds = Double(header), seconds >= 0, seconds.isFinite { return .seconds(seconds) }
            if let date = HTTPDate.parse(header), nowUnixSeconds.isFinite { return .seconds(max(0, date - nowUnixSeconds)) }
        }
        guard let unusable = milliseconds ?? header else { return .absent }
        return .ignored(TextExcerpt.make(unusable, limit: 64))
    }
}

/// IMF-fixdate (RFC 9110 section 5.6.7), the only form `Retry-After` dates take in practice:
/// "Sun, 06 Nov 1994 08:49:37 GMT". Fields are checked (years 1...9999, real
/// calendar days, hour < 24, minute < 60, second < 61), so the arithmetic can't overflow.
enum HTTPDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Unix seconds, or nil when `text` is not a valid IMF-fixdate.
    static func parse(_ text: String) -> Double? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0].count == 4, parts[0].hasSuffix(","), parts[5] == "GMT",
            let day = number(parts[1], digits: 2), let year = number(parts[3], digits: 4),
            let monthIndex = months.firstIndex(where: { $0 == parts[2] })
        else { return nil }
        let time = parts[4].split(separator: ":", omittingEmptySubsequences: false)
        guard time.count == 3, let hour = number(time[0], digits: 2), let minute = number(time[1], digits: 2),
            let second = number(time[2], digits: 2)
        else { return nil }
        let month = Int64(monthIndex + 1)
        guard year >= 1, day >= 1, day <= RFC3339.daysIn(month: month, year: year), hour < 24, minute < 60, second < 61
        else { return nil }
        let days = RFC3339.daysFromCivil(year: year, month: month, day: day)
        return Double(days * 86_400 + hour * 3600 + minute * 60 + min(second, 59))
    }

    /// Exactly `digits` ASCII digits (so at most 9999 for four).
    private static func number(_ text: Substring, digits: Int) -> Int64? {
        guard text.utf8.count == digits else { return nil }
        var value: Int64 = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }
}
