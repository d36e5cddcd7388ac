/// What the worker is doing, as the status file and systemd show it.
public enum WorkerState: String, Sendable {
    /// Connecting for the first time.
    case starting
    /// Consuming at full concurrency.
    case running
    /// No route has an upstream up (every breaker open): no new deliveries but one probe at a time.
    case degraded
    /// The broker connection was lost; connecting again.
    case reconnecting
    /// SIGTERM: finishing in-flight requests, taking no new ones.
    case draining
    case stopped
}
