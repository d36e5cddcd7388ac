/// What the worker is doing, as the status file and systemd show it.
public enum WorkerState: String, Sendable {
    /// Connecting for the first time.
    case starting
    /// Consuming at full concurrency.
    case running
    /// The upstream keeps failing: no new deliveries but one probe at a time.
    case degraded
    /// The broker connection was lost; connecting again.
    case reconnecting
    /// SIGTERM: finishing in-flight requests, taking no new ones.
    case draining
    case stopped
}

/// The upstream health that decides between running and degraded. Pure.
///
/// Each finished HTTP try reports whether it failed in a retryable way
/// (connection, timeout, 408/429/5xx). After `threshold` such failures in a
/// row the worker degrades: it stops taking new deliveries, so they stay in
/// the queue for healthier workers or for later, instead of being burnt
/// through with error replies; it then takes one request at a time (the
/// probe) until a try succeeds.
struct UpstreamHealth: Sendable, Equatable {
    let threshold: Int
    private(set) var consecutiveFailures = 0
    private(set) var isDegraded = false

    init(threshold: Int = 5) {
        self.threshold = threshold
    }

    enum Change: Equatable {
        case none
        case degrade
        case recover
    }

    /// Records a try's result and says whether the mode changes.
    mutating func record(retryableFailure: Bool) -> Change {
        if retryableFailure {
            consecutiveFailures += 1
            if !isDegraded && consecutiveFailures >= threshold {
                isDegraded = true
                return .degrade
            }
            return .none
        }
        consecutiveFailures = 0
        if isDegraded {
            isDegraded = false
            return .recover
        }
        return .none
    }

    /// A new broker session starts healthy-looking but remembers nothing else.
    mutating func reset() {
        consecutiveFailures = 0
        isDegraded = false
    }
}
