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

    private func readyEvents(_ poll: EventPoll) -> [EventPoll.Event] {
        var ready: [EventPoll.Event] = []
        poll.wait(timeoutMilliseconds: 0) { ready.append($0) }
        return ready
    }

    private func readyDescriptors(_ poll: EventPoll) -> [Int32] {
        var ready: [Int32] = []
        poll.wait(timeoutMilliseconds: 0) { ready.append($0.descriptor) }
        return ready
    }

    @Test("a watched descriptor is reported while it has input (level-triggered)")
    func reportsInput() throws {
        let poll = try EventPoll()
        let (readEnd, writeEnd) = try makePipe()
        defer { close(readEnd); close(writeEnd) }
        try poll.watch(readEnd, as: .upstream, readable: true, writable: false)
        #expect(readyDescriptors(poll).isEmpty)
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
        #expect(readyDescriptors(poll) == [readEnd])
        #expect(readyDescriptors(poll) == [readEnd], "still unread: reported again")
    }

    @Test("watching for nothing hides the descriptor's events, and watching again brings them back")
    func watchForNothing() throws {
        let poll = try EventPoll()
        let (readEnd, writeEnd) = try makePipe()
        defer { close(readEnd); close(writeEnd) }
        try poll.watch(readEnd, as: .upstream, readable: true, writable: false)
        try poll.watch(readEnd, as: .upstream, readable: false, writable: false)
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
        #expect(readyDescriptors(poll).isEmpty)
        try poll.watch(readEnd, as: .upstream, readable: true, writable: false)
        #expect(readyDescriptors(poll) == [readEnd])
    }

    @Test("a descriptor number closed and reused is watched again")
    func reusedNumber() throws {
        let poll = try EventPoll()
        let first = try makePipe()
        try poll.watch(first.read, as: .upstream, readable: true, writable: false)
        // dup2 closes the watched pipe end (which leaves the set) and gives its
        // number to another pipe (other tests run in parallel, so no plain reuse).
        let second = try makePipe()
        try #require(dup2(second.read, first.read) == first.read)
        close(second.read)
        defer { close(first.read); close(first.write); close(second.write) }
        try poll.watch(first.read, as: .upstream, readable: true, writable: false)
        var byte: UInt8 = 1
        _ = write(second.write, &byte, 1)
        #expect(readyDescriptors(poll) == [first.read])
    }

    @Test("each descriptor's events carry the source it was registered for")
    func sources() throws {
        let poll = try EventPoll()
        let consumer = try makePipe()
        let signals = try makePipe()
        defer { for fd in [consumer.read, consumer.write, signals.read, signals.write] { close(fd) } }
        try poll.watch(consumer.read, as: .consumer, readable: true, writable: false)
        try poll.watch(signals.read, as: .signals, readable: true, writable: false)
        var byte: UInt8 = 1
        _ = write(consumer.write, &byte, 1)
        _ = write(signals.write, &byte, 1)
        let events = readyEvents(poll).sorted { $0.descriptor < $1.descriptor }
        let expected: [(Int32, EventPoll.Source)] = [(consumer.read, .consumer), (signals.read, .signals)]
            .sorted { $0.0 < $1.0 }
        #expect(events.map(\.descriptor) == expected.map(\.0))
        #expect(events.map(\.source) == expected.map(\.1))
        #expect(events.allSatisfy { $0.readable && !$0.writable && !$0.failed })
        #expect(poll.source(of: consumer.read) == .consumer)
    }

    @Test("a pipe whose write end is closed reports a hang-up to its handler, as readable and writable")
    func hangUp() throws {
        let poll = try EventPoll()
        let (readEnd, writeEnd) = try makePipe()
        defer { close(readEnd) }
        try poll.watch(readEnd, as: .publisher, readable: true, writable: false)
        close(writeEnd)
        let events = readyEvents(poll)
        try #require(events.count == 1)
        #expect(events[0].descriptor == readEnd)
        #expect(events[0].source == .publisher)
        #expect(events[0].failed, "EPOLLHUP")
        #expect(events[0].readable && events[0].writable, "the handler's read or write tells what happened")
    }

    @Test("a pipe whose read end is closed reports an error to the writer's handler")
    func error() throws {
        let poll = try EventPoll()
        let (readEnd, writeEnd) = try makePipe()
        defer { close(writeEnd) }
        try poll.watch(writeEnd, as: .consumer, readable: false, writable: true)
        #expect(readyEvents(poll).map(\.failed) == [false], "room to write, no error yet")
        close(readEnd)
        let events = readyEvents(poll)
        try #require(events.count == 1)
        #expect(events[0].source == .consumer)
        #expect(events[0].failed, "EPOLLERR")
        #expect(events[0].readable && events[0].writable)
    }

    @Test("forget removes the descriptor and its handler: no more events, no source")
    func forget() throws {
        let poll = try EventPoll()
        let (readEnd, writeEnd) = try makePipe()
        defer { close(readEnd); close(writeEnd) }
        try poll.watch(readEnd, as: .upstream, readable: true, writable: false)
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
        poll.forget(readEnd)
        #expect(readyDescriptors(poll).isEmpty)
        #expect(poll.source(of: readEnd) == nil)
        poll.forget(readEnd)  // twice, or never watched: harmless
        try poll.watch(readEnd, as: .signals, readable: true, writable: false)
        #expect(readyEvents(poll).map(\.source) == [.signals], "watched again, with its new handler")
    }

    @Test("a handler that forgets a descriptor reported in the same wait gets no event for it")
    func forgetDuringWait() throws {
        let poll = try EventPoll()
        let first = try makePipe()
        let second = try makePipe()
        defer { for fd in [first.read, first.write, second.read, second.write] { close(fd) } }
        try poll.watch(first.read, as: .upstream, readable: true, writable: false)
        try poll.watch(second.read, as: .upstream, readable: true, writable: false)
        var byte: UInt8 = 1
        _ = write(first.write, &byte, 1)
        _ = write(second.write, &byte, 1)
        var handled: [Int32] = []
        poll.wait(timeoutMilliseconds: 0) { event in
            handled.append(event.descriptor)
            poll.forget(event.descriptor == first.read ? second.read : first.read)
        }
        #expect(handled.count == 1)
    }

    @Test("update makes no change when the interest is the same, and applies a new one")
    func update() throws {
        let poll = try EventPoll()
        let (readEnd, writeEnd) = try makePipe()
        defer { close(readEnd); close(writeEnd) }
        try poll.watch(writeEnd, as: .publisher, readable: true, writable: false)
        #expect(readyDescriptors(poll).isEmpty, "a pipe's write end is never readable")
        try poll.update(writeEnd, as: .publisher, readable: true, writable: false)
        #expect(readyDescriptors(poll).isEmpty)
        try poll.update(writeEnd, as: .publisher, readable: false, writable: true)
        #expect(readyDescriptors(poll) == [writeEnd], "now watched for room")
    }

    @Test("a descriptor that is not open is not watched, and nothing traps")
    func closedDescriptor() throws {
        let poll = try EventPoll()
        // The highest descriptor number the process may have: descriptors are
        // handed out lowest first, so tests running alongside never reuse it
        // (a closed low number could be reopened by another test meanwhile).
        let closed = Int32(getdtablesize() - 1)
        #expect(fcntl(closed, F_GETFD) == -1 && errno == EBADF, "descriptor \(closed) is not open")
        try poll.watch(closed, as: .upstream, readable: true, writable: false)
        #expect(readyDescriptors(poll).isEmpty)
        poll.forget(closed)
    }
}
