import Testing

@testable import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

@Suite("System-call layer")
struct SystemCallTests {
    @Test("a failed call throws its name and errno")
    func failureThrowsNameAndErrno() {
        #expect(throws: SystemError(call: "open /nonexistent/x", errno: ENOENT)) {
            try systemCall("open /nonexistent/x") { open("/nonexistent/x", O_RDONLY) }
        }
        #expect(SystemError(call: "open x", errno: ENOENT).description == "open x: No such file or directory")
    }

    @Test("an empty non-blocking pipe reports wouldBlock, not an error")
    func wouldBlockIsAValue() throws {
        var ends: [Int32] = [-1, -1]
        try systemCall("pipe") { pipe(&ends) }
        defer { close(ends[0]); close(ends[1]) }
        for end in ends { try systemCall("fcntl") { fcntl(end, F_SETFL, O_NONBLOCK) } }
        var byte: UInt8 = 0
        let empty = try nonBlockingSystemCall("read") { read(ends[0], &byte, 1) }
        guard case .wouldBlock = empty else { Issue.record("expected wouldBlock, got \(empty)"); return }
        byte = 7
        _ = try nonBlockingSystemCall("write") { write(ends[1], &byte, 1) }
        byte = 0
        let one = try nonBlockingSystemCall("read") { read(ends[0], &byte, 1) }
        guard case .processed(1) = one else { Issue.record("expected one byte, got \(one)"); return }
        #expect(byte == 7)
    }

    @Test("an allowed programmer-error errno throws instead of trapping")
    func allowedErrnoThrows() {
        #expect(throws: SystemError(call: "close", errno: EBADF)) {
            try systemCall("close", allowing: EBADF) { close(-1) }
        }
    }

    @Test("reading a file stops with EFBIG past the limit")
    func readStopsPastLimit() throws {
        let path = "/proc/self/status"
        let whole = try FileIO.read(path, limit: 1 << 20)
        #expect(!whole.isEmpty)
        #expect(throws: SystemError.self) { try FileIO.read("/dev/zero", limit: 100_000) }
        do {
            _ = try FileIO.read("/dev/zero", limit: 100_000)
        } catch {
            #expect(error.errno == EFBIG)
        }
    }

    @Test("the monotonic clock never goes back; the wall clock is Unix time")
    func clocks() {
        let first = MonotonicClock.now()
        let second = MonotonicClock.now()
        #expect(second >= first)
        #expect(WallClock.unixMilliseconds() > 1_700_000_000_000)
    }
}
