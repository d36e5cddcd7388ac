#if canImport(Glibc)
import Glibc
#endif

/// Nanosecond clocks read straight from the kernel (vDSO): cheap enough to
/// read per callback, and plain integers for the timer arithmetic.
enum MonotonicClock {
    /// Monotonic nanoseconds, for timers.
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Unix time in milliseconds, for `x-deadline-ms`.
    static func wallMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Longest duration `nanoseconds(_:)` returns, about 31.7 years: far
    /// beyond any timer, and `now() &+` it can't wrap for centuries of uptime.
    static let maximumSeconds: Double = 1.0e9

    /// A duration in seconds as nanoseconds, saturating: 0 for negative
    /// values and NaN, `maximumSeconds` for huge values and infinity. Never traps.
    static func nanoseconds(_ seconds: Double) -> UInt64 {
        guard seconds > 0 else { return 0 }  // false for NaN too
        return UInt64(min(seconds, maximumSeconds) * 1_000_000_000)
    }
}
