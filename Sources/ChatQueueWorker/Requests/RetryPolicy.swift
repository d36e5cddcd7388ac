import ChatQueueConfig

/// When to make another HTTP try, and how long to wait first: the policy
/// is the `retry.*` configuration itself. Pure.
///
/// Exponential backoff with full jitter: the n-th retry waits a random time
/// in [0, min(maxDelay, baseDelay * 2^(n-1))]. A `retry-after-ms` or
/// `Retry-After` from the upstream is a minimum; a wait longer than
/// `maxRetryAfter`, or one that would end past the request's deadline, is not
/// taken (the error reply then says retryable: true).
public typealias RetryPolicy = Settings.Retry

extension Settings.Retry {
    /// The wait in seconds before the next try, or nil when there is none.
    /// - triesMade: HTTP tries already made (>= 1).
    /// - retryAfter: the upstream's minimum wait in seconds, if it gave one.
    /// - secondsLeft: time until the request's deadline.
    /// - random: a number in [0, 1) (injected so tests are exact).
    public func delay(triesMade: Int, retryAfter: Double?, secondsLeft: Double, random: Double) -> Double? {
        guard triesMade < maxAttempts else { return nil }
        let exponent = Double(min(triesMade - 1, 30))
        let ceiling = min(maxDelay, baseDelay * (1 << Int(exponent)).doubleValue)
        var wait = ceiling * random
        if let retryAfter {
            guard retryAfter <= maxRetryAfter else { return nil }
            wait = max(wait, retryAfter)
        }
        guard wait < secondsLeft else { return nil }
        return wait
    }

    /// Parses `retry-after-ms` (milliseconds) or else `Retry-After` (seconds,
    /// or an HTTP date relative to `nowUnixSeconds`) into seconds.
    public static func retryAfterSeconds(milliseconds: String?, header: String?, nowUnixSeconds: Double) -> Double? {
        if let milliseconds, let value = Double(milliseconds), value >= 0, value.isFinite {
            return value / 1000
        }
        guard let header else { return nil }
        if let seconds = Double(header), seconds >= 0, seconds.isFinite { return seconds }
        if let date = HTTPDate.parse(header) { return max(0, date - nowUnixSeconds) }
        return nil
    }
}

private extension Int {
    var doubleValue: Double { Double(self) }
}

/// IMF-fixdate (RFC 9110 section 5.6.7), the only form `Retry-After` dates take in practice:
/// "Sun, 06 Nov 1994 08:49:37 GMT".
enum HTTPDate {
    static func parse(_ text: String) -> Double? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let year = Int(parts[3]) else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let monthIndex = months.firstIndex(of: String(parts[2])) else { return nil }
        let time = parts[4].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3 else { return nil }
        let days = RFC3339.daysFromCivil(year: Int64(year), month: Int64(monthIndex + 1), day: Int64(day))
        return Double(days * 86_400 + Int64(time[0] * 3600 + time[1] * 60 + time[2]))
    }
}
