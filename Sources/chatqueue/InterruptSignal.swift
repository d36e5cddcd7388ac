import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C (SIGINT) as something to poll between waits: the signal is blocked
/// for the process (threads started later inherit the mask), so no handler
/// runs at an arbitrary point; `take()` reports and consumes a pending one.
struct InterruptSignal {
    private var set = sigset_t()

    /// Blocks SIGINT from now on.
    init() {
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Whether Ctrl-C was pressed since the last call (it is consumed).
    func take() -> Bool {
        var pending = sigset_t()
        guard sigpending(&pending) == 0, sigismember(&pending, SIGINT) == 1 else { return false }
        var set = self.set
        var now = timespec(tv_sec: 0, tv_nsec: 0)
        return sigtimedwait(&set, nil, &now) == SIGINT
    }
}
