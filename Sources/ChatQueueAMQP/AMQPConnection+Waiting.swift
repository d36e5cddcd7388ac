import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// Waiting on a connection's socket, for blocking clients (the requester, the
/// bench) and for the rare waits of the worker (a full socket before a
/// library call); the worker's loop itself waits in its epoll set.
extension AMQPConnection {
    /// Blocks until input is there (buffered or on the socket) or `timeout` seconds pass.
    @discardableResult
    public func waitForInput(timeout: Double) throws(AMQPError) -> Bool {
        if hasBufferedInput { return true }
        return try pollSocket(events: POLLIN, timeout: timeout)
    }

    /// poll(2) on the socket for `events`, up to `timeout` seconds (rounded up to milliseconds).
    func pollSocket(events: Int32, timeout: Double) throws(AMQPError) -> Bool {
        var descriptor = pollfd(fd: socketDescriptor, events: Int16(events), revents: 0)
        let milliseconds = Int32((min(max(0, timeout), 3600) * 1000).rounded(.up))
        do {
            let ready = try systemCall("poll") { poll(&descriptor, 1, milliseconds) }
            return ready > 0 && descriptor.revents & Int16(events) != 0
        } catch {
            throw AMQPError.socket(error, context: "\(context) poll")
        }
    }
}
