import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// The write end of the self-pipe, for the async-signal-safe handler.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// SIGTERM and SIGINT as a readable descriptor (the self-pipe trick), so the
/// event loop sees them in the same poll as everything else and no work runs
/// inside a signal handler: the handler only writes the signal's number to a
/// non-blocking pipe. (Glibc's Swift module does not export signalfd.)
final class SignalDescriptor {
    let descriptor: Int32

    /// Throws when the pipe can't be made (EMFILE, ENFILE) or the signals
    /// can't be routed to it: without them the worker could not stop cleanly.
    init() throws(SystemError) {
        var ends: [Int32] = [-1, -1]
        try systemCall("pipe") { pipe(&ends) }
        do throws(SystemError) {
            try Self.route(to: ends)
        } catch {
            // Leave nothing behind: no open pipe, no handler writing to a closed one.
            for signal in [SIGTERM, SIGINT] { Glibc.signal(signal, SIG_DFL) }
            signalPipeWriteEnd = -1
            close(ends[0])
            close(ends[1])
            throw error
        }
        descriptor = ends[0]
    }

    /// Makes the pipe non-blocking and points SIGTERM and SIGINT at its write end.
    private static func route(to ends: [Int32]) throws(SystemError) {
        for end in ends {
            let flags = try systemCall("fcntl(F_GETFL)") { fcntl(end, F_GETFL) }
            try systemCall("fcntl(F_SETFL)") { fcntl(end, F_SETFL, flags | O_NONBLOCK) }
            try systemCall("fcntl(F_SETFD)") { fcntl(end, F_SETFD, FD_CLOEXEC) }
        }
        signalPipeWriteEnd = ends[1]
        // A parent may hand down these signals blocked (test runners, some
        // supervisors); a blocked SIGTERM would never reach the handler.
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGTERM)
        sigaddset(&mask, SIGINT)
        try errorNumberCall("pthread_sigmask") { pthread_sigmask(SIG_UNBLOCK, &mask, nil) }
        for signal in [SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                // Async-signal-safe: one write; a full pipe already holds a signal to see.
                // errno is kept: the interrupted code may be about to read its own.
                let savedErrno = errno
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipeWriteEnd, &byte, 1)
                errno = savedErrno
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            try systemCall("sigaction") { sigaction(signal, &action, nil) }
        }
    }

    /// Signals received since the last call (numbers), without waiting.
    func take() -> [Int32] {
        var received: [Int32] = []
        var buffer: (UInt64, UInt64) = (0, 0)
        while true {
            let result: IOResult<Int>
            do {
                result = try nonBlockingSystemCall("read signal pipe") {
                    withUnsafeMutableBytes(of: &buffer) { read(descriptor, $0.baseAddress, $0.count) }
                }
            } catch {
                // Our own open, non-blocking pipe: EBADF and EFAULT trap in
                // systemCall; nothing else can fail a read of it.
                preconditionFailure("\(error): a bug in chatqueue")
            }
            guard case .processed(let count) = result, count > 0 else { return received }
            withUnsafeBytes(of: &buffer) { bytes in received.append(contentsOf: bytes[0..<count].map { Int32($0) }) }
        }
    }

    /// Waits up to `seconds` for a signal (used while backing off between
    /// connection attempts); returns early, with nothing, when interrupted.
    func wait(seconds: Double) -> [Int32] {
        var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(min(max(0, seconds * 1000), Double(Int32.max)))
        do {
            _ = try interruptibleSystemCall("poll signal pipe") { poll(&pfd, 1, milliseconds) }
        } catch {
            // ENOMEM: the wait was short; the caller waits again for what is left.
        }
        return take()
    }
}
