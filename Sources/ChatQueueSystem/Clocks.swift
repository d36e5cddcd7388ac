#if canImport(Glibc)
import Glibc
#endif

/// Monotonic time in nanoseconds, for timers and deadlines: never jumps,
/// counts from an arbitrary start (boot). Read from the vDSO: cheap enough
/// to read in every callback.
public enum MonotonicClock {
    public static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)  // can't fail for CLOCK_MONOTONIC and a valid pointer
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

/// Wall-clock (Unix) time, for what the outside world stamps with dates:
/// `x-deadline-ms`, timestamps in the status file and logs. It can jump;
/// never measure durations with it.
public enum WallClock {
    /// Milliseconds since 1970-01-01 UTC.
    public static func unixMilliseconds() -> Int64 {
        let time = now()
        return Int64(time.tv_sec) &* 1000 &+ Int64(time.tv_nsec) / 1_000_000
    }

    /// Nanoseconds since 1970-01-01 UTC (0 for a clock set before 1970).
    public static func unixNanoseconds() -> UInt64 {
        let time = now()
        guard time.tv_sec >= 0 else { return 0 }
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// Seconds since 1970-01-01 UTC, with a fraction.
    public static func unixSeconds() -> Double {
        let time = now()
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    public static func now() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return time
    }
}
