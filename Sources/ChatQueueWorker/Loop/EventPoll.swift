import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// The descriptors the event loop waits on (AMQP sockets, the signal pipe,
/// libcurl's sockets) as one epoll set. Level-triggered: what a handler
/// leaves unread is reported again, so nothing depends on reading to EAGAIN.
/// A wait costs the same with 5 or 5,000 open upstream streams, which a
/// `poll` over every socket (`curl_multi_poll`) does not.
final class EventPoll {
    /// One ready descriptor.
    struct Event {
        var descriptor: Int32
        var readable: Bool
        var writable: Bool
        /// Error or hang-up: the owner's next read or write tells what happened.
        var failed: Bool
    }

    private let descriptor: Int32
    private var ready: [epoll_event]

    init(capacity: Int = 256) {
        descriptor = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(descriptor >= 0, "epoll_create1 failed: errno \(errno)")
        ready = [epoll_event](repeating: epoll_event(), count: capacity)
    }

    deinit { close(descriptor) }

    /// Starts watching `fd`, or changes what it is watched for.
    func watch(_ fd: Int32, readable: Bool, writable: Bool) {
        var event = epoll_event()
        event.events = (readable ? EPOLLIN.rawValue : 0) | (writable ? EPOLLOUT.rawValue : 0)
        event.data.fd = fd
        if epoll_ctl(descriptor, EPOLL_CTL_MOD, fd, &event) == 0 { return }
        if errno == ENOENT, epoll_ctl(descriptor, EPOLL_CTL_ADD, fd, &event) == 0 { return }
        // Only a descriptor that is not open gets here (EBADF): its owner finds
        // out on its next call; nothing can be watched.
    }

    /// Stops watching `fd`. Call it while `fd` is still open: a closed
    /// descriptor leaves the set by itself, and its number may already be
    /// someone else's.
    func forget(_ fd: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(descriptor, EPOLL_CTL_DEL, fd, &event)
    }

    /// Waits up to `timeoutMilliseconds` (0: don't wait) and calls `handle`
    /// for each ready descriptor.
    func wait(timeoutMilliseconds: Int32, _ handle: (Event) -> Void) {
        let count = ready.withUnsafeMutableBufferPointer { buffer in
            epoll_wait(descriptor, buffer.baseAddress, Int32(buffer.count), timeoutMilliseconds)
        }
        guard count > 0 else { return }  // 0: timeout; -1: EINTR (a signal), the loop comes round again
        let failure = EPOLLERR.rawValue | EPOLLHUP.rawValue
        for index in 0..<Int(count) {
            let event = ready[index]
            handle(
                Event(
                    descriptor: event.data.fd, readable: event.events & EPOLLIN.rawValue != 0,
                    writable: event.events & EPOLLOUT.rawValue != 0, failed: event.events & failure != 0))
        }
    }
}
