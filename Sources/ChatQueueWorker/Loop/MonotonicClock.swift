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
}
