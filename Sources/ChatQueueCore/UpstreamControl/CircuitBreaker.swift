/// One upstream's circuit breaker: whether tries may go to it now. Pure;
/// time comes in with each call.
///
/// Closed, it counts retryable failures in a row (connection errors,
/// timeouts, 408/429/5xx, broken streams); `failureThreshold` of them open
/// it for `cooldown` (the upstream's Retry-After, capped at `maxCooldown`, is
/// a floor). An account fault (401, 402, 403) of an upstream that holds on
/// account errors opens it at once, for `holdProbeInterval`. Once the time
/// is up it is half-open: one try (the probe) may go; its success closes it,
/// another failure opens it again. A stopped probe (a cancel) lets the next
/// one go.
public struct CircuitBreaker: Sendable, Equatable {
    public struct Policy: Sendable, Equatable {
        /// Retryable failures in a row that open the breaker (at least 1).
        public var failureThreshold: Int
        /// Nanoseconds open after failures, before the probe.
        public var cooldown: UInt64
        /// The longest an upstream's Retry-After may keep it open (nanoseconds).
        public var maxCooldown: UInt64
        /// Nanoseconds between probes while an account fault holds it open.
        public var holdProbeInterval: UInt64

        public init(failureThreshold: Int, cooldown: UInt64, maxCooldown: UInt64, holdProbeInterval: UInt64) {
            self.failureThreshold = max(1, failureThreshold)
            self.cooldown = cooldown
            self.maxCooldown = max(cooldown, maxCooldown)
            self.holdProbeInterval = holdProbeInterval
        }
    }

    /// Why the breaker is open; the status file shows `name`.
    public enum Reason: Sendable, Equatable {
        /// Retryable failures in a row.
        case failures
        /// HTTP 402: the account's balance ran out.
        case paymentRequired
        /// HTTP 401: the key is wrong or revoked.
        case authentication
        /// HTTP 403: the key may not use this API.
        case permissionDenied

        public var name: String {
            switch self {
            case .failures: return "failures"
            case .paymentRequired: return "payment_required"
            case .authentication: return "authentication"
            case .permissionDenied: return "permission_denied"
            }
        }

        /// An account fault, which holds rather than cools down.
        public var isAccountFault: Bool { self != .failures }
    }

    public enum State: Sendable, Equatable {
        case closed(consecutiveFailures: Int)
        /// No tries until `until`; then half-open.
        case open(until: Deadline, reason: Reason)
        /// One try, the probe, may go; `probing`: it is out.
        case halfOpen(reason: Reason, probing: Bool)

        /// `closed`, `open` or `half_open` (status file, metrics).
        public var name: String {
            switch self {
            case .closed: return "closed"
            case .open: return "open"
            case .halfOpen: return "half_open"
            }
        }
    }

    /// How a try to the upstream ended, as far as its health goes.
    public enum Outcome: Sendable, Equatable {
        /// The upstream answered (a completion, or the request's own fault such as 400).
        case answered
        /// A retryable failure; `retryAfter` is the upstream's hint in seconds.
        case trouble(retryAfter: Double?)
        /// 401, 402 or 403 of an upstream that holds on account errors.
        case accountFault(Reason)
        /// Neither: the try was stopped before it said anything (a cancel).
        case stopped
    }

    /// What changed, for logs and the worker's mode.
    public enum Change: Sendable, Equatable {
        case none
        case opened(Reason, until: Deadline)
        case closed
    }

    public let policy: Policy
    public private(set) var state: State = .closed(consecutiveFailures: 0)
    /// Times it opened (a failed probe opens it again and counts).
    public private(set) var openings = 0

    public init(policy: Policy) {
        self.policy = policy
    }

    /// Whether a try may start at `now`: closed, or half-open (or open past its
    /// time) with no probe out.
    public func admits(now: Deadline) -> Bool {
        switch state {
        case .closed: return true
        case .open(let until, _): return now >= until
        case .halfOpen(_, let probing): return !probing
        }
    }

    /// Down: open and its time not up. A half-open breaker is not down (its
    /// probe may be out, but a try will go to it).
    public func isDown(now: Deadline) -> Bool {
        if case .open(let until, _) = state { return now < until }
        return false
    }

    /// When an open breaker lets its probe go (`never` when not open).
    public var reopensAt: Deadline {
        if case .open(let until, _) = state { return until }
        return .never
    }

    /// The reason it is open or half-open; nil when closed.
    public var reason: Reason? {
        switch state {
        case .closed: return nil
        case .open(_, let reason), .halfOpen(let reason, _): return reason
        }
    }

    /// Retryable failures in a row while closed.
    public var consecutiveFailures: Int {
        if case .closed(let failures) = state { return failures }
        return 0
    }

    /// A try starts (only after `admits` said yes): past an open breaker's
    /// time, or half-open, it is the probe.
    public mutating func tryStarted(now: Deadline) {
        switch state {
        case .closed:
            break
        case .open(_, let reason), .halfOpen(let reason, _):
            state = .halfOpen(reason: reason, probing: true)
        }
    }

    /// A try ended; says whether the breaker opened or closed.
    public mutating func record(_ outcome: Outcome, now: Deadline) -> Change {
        switch (state, outcome) {
        case (_, .stopped):
            if case .halfOpen(let reason, true) = state { state = .halfOpen(reason: reason, probing: false) }
            return .none
        case (.closed, .answered):
            state = .closed(consecutiveFailures: 0)
            return .none
        case (.closed(let failures), .trouble(let retryAfter)):
            guard failures + 1 >= policy.failureThreshold else {
                state = .closed(consecutiveFailures: failures + 1)
                return .none
            }
            return open(.failures, now: now, retryAfter: retryAfter)
        case (_, .accountFault(let reason)):
            return open(reason, now: now, retryAfter: nil)
        case (.halfOpen, .answered):
            state = .closed(consecutiveFailures: 0)
            return .closed
        case (.halfOpen(let reason, _), .trouble(let retryAfter)):
            // A held account stays held: a probe's network trouble says nothing about the balance.
            return open(reason, now: now, retryAfter: retryAfter)
        case (.open, .answered), (.open, .trouble):
            // A try that started before the breaker opened: the opening stands.
            return .none
        }
    }

    private mutating func open(_ reason: Reason, now: Deadline, retryAfter: Double?) -> Change {
        var wait = reason.isAccountFault ? policy.holdProbeInterval : policy.cooldown
        if let retryAfter, retryAfter > 0, !reason.isAccountFault {
            let hinted = Deadline.nanoseconds(seconds: retryAfter)
            wait = max(wait, min(hinted, policy.maxCooldown))
        }
        let until = now + wait
        state = .open(until: until, reason: reason)
        openings += 1
        return .opened(reason, until: until)
    }
}
