import Testing

@testable import ChatQueueWorker

#if canImport(Glibc)
import Glibc
#endif

/// The event loop's epoll set, with pipes standing in for sockets.
@Suite("Event poll")
struct EventPollTests {
    private func makePipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        return (ends[0], ends[1])
    }

    private func readyDescriptors(_ poll: EventPoll) -> [Int32] {
        var ready: [Int32] = []
        poll.wait(timeoutMilliseconds: 0) { ready.append($0.descriptor) }
        return ready
    }

    @Test("a watched descriptor is reported while it has input (level-triggered)")
    func reportsInput() throws {
        let poll = EventPoll()
        let (readEnd, writeEnd) = try makePipe()
        defer { close(readEnd); close(writeEnd) }
        poll.watch(readEnd, readable: true, writable: false)
        #expect(readyDescriptors(poll).isEmpty)
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
        #expect(readyDescriptors(poll) == [readEnd])
        #expect(readyDescriptors(poll) == [readEnd], "still unread: reported again")
    }

    @Test("watching for nothing hides the descriptor's events, and watching again brings them back")
    func watchForNothing() throws {
        let poll = EventPoll()
        let (readEnd, writeEnd) = try makePipe()
        defer { close(readEnd); close(writeEnd) }
        poll.watch(readEnd, readable: true, writable: false)
        poll.watch(readEnd, readable: false, writable: false)
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
        #expect(readyDescriptors(poll).isEmpty)
        poll.watch(readEnd, readable: true, writable: false)
        #expect(readyDescriptors(poll) == [readEnd])
    }

    @Test("a descriptor number closed and reused is watched again")
    func reusedNumber() throws {
        let poll = EventPoll()
        let first = try makePipe()
        poll.watch(first.read, readable: true, writable: false)
        // dup2 closes the watched pipe end (which leaves the set) and gives its
        // number to another pipe (other tests run in parallel, so no plain reuse).
        let second = try makePipe()
        try #require(dup2(second.read, first.read) == first.read)
        close(second.read)
        defer { close(first.read); close(first.write); close(second.write) }
        poll.watch(first.read, readable: true, writable: false)
        var byte: UInt8 = 1
        _ = write(second.write, &byte, 1)
        #expect(readyDescriptors(poll) == [first.read])
    }
}
