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

    init() {
        var ends: [Int32] = [-1, -1]
        precondition(pipe(&ends) == 0, "pipe failed: errno \(errno)")
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        descriptor = ends[0]
        signalPipeWriteEnd = ends[1]
        // A parent may hand down these signals blocked (test runners, some
        // supervisors); a blocked SIGTERM would never reach the handler.
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGTERM)
        sigaddset(&mask, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        for signal in [SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipeWriteEnd, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signal, &action, nil)
        }
    }

    /// Signals received since the last call (numbers), without waiting.
    func take() -> [Int32] {
        var received: [Int32] = []
        var buffer = [UInt8](repeating: 0, count: 16)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            guard count > 0 else { break }
            received.append(contentsOf: buffer[0..<count].map { Int32($0) })
        }
        return received
    }

    /// Waits up to `seconds` for a signal (used while backing off between connection attempts).
    func wait(seconds: Double) -> [Int32] {
        var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        _ = poll(&pfd, 1, Int32(max(0, seconds * 1000)))
        return take()
    }
}
