/// Arithmetic on monotonic nanosecond counts that no value can trap:
/// durations from outside (configuration, hints, headers) saturate instead
/// of overflowing. Pure; the one place the worker and the request state
/// machine turn seconds into deadlines.
public enum SaturatingTime {
    /// Longest duration `nanoseconds(_:)` returns, about 31.7 years: far
    /// beyond any timer, and a monotonic clock plus it can't wrap for
    /// centuries of uptime.
    public static let maximumSeconds: Double = 1.0e9

    /// A duration in seconds as nanoseconds: 0 for negative values and NaN,
    /// `maximumSeconds` for huge values and infinity.
    public static func nanoseconds(_ seconds: Double) -> UInt64 {
        guard seconds > 0 else { return 0 }  // false for NaN too
        return UInt64(min(seconds, maximumSeconds) * 1_000_000_000)
    }

    /// `time + nanoseconds`, saturating at `.max` (never armed).
    public static func adding(_ time: UInt64, _ nanoseconds: UInt64) -> UInt64 {
        let (sum, overflow) = time.addingReportingOverflow(nanoseconds)
        return overflow ? .max : sum
    }
}
