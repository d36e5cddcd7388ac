/// A point in monotonic time, in nanoseconds as the worker's
/// `MonotonicClock.now()` counts them, or `never`: the one type for "when"
/// in the request state machine and the worker's timers (as swift-nio's
/// `NIODeadline`, `now` is one too). Arithmetic saturates, so no duration from
/// outside (a setting, a Retry-After hint, an `x-deadline-ms` header) can
/// trap or wrap around: a sum past the end of time is `never`. Pure.
public struct Deadline: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nanoseconds on the monotonic clock; `UInt64.max` is `never`.
    public let nanoseconds: UInt64

    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    /// Later than every other deadline: a timer that is not armed.
    public static let never = Deadline(nanoseconds: .max)

    public var isNever: Bool { nanoseconds == .max }

    /// `duration` nanoseconds later, or `never` past the end of time.
    public func adding(nanoseconds duration: UInt64) -> Deadline {
        let (sum, overflow) = nanoseconds.addingReportingOverflow(duration)
        return overflow ? .never : Deadline(nanoseconds: sum)
    }

    /// `seconds` later (as `Deadline.nanoseconds(seconds:)` converts them).
    public func adding(seconds: Double) -> Deadline {
        adding(nanoseconds: Self.nanoseconds(seconds: seconds))
    }

    /// Nanoseconds from `now` until this deadline: 0 once it passed,
    /// `UInt64.max` for `never`.
    public func nanoseconds(after now: Deadline) -> UInt64 {
        isNever ? .max : nanoseconds &- min(nanoseconds, now.nanoseconds)
    }

    /// Saturating `adding(nanoseconds:)`.
    public static func + (deadline: Deadline, nanoseconds: UInt64) -> Deadline {
        deadline.adding(nanoseconds: nanoseconds)
    }

    public static func += (deadline: inout Deadline, nanoseconds: UInt64) {
        deadline = deadline.adding(nanoseconds: nanoseconds)
    }

    public static func < (lhs: Deadline, rhs: Deadline) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    public var description: String { isNever ? "never" : "\(nanoseconds) ns" }

    // MARK: Durations

    /// Longest duration `nanoseconds(seconds:)` returns, about 31.7 years:
    /// far beyond any timer, and a monotonic clock plus it can't reach the
    /// end of time for centuries of uptime.
    public static let maximumSeconds: Double = 1.0e9

    /// A duration in seconds (a setting, a hint) as nanoseconds: 0 for
    /// negative values and NaN, `maximumSeconds` for huge values and infinity.
    public static func nanoseconds(seconds: Double) -> UInt64 {
        guard seconds > 0 else { return 0 }  // false for NaN too
        return UInt64(min(seconds, maximumSeconds) * 1_000_000_000)
    }
}
