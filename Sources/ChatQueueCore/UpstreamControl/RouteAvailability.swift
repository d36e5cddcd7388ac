/// Which upstreams of a request's route can take a try now, by route
/// position (a route has at most ``RoutingTable/maximumTargets`` upstreams,
/// so a bit each fits). The worker computes it from each upstream's breaker
/// and window when a request's machine may start a try.
public struct RouteAvailability: Sendable, Equatable {
    /// Positions that take a try now (breaker admits it, window has room).
    public var ready: UInt64
    /// Positions that are healthy but full (window full, or their probe is out): a try waits for them.
    public var busy: UInt64

    public init(ready: UInt64, busy: UInt64 = 0) {
        self.ready = ready
        self.busy = busy
    }

    /// Every position of a route of `count` upstreams is ready.
    public static func allReady(count: Int) -> RouteAvailability {
        RouteAvailability(ready: count >= 64 ? .max : (1 << UInt64(max(0, count))) &- 1)
    }

    /// Nothing can take a try, and nothing will free up by itself (every breaker open).
    public static let allDown = RouteAvailability(ready: 0)

    /// Marks `position` ready, busy or down.
    public mutating func set(_ position: Int, ready isReady: Bool, busy isBusy: Bool) {
        let bit: UInt64 = 1 << UInt64(position)
        if isReady { ready |= bit } else { ready &= ~bit }
        if isBusy { busy |= bit } else { busy &= ~bit }
    }

    public func isReady(_ position: Int) -> Bool { ready & (1 << UInt64(position)) != 0 }
}

extension UpstreamFailure {
    /// A 401, 402 or 403: the worker's account is unusable at this upstream,
    /// not the request at fault; the breaker's reason when it holds.
    public var accountFault: CircuitBreaker.Reason? {
        guard case .httpStatus(let status, _) = self else { return nil }
        switch status {
        case 401: return .authentication
        case 402: return .paymentRequired
        case 403: return .permissionDenied
        default: return nil
        }
    }

    /// A failure that says the upstream is unwell (not that the request was
    /// wrong): what its circuit breaker counts. A 429 says it is alive but
    /// over its limit: the concurrency window narrows instead.
    public var isUpstreamTrouble: Bool {
        switch self {
        case .httpStatus(429, _): return false
        case .streamInterrupted, .idleTimeout, .emptyStream: return true
        default: return isRetryable
        }
    }

    /// An overload signal for the concurrency window: 429 or 503.
    public var saysOverloaded: Bool {
        guard case .httpStatus(let status, _) = self else { return false }
        return status == 429 || status == 503
    }
}
