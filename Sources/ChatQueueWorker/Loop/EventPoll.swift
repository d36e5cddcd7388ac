import CLinux
import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// The descriptors the event loop waits on (AMQP sockets, the signal pipe,
/// libcurl's sockets) as one epoll set, each registered with the `Source` the
/// loop hands its events to (ae.c's one file handler per descriptor).
/// Level-triggered: what a handler leaves unread is reported again, so
/// nothing depends on reading to EAGAIN. A wait costs the same with 5 or
/// 5,000 open upstream streams, which a `poll` over every socket
/// (`curl_multi_poll`) does not.
final class EventPoll {
    /// What a watched descriptor is: the loop has one handler for each.
    enum Source: Equatable {
        /// The broker connection that consumes requests and acks them.
        case consumer
        /// The broker connection that publishes replies and receives their confirms.
        case publisher
        /// A replaced publisher, read until the broker closes it.
        case retiringPublisher
        /// The self-pipe of SIGTERM and SIGINT (`SignalDescriptor`).
        case signals
        /// One of libcurl's sockets.
        case upstream
    }

    /// One ready descriptor, as its handler sees it.
    struct Event {
        var descriptor: Int32
        var source: Source
        /// Input waits, or the descriptor failed or hung up (see `failed`).
        var readable: Bool
        /// There is room to write, or the descriptor failed or hung up.
        var writable: Bool
        /// Error or hang-up (EPOLLERR, EPOLLHUP). Reported as readable and
        /// writable too, as ae.c does, so the handler's next read or write
        /// tells what happened; libcurl is also told (CURL_CSELECT_ERR).
        var failed: Bool
        /// What epoll reported (EPOLLIN, EPOLLOUT), without a failure folded
        /// in: libcurl is given these with CURL_CSELECT_ERR, as curl's
        /// ephiperfifo.c does, so it reports an error-only event as such.
        var reportedReadable: Bool
        var reportedWritable: Bool
    }

    /// What the set knows of one descriptor number.
    private struct Registration {
        /// The events it is in the set with, or `notInSet`.
        var inSet: UInt32 = Registration.notInSet
        /// The events its owner wants (0: none, for now).
        var wanted: UInt32 = 0
        /// Whose events they are (nil: not watched).
        var source: Source?

        static let notInSet = UInt32.max
    }

    private let descriptor: Int32
    private var ready: [epoll_event]
    /// By descriptor number.
    private var registrations: [Registration] = []

    /// Traps when `capacity` < 1 (a bug); throws when the system has no
    /// epoll instance to give (EMFILE, ENFILE, ENOMEM).
    init(capacity: Int = 256) throws(SystemError) {
        precondition(capacity > 0, "EventPoll needs room for one event")
        descriptor = try systemCall("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        ready = [epoll_event](repeating: epoll_event(), count: capacity)
    }

    deinit { close(descriptor) }

    /// Starts watching `fd` for `source`, or changes what it is watched for.
    /// Watching for nothing leaves `fd` in the set until it reports an event
    /// (libcurl stops and starts watching a kept-alive connection around
    /// every request: this saves two epoll_ctl calls per request). A
    /// descriptor that is not open (EBADF: libcurl closed it) is not watched;
    /// its owner finds out on its next call. Throws what the kernel refuses
    /// otherwise (ENOMEM, ENOSPC: no room for another watch).
    func watch(_ fd: Int32, as source: Source, readable: Bool, writable: Bool) throws(SystemError) {
        guard fd >= 0 else { return }
        let index = Int(fd)
        if index >= registrations.count {
            registrations.append(contentsOf: repeatElement(Registration(), count: index + 64 - registrations.count))
        }
        let events = (readable ? EPOLLIN.rawValue : 0) | (writable ? EPOLLOUT.rawValue : 0)
        registrations[index].source = source
        registrations[index].wanted = events
        guard events != 0 else { return }
        // One call when the bookkeeping is right; the other when the number
        // was closed and reused (a closed descriptor leaves the set by itself).
        let add = registrations[index].inSet == Registration.notInSet
        do throws(SystemError) {
            do throws(SystemError) {
                try control(add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, events: events)
            } catch where error.errno == (add ? EEXIST : ENOENT) {
                try control(add ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, events: events)
            }
            registrations[index].inSet = events
        } catch where error.errno == EBADF {
            registrations[index].inSet = Registration.notInSet
        }
    }

    /// `watch` for a descriptor that stayed open since it was watched (the
    /// broker sockets during a session): no system call when its events
    /// did not change. Not for libcurl's sockets, whose numbers are reused.
    func update(_ fd: Int32, as source: Source, readable: Bool, writable: Bool) throws(SystemError) {
        let events = (readable ? EPOLLIN.rawValue : 0) | (writable ? EPOLLOUT.rawValue : 0)
        if fd >= 0, Int(fd) < registrations.count, registrations[Int(fd)].source == source,
            registrations[Int(fd)].wanted == events, registrations[Int(fd)].inSet == events
        {
            return
        }
        try watch(fd, as: source, readable: readable, writable: writable)
    }

    /// Stops watching `fd` now and forgets its source. Call it while `fd` is
    /// still open: a closed descriptor leaves the set by itself, and its
    /// number may already be someone else's.
    func forget(_ fd: Int32) {
        guard fd >= 0 else { return }
        if Int(fd) < registrations.count { registrations[Int(fd)] = Registration() }
        // Not in the set (ENOENT: watched for nothing, or a failed watch),
        // closed already (EBADF), or its number reused by a descriptor epoll
        // can't hold (EPERM): in every case it is out of the set, as wanted.
        try? control(EPOLL_CTL_DEL, fd, events: 0)
    }

    /// The source `fd` is watched for, if it is.
    func source(of fd: Int32) -> Source? {
        fd >= 0 && Int(fd) < registrations.count ? registrations[Int(fd)].source : nil
    }

    /// Waits up to `timeoutMilliseconds` (0: don't wait) and calls `handle`
    /// for each ready descriptor, in the order epoll reports them. A handler
    /// may watch and forget descriptors: an event of a descriptor forgotten
    /// or watched for nothing meanwhile is not handed out.
    func wait(timeoutMilliseconds: Int32, _ handle: (Event) throws -> Void) rethrows {
        let count: Int32?
        do {
            count = try interruptibleSystemCall("epoll_wait") {
                ready.withUnsafeMutableBufferPointer { buffer in
                    epoll_wait(descriptor, buffer.baseAddress, Int32(buffer.count), timeoutMilliseconds)
                }
            }
        } catch {
            // Besides EINTR, epoll_wait fails only for a bug here (EBADF,
            // EINVAL: not our epoll descriptor or no room for events;
            // EFAULT: a bad buffer), never for anything a peer does. It would
            // fail again in every session, so it traps (systemd restarts the
            // process) instead of ending sessions in a loop.
            preconditionFailure("\(error): a bug in chatqueue")
        }
        // nil: a signal interrupted the wait; the loop comes round again (its handler wrote to the signal pipe).
        guard let count, count > 0 else { return }
        let failure = EPOLLERR.rawValue | EPOLLHUP.rawValue
        for index in 0..<Int(count) {
            let event = ready[index]
            let fd = event.data.fd
            guard let source = source(of: fd), registrations[Int(fd)].wanted != 0 else {
                // Left in the set by a watch for nothing, or forgotten by a
                // handler of this batch: take it out now.
                forget(fd)
                continue
            }
            let failed = event.events & failure != 0
            let readable = event.events & EPOLLIN.rawValue != 0
            let writable = event.events & EPOLLOUT.rawValue != 0
            try handle(
                Event(
                    descriptor: fd, source: source, readable: failed || readable, writable: failed || writable,
                    failed: failed, reportedReadable: readable, reportedWritable: writable))
        }
    }

    private func control(_ operation: Int32, _ fd: Int32, events: UInt32) throws(SystemError) {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        try systemCall("epoll_ctl", allowing: EBADF) { epoll_ctl(descriptor, operation, fd, &event) }
    }
}
