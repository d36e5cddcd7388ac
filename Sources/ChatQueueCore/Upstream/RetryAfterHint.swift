/// The reading of the upstream's `Retry-After` hints, which the backoff takes
/// as the least wait before the next try. Pure.
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
