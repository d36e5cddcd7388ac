import Testing

@testable import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// The helpers the event loop adds to the system-call layer: waits a signal
/// may end, and pthread-style calls that return their error number.
@Suite("System-call layer: waits and error numbers")
struct WaitingCallTests {
    @Test("a wait interrupted by a signal (EINTR) returns nil instead of waiting again")
    func interruptedWaitIsNil() throws {
        let interrupted: Int32? = try interruptibleSystemCall("epoll_wait") {
            errno = EINTR
            return -1
        }
        #expect(interrupted == nil)
        let ready = try interruptibleSystemCall("epoll_wait") { Int32(3) }
        #expect(ready == 3)
    }

    @Test("a wait that fails otherwise throws its name and errno")
    func failedWaitThrows() {
        #expect(throws: SystemError(call: "poll", errno: ENOMEM)) {
            try interruptibleSystemCall("poll") { () -> Int32 in
                errno = ENOMEM
                return -1
            }
        }
    }

    @Test("a call returning its error number throws it; 0 is success")
    func errorNumberCalls() throws {
        try errorNumberCall("pthread_sigmask") { 0 }
        #expect(throws: SystemError(call: "pthread_sigmask", errno: EINVAL)) {
            try errorNumberCall("pthread_sigmask") { EINVAL }
        }
        var mask = sigset_t()
        sigemptyset(&mask)
        try errorNumberCall("pthread_sigmask") { pthread_sigmask(SIG_BLOCK, &mask, nil) }
    }
}
