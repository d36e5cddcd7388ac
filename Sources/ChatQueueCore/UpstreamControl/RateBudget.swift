/// A per-minute limit as a refilling budget (a token bucket): `perMinute`
/// units come back evenly over a minute, and at most one second's worth
/// (at least 1) is saved up, so a limit is never spent in one burst. Pure;
/// time comes in with each call.
///
/// `rpm` spends one unit as a try starts and admits a try while a whole unit
/// is there. `tpm` spends a try's reported tokens when it ends, which can
/// leave the budget in debt (tokens are known only afterwards); it admits
/// tries while the balance is above zero, so the debt is paid back first.
public struct RateBudget: Sendable, Equatable {
    public let perMinute: Int
    /// The most saved up: one second's worth, at least 1.
    public let capacity: Double
    /// The balance needed to admit a try: 1 (requests) or just above 0 (tokens).
    public let admitsAbove: Double
    public private(set) var balance: Double
    private var updatedAt: Deadline

    /// A budget of `perMinute` requests (spent one per try).
    public static func requests(perMinute: Int, now: Deadline) -> RateBudget {
        RateBudget(perMinute: perMinute, admitsAbove: 1 - 1e-9, now: now)
    }

    /// A budget of `perMinute` tokens (spent by usage).
    public static func tokens(perMinute: Int, now: Deadline) -> RateBudget {
        RateBudget(perMinute: perMinute, admitsAbove: 0, now: now)
    }

    private init(perMinute: Int, admitsAbove: Double, now: Deadline) {
        self.perMinute = max(1, perMinute)
        capacity = max(1, Double(self.perMinute) / 60)
        self.admitsAbove = admitsAbove
        balance = capacity
        updatedAt = now
    }

    /// Units per nanosecond.
    private var rate: Double { Double(perMinute) / 60e9 }

    /// The balance at `now` (never above the capacity).
    public func balance(at now: Deadline) -> Double {
        let elapsed = Double(now.nanoseconds(after: updatedAt))
        return min(capacity, balance + elapsed * rate)
    }

    /// Whether a try may start at `now`.
    public func admits(now: Deadline) -> Bool {
        balance(at: now) > admitsAbove
    }

    /// When it admits a try again (`now` if it does).
    public func admitsAgain(after now: Deadline) -> Deadline {
        let missing = admitsAbove - balance(at: now)
        guard missing >= 0 else { return now }
        // A nanosecond past the threshold; saturating for any debt.
        let nanoseconds = (missing / rate).rounded(.up) + 1
        return now + (nanoseconds < 1.8e19 ? UInt64(nanoseconds) : .max)
    }

    /// Spends `units` at `now` (negative or NaN units spend nothing; the debt is bounded by a day's worth).
    public mutating func spend(_ units: Double, now: Deadline) {
        balance = balance(at: now)
        updatedAt = max(updatedAt, now)
        guard units > 0 else { return }
        balance = max(-Double(perMinute) * 24 * 60, balance - units)
    }
}
