import ChatQueueCore
import ChatQueueSystem

extension Deadline {
    /// The monotonic clock's time now.
    static func now() -> Deadline { Deadline(nanoseconds: MonotonicClock.now()) }
}

/// The loop's time events, beside its file events (ae.c's timers): when each
/// is next due. The loop waits for file events no longer than until the
/// nearest of them (`waitTimeout`).
struct LoopTimers {
    /// libcurl's timer: `timeoutAction()` is due (new transfers, libcurl's own timeouts).
    var upstream: Deadline = .never
    /// No in-flight request's `nextTimer` is earlier (it may be later: firing
    /// then finds nothing due and re-arms this).
    var requests: Deadline = .never
    /// The end of the shutdown grace (armed by the first signal; the second makes it now).
    var drain: Deadline = .never
    /// The earliest time what an upstream admits changes by itself (a
    /// breaker's probe, a budget's refill), while requests wait or the worker is degraded.
    var upstreams: Deadline = .never
    /// When both broker sockets are read even if idle, so that rabbitmq-c
    /// sends our heartbeats and notices a silent broker.
    private(set) var heartbeats: Deadline = .never
    /// A quarter of `broker.heartbeat` (nil: heartbeats off).
    private var heartbeatInterval: UInt64?

    /// The loop wakes at least this often, a safety net: every timer above is
    /// in the wait's timeout already.
    static let longestWait: UInt64 = 1_000_000_000

    /// Starts the heartbeat service for a session (`seconds` 0: off).
    mutating func startHeartbeats(every seconds: Int, now: Deadline) {
        heartbeatInterval = seconds > 0 ? Deadline.nanoseconds(seconds: Double(seconds) / 4) : nil
        heartbeats = heartbeatInterval.map { now + $0 } ?? .never
    }

    /// Whether the heartbeat service is due; if so it is armed again.
    mutating func heartbeatsDue(now: Deadline) -> Bool {
        guard let heartbeatInterval, now >= heartbeats else { return false }
        heartbeats = now + heartbeatInterval
        return true
    }

    /// Milliseconds the loop may wait for file events: until the nearest
    /// timer (`others`: the supervisor's), at most `longestWait`, rounded up
    /// so that a timer is due when the wait ends.
    func waitTimeout(now: Deadline, others: Deadline) -> Int32 {
        let nearest = min(upstream, requests, drain, self.upstreams, heartbeats, others)
        let nanoseconds = min(Self.longestWait, nearest.nanoseconds(after: now))
        return Int32((nanoseconds + 999_999) / 1_000_000)
    }
}
