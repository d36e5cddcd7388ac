import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP
import ChatQueueSystem

/// One configured upstream as the worker calls it: its libcurl options and
/// header list (built once at start), the timeouts its tries follow, and
/// the easy handles of its finished transfers, reused by its next tries
/// (a handle's URL, CA and headers are set once, so handles are not shared
/// between upstreams), and its health: a circuit breaker, a concurrency
/// window and the figures the status file and metrics show.
final class UpstreamClient {
    /// `default`, or the name in `upstreams.names` (logs, error replies, token accounting).
    let name: String
    let options: CurlRequestOptions
    let headers: CurlHeaderList
    /// The request policy with this upstream's first-byte and idle timeouts.
    let policy: RequestStateMachine.Policy
    /// `on_account_error: hold`: 401/402/403 hold requests instead of answering them.
    let holdsOnAccountError: Bool
    /// Whether tries may go to it (see `CircuitBreaker`).
    var breaker: CircuitBreaker
    /// How many tries may run at once (see `ConcurrencyWindow`).
    var window: ConcurrencyWindow
    /// `rpm` and `tpm`: tries and tokens a minute; nil: no limit.
    var requestBudget: RateBudget?
    var tokenBudget: RateBudget?
    /// Its figures for the metrics and the status file.
    var figures = UpstreamFigures()
    /// Idle easy handles, at most `maxIdle`.
    private var idleTransfers: [CurlTransfer] = []
    private let maxIdle: Int

    init(_ upstream: Settings.Upstream, retry: RetryBackoff, breaker: CircuitBreaker.Policy, maxIdle: Int) {
        name = upstream.name
        holdsOnAccountError = upstream.onAccountError == .hold
        self.breaker = CircuitBreaker(policy: breaker)
        window = ConcurrencyWindow(
            maximum: min(upstream.maxConcurrency ?? maxIdle, maxIdle), adaptive: upstream.adaptiveConcurrency)
        figures.name = upstream.name
        let now = Deadline(nanoseconds: MonotonicClock.now())
        requestBudget = upstream.requestsPerMinute.map { RateBudget.requests(perMinute: $0, now: now) }
        tokenBudget = upstream.tokensPerMinute.map { RateBudget.tokens(perMinute: $0, now: now) }
        options = CurlRequestOptions(
            url: upstream.completionsURL, connectTimeout: upstream.connectTimeout, caFile: upstream.caFile,
            proxy: upstream.proxy)
        var lines = ["Content-Type: application/json", "Expect:", "User-Agent: chatqueue/\(ChatQueueVersion.current)"]
        if let key = upstream.apiKey { lines.append("Authorization: Bearer \(key.value)") }
        lines += upstream.headers
        headers = CurlHeaderList(lines)
        policy = RequestStateMachine.Policy(
            retry: retry,
            firstByteTimeout: Deadline.nanoseconds(seconds: upstream.firstByteTimeout),
            idleTimeout: Deadline.nanoseconds(seconds: upstream.idleTimeout),
            maxReplyBytes: upstream.maxResponseBytes)
        self.maxIdle = maxIdle
    }

    /// Whether a try may start now: the breaker admits it and the window has room.
    func admits(now: Deadline) -> Bool {
        window.hasRoom && breaker.admits(now: now) && (requestBudget?.admits(now: now) ?? true)
            && (tokenBudget?.admits(now: now) ?? true)
    }

    /// The earliest time after `now` when what it admits may change by
    /// itself: its breaker's probe, or a spent budget's refill (`never`: none).
    func nextChange(after now: Deadline) -> Deadline {
        var next = breaker.reopensAt > now ? breaker.reopensAt : .never
        if let budget = requestBudget, !budget.admits(now: now) { next = min(next, budget.admitsAgain(after: now)) }
        if let budget = tokenBudget, !budget.admits(now: now) { next = min(next, budget.admitsAgain(after: now)) }
        return next
    }

    /// Healthy but full: a try waits for it (its window, or its probe, is taken).
    func isBusy(now: Deadline) -> Bool {
        !admits(now: now) && !breaker.isDown(now: now)
    }

    /// Up: its breaker is closed (open or half-open, it is not relied on).
    var isUp: Bool {
        if case .closed = breaker.state { return true }
        return false
    }

    /// A try to it starts; returns the window's round for `tryEnded`.
    func tryStarted(now: Deadline) -> UInt64 {
        breaker.tryStarted(now: now)
        requestBudget?.spend(1, now: now)
        figures.tries += 1
        return window.started()
    }

    /// A try that started in `round` ended; says whether the breaker changed.
    func tryEnded(
        _ outcome: CircuitBreaker.Outcome, _ signal: ConcurrencyWindow.Signal, round: UInt64, tokens: Int?,
        now: Deadline
    ) -> CircuitBreaker.Change {
        window.ended(signal, startedRound: round)
        if let tokens { tokenBudget?.spend(Double(tokens), now: now) }
        return breaker.record(outcome, now: now)
    }

    /// An idle handle of this upstream, or a new one.
    func transfer() -> CurlTransfer {
        idleTransfers.popLast() ?? CurlTransfer(options: options, headers: headers)
    }

    /// Keeps a finished, reusable handle for the next try.
    func recycle(_ transfer: CurlTransfer) {
        if idleTransfers.count < maxIdle { idleTransfers.append(transfer) }
    }
}
