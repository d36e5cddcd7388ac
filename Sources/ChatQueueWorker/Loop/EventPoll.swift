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
    /// Per descriptor number: the events it is in the set with (`notInSet` if
    /// it isn't), and the events its owner wants (0: none, for now).
    private var inSet: [UInt32] = []
    private var wanted: [UInt32] = []
    private static let notInSet = UInt32.max

    init(capacity: Int = 256) {
        descriptor = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(descriptor >= 0, "epoll_create1 failed: errno \(errno)")
        ready = [epoll_event](repeating: epoll_event(), count: capacity)
    }

    deinit { close(descriptor) }

    /// Starts watching `fd`, or changes what it is watched for. Watching for
    /// nothing leaves `fd` in the set until it reports an event (libcurl
    /// stops and starts watching a kept-alive connection around every
    /// request: this saves two epoll_ctl calls per request).
    func watch(_ fd: Int32, readable: Bool, writable: Bool) {
        guard fd >= 0 else { return }
        let events = (readable ? EPOLLIN.rawValue : 0) | (writable ? EPOLLOUT.rawValue : 0)
        let index = Int(fd)
        if index >= inSet.count {
            inSet.append(contentsOf: repeatElement(Self.notInSet, count: index + 64 - inSet.count))
            wanted.append(contentsOf: repeatElement(0, count: index + 64 - wanted.count))
        }
        wanted[index] = events
        guard events != 0 else { return }
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        // One call when the bookkeeping is right; the other when the number
        // was closed and reused (a closed descriptor leaves the set by itself).
        let first = inSet[index] == Self.notInSet ? EPOLL_CTL_ADD : EPOLL_CTL_MOD
        if epoll_ctl(descriptor, first, fd, &event) == 0 {
            inSet[index] = events
            return
        }
        let second = first == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD
        if epoll_ctl(descriptor, second, fd, &event) == 0 {
            inSet[index] = events
            return
        }
        // Only a descriptor that is not open gets here (EBADF): its owner finds
        // out on its next call; nothing can be watched.
        inSet[index] = Self.notInSet
    }

    /// Stops watching `fd` now. Call it while `fd` is still open: a closed
    /// descriptor leaves the set by itself, and its number may already be
    /// someone else's.
    func forget(_ fd: Int32) {
        guard fd >= 0 else { return }
        var event = epoll_event()
        _ = epoll_ctl(descriptor, EPOLL_CTL_DEL, fd, &event)
        if Int(fd) < inSet.count {
            inSet[Int(fd)] = Self.notInSet
            wanted[Int(fd)] = 0
        }
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
            let fd = event.data.fd
            if Int(fd) < wanted.count, wanted[Int(fd)] == 0 {
                // Left in the set by a watch for nothing: take it out now.
                forget(fd)
                continue
            }
            handle(
                Event(
                    descriptor: event.data.fd, readable: event.events & EPOLLIN.rawValue != 0,
                    writable: event.events & EPOLLOUT.rawValue != 0, failed: event.events & failure != 0))
        }
    }
}
