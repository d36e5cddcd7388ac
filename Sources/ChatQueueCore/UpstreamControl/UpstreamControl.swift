/// Everything that decides whether a try may go to one upstream now: its
/// circuit breaker, its concurrency window and its rpm/tpm budgets, as one
/// value (the worker keeps one per upstream and changes it in one access per
/// event). Pure; time comes in with each call.
public struct UpstreamControl: Sendable, Equatable {
    public private(set) var breaker: CircuitBreaker
    public private(set) var window: ConcurrencyWindow
    /// Tries a minute (`rpm`) and tokens a minute (`tpm`); nil: no limit.
    public private(set) var requestBudget: RateBudget?
    public private(set) var tokenBudget: RateBudget?
    /// Tries started.
    public private(set) var tries = 0

    public init(
        breaker: CircuitBreaker.Policy, window: ConcurrencyWindow, requestsPerMinute: Int? = nil,
        tokensPerMinute: Int? = nil, now: Deadline
    ) {
        self.breaker = CircuitBreaker(policy: breaker)
        self.window = window
        requestBudget = requestsPerMinute.map { RateBudget.requests(perMinute: $0, now: now) }
        tokenBudget = tokensPerMinute.map { RateBudget.tokens(perMinute: $0, now: now) }
    }

    /// Whether a try may start now: the breaker admits it, the window has room, the budgets allow it.
    public func admits(now: Deadline) -> Bool {
        window.hasRoom && breaker.admits(now: now) && (requestBudget?.admits(now: now) ?? true)
            && (tokenBudget?.admits(now: now) ?? true)
    }

    /// Healthy but full: a try waits for it (its window, its probe or a budget is taken).
    public func isBusy(now: Deadline) -> Bool {
        !admits(now: now) && !breaker.isDown(now: now)
    }

    /// Up: its breaker is closed (open or half-open, it is not relied on).
    public var isUp: Bool {
        if case .closed = breaker.state { return true }
        return false
    }

    /// The earliest time after `now` when what it admits may change by
    /// itself: its breaker's probe, or a spent budget's refill (`never`: none).
    public func nextChange(after now: Deadline) -> Deadline {
        var next = breaker.reopensAt > now ? breaker.reopensAt : .never
        if let budget = requestBudget, !budget.admits(now: now) { next = min(next, budget.admitsAgain(after: now)) }
        if let budget = tokenBudget, !budget.admits(now: now) { next = min(next, budget.admitsAgain(after: now)) }
        return next
    }

    /// A try starts (after `admits`): it takes a place in the window, spends
    /// a request of the rpm budget, and is the breaker's probe unless it is
    /// closed. Returns the window's round, for `tryEnded`.
    public mutating func tryStarted(now: Deadline) -> UInt64 {
        breaker.tryStarted(now: now)
        requestBudget?.spend(1, now: now)
        tries += 1
        return window.started()
    }

    /// A try that started in `round` ended: its place frees, its `tokens`
    /// (reported usage) are spent, and the breaker hears `outcome` (nil: the
    /// try said nothing about the upstream's health). Says whether the breaker changed.
    public mutating func tryEnded(
        _ outcome: CircuitBreaker.Outcome?, _ signal: ConcurrencyWindow.Signal, round: UInt64, tokens: Int?,
        now: Deadline
    ) -> CircuitBreaker.Change {
        window.ended(signal, startedRound: round)
        if let tokens { tokenBudget?.spend(Double(tokens), now: now) }
        guard let outcome else { return .none }
        return breaker.record(outcome, now: now)
    }
}
