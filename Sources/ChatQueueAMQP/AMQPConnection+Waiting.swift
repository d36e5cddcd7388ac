#if canImport(Glibc)
import Glibc
#endif

/// Waiting on a connection's socket, for blocking clients (the requester, the
/// bench) and for the rare waits of the worker (a full socket before a
/// library call); the worker's loop itself waits in its epoll set.
extension AMQPConnection {
    /// Blocks until input is there (buffered or on the socket) or `timeout` seconds pass.
    @discardableResult
    public func waitForInput(timeout: Double) -> Bool {
        if hasBufferedInput { return true }
        return pollSocket(events: POLLIN, timeout: timeout)
    }

    /// Whether the socket has room for a write now (a publish would not block on it).
    public func isWritable() -> Bool {
        pollSocket(events: POLLOUT, timeout: 0)
    }

    /// poll(2) on the socket for `events`, up to `timeout` seconds (rounded up to milliseconds).
    func pollSocket(events: Int32, timeout: Double) -> Bool {
        var descriptor = pollfd(fd: socketDescriptor, events: Int16(events), revents: 0)
        let milliseconds = Int32((max(0, timeout) * 1000).rounded(.up))
        return poll(&descriptor, 1, milliseconds) > 0 && descriptor.revents & Int16(events) != 0
    }
}

/// Seconds on the monotonic clock, for deadlines.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
