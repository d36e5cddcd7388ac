import ChatQueueCore

/// One upstream's figures for the metrics and the status file: counted as
/// tries end, and its breaker and window as of the last `take`. Pure.
public struct UpstreamFigures: Sendable, Equatable {
    /// The `upstream` label: `default` or a name of `upstreams.names` (bounded by the configuration).
    public var name = ""
    /// HTTP tries started.
    public var tries = 0
    /// Failed tries by their `code` label (``failureLabel(_:)``, a bounded set).
    public var failures: [String: Int] = [:]
    /// Seconds from sending a try to its first data.
    public var firstChunk = LatencyHistogram()
    /// Seconds from sending a try to its end.
    public var duration = LatencyHistogram()
    /// `closed`, `open` or `half_open`.
    public var breakerState = "closed"
    /// Why it is open or half-open (`failures`, `payment_required`, `authentication`, `permission_denied`).
    public var breakerReason: String?
    /// When an open breaker lets its probe go (Unix ms); nil unless open.
    public var probeAtUnixMilliseconds: Int64?
    /// Times the breaker opened.
    public var breakerOpenings = 0
    /// Retryable failures in a row while closed.
    public var consecutiveFailures = 0
    /// Tries that may run at once (the AIMD window) and tries running.
    public var window = 0
    public var windowDecreases = 0
    public var inFlight = 0

    public init() {}

    /// Takes the breaker's and the window's state (`now` and `nowUnixMilliseconds`: the same moment).
    public mutating func take(_ control: UpstreamControl, now: Deadline, nowUnixMilliseconds: Int64) {
        let (breaker, window) = (control.breaker, control.window)
        tries = control.tries
        breakerState = breaker.state.name
        let reopens = breaker.reopensAt
        probeAtUnixMilliseconds =
            reopens.isNever
            ? nil : nowUnixMilliseconds + Int64(clamping: reopens.nanoseconds(after: now) / 1_000_000)
        breakerReason = breaker.reason?.name
        breakerOpenings = breaker.openings
        consecutiveFailures = breaker.consecutiveFailures
        self.window = window.size
        windowDecreases = window.decreases
        inFlight = window.inFlight
    }

    /// Counts a failed try.
    public mutating func recordFailure(_ failure: UpstreamFailure) {
        failures[Self.failureLabel(failure), default: 0] += 1
    }

    /// `http_<status>` for 400...599 (`http_other` else), or the failure's
    /// code (`connection_failed`, `first_byte_timeout`, ...): never text from the upstream.
    public static func failureLabel(_ failure: UpstreamFailure) -> String {
        switch failure {
        case .httpStatus(let status, _): return (400...599).contains(status) ? "http_\(status)" : "http_other"
        case .connectionFailed: return "connection_failed"
        case .connectTimeout: return "connect_timeout"
        case .firstByteTimeout: return "first_byte_timeout"
        case .idleTimeout: return "idle_timeout"
        case .requestTimeout: return "request_timeout"
        case .deadlineExceeded: return "deadline_exceeded"
        case .badResponse: return "bad_response"
        case .emptyStream: return "empty_stream"
        case .streamError: return "stream_error"
        case .streamInterrupted: return "stream_interrupted"
        case .responseTooLarge: return "response_too_large"
        }
    }
}
