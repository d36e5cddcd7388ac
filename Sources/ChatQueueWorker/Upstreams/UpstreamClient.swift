import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP
import ChatQueueSystem

/// One configured upstream as the worker calls it: its libcurl options and
/// header list (built once at start), the timeouts its tries follow, and
/// the easy handles of its finished transfers, reused by its next tries
/// (a handle's URL, CA and headers are set once, so handles are not shared
/// between upstreams), and its health: a circuit breaker, a concurrency
/// window and budgets in one `UpstreamControl`, and the figures the status
/// file and metrics show.
final class UpstreamClient {
    /// `default`, or the name in `upstreams.names` (logs, error replies, token accounting).
    let name: String
    let options: CurlRequestOptions
    let headers: CurlHeaderList
    /// The lines of `headers` (the API key among them), for a traced try's own list.
    private let headerLines: [String]
    /// The request policy with this upstream's first-byte and idle timeouts.
    let policy: RequestStateMachine.Policy
    /// `on_account_error: hold`: 401/402/403 hold requests instead of answering them.
    let holdsOnAccountError: Bool
    /// Its breaker, window and budgets (see `UpstreamControl`).
    var control: UpstreamControl
    /// Its figures for the metrics and the status file.
    var figures = UpstreamFigures()
    /// Idle easy handles, at most `maxIdle`.
    private var idleTransfers: [CurlTransfer] = []
    private let maxIdle: Int

    init(_ upstream: Settings.Upstream, retry: RetryBackoff, breaker: CircuitBreaker.Policy, maxIdle: Int) {
        name = upstream.name
        holdsOnAccountError = upstream.onAccountError == .hold
        control = UpstreamControl(
            breaker: breaker,
            window: ConcurrencyWindow(
                maximum: min(upstream.maxConcurrency ?? maxIdle, maxIdle), adaptive: upstream.adaptiveConcurrency),
            requestsPerMinute: upstream.requestsPerMinute, tokensPerMinute: upstream.tokensPerMinute,
            now: Deadline(nanoseconds: MonotonicClock.now()))
        figures.name = upstream.name
        options = CurlRequestOptions(
            url: upstream.completionsURL, connectTimeout: upstream.connectTimeout, caFile: upstream.caFile,
            proxy: upstream.proxy)
        var lines = ["Content-Type: application/json", "Expect:", "User-Agent: chatqueue/\(ChatQueueVersion.current)"]
        if let key = upstream.apiKey { lines.append("Authorization: Bearer \(key.value)") }
        lines += upstream.headers
        headers = CurlHeaderList(lines)
        headerLines = lines
        policy = RequestStateMachine.Policy(
            retry: retry,
            firstByteTimeout: Deadline.nanoseconds(seconds: upstream.firstByteTimeout),
            idleTimeout: Deadline.nanoseconds(seconds: upstream.idleTimeout),
            maxReplyBytes: upstream.maxResponseBytes)
        self.maxIdle = maxIdle
    }

    /// An idle handle of this upstream, or a new one.
    func transfer() -> CurlTransfer {
        idleTransfers.popLast() ?? CurlTransfer(options: options, headers: headers)
    }

    /// This upstream's headers plus `extra` (a traced try's traceparent and tracestate).
    func headers(adding extra: [String]) -> CurlHeaderList {
        CurlHeaderList(headerLines + extra)
    }

    /// Keeps a finished, reusable handle for the next try.
    func recycle(_ transfer: CurlTransfer) {
        if idleTransfers.count < maxIdle { idleTransfers.append(transfer) }
    }
}
