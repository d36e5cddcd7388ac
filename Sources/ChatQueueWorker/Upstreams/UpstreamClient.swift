import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP

/// One configured upstream as the worker calls it: its libcurl options and
/// header list (built once at start), the timeouts its tries follow, and
/// the easy handles of its finished transfers, reused by its next tries
/// (a handle's URL, CA and headers are set once, so handles are not shared
/// between upstreams). The per-upstream state (a breaker, a concurrency
/// window) will live here.
final class UpstreamClient {
    /// `default`, or the name in `upstreams.names` (logs, error replies, token accounting).
    let name: String
    let options: CurlRequestOptions
    let headers: CurlHeaderList
    /// The request policy with this upstream's first-byte and idle timeouts.
    let policy: RequestStateMachine.Policy
    /// Idle easy handles, at most `maxIdle`.
    private var idleTransfers: [CurlTransfer] = []
    private let maxIdle: Int

    init(_ upstream: Settings.Upstream, retry: RetryBackoff, maxIdle: Int) {
        name = upstream.name
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

    /// An idle handle of this upstream, or a new one.
    func transfer() -> CurlTransfer {
        idleTransfers.popLast() ?? CurlTransfer(options: options, headers: headers)
    }

    /// Keeps a finished, reusable handle for the next try.
    func recycle(_ transfer: CurlTransfer) {
        if idleTransfers.count < maxIdle { idleTransfers.append(transfer) }
    }
}
