import Testing

@testable import ChatQueueAMQP

#if canImport(Glibc)
import Glibc
#endif

/// Batched writes to a socket that takes less than is queued: nothing may be
/// lost, reordered or block.
@Suite("Outgoing AMQP bytes")
struct OutgoingBytesTests {
    private func socketPair() throws -> (Int32, Int32) {
        var ends: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        var small: Int32 = 4096
        setsockopt(ends[0], SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        return (ends[0], ends[1])
    }

    @Test("a full socket keeps the rest queued, in order, until the peer reads", .timeLimit(.minutes(1)))
    func partialWrites() throws {
        let (writer, reader) = try socketPair()
        defer { close(writer); close(reader) }
        let payload = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        var outgoing = OutgoingBytes()
        outgoing.bytes = payload
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var fullSocketSeen = false
        while true {
            let done = try outgoing.write(to: writer)  // never blocks
            if done { break }
            fullSocketSeen = true
            // The connection must not read (nor let rabbitmq-c write) meanwhile.
            #expect(outgoing.isWaitingForRoom)
            let count = read(reader, &buffer, buffer.count)
            #expect(count > 0)
            received.append(contentsOf: buffer[0..<max(count, 0)])
        }
        #expect(fullSocketSeen, "the socket should have filled up")
        #expect(outgoing.isEmpty && !outgoing.isWaitingForRoom)
        while received.count < payload.count {
            let count = read(reader, &buffer, buffer.count)
            guard count > 0 else { break }
            received.append(contentsOf: buffer[0..<count])
        }
        #expect(received == payload)
    }

    @Test("a closed peer is an error, not a silent drop")
    func closedPeer() throws {
        let (writer, reader) = try socketPair()
        defer { close(writer) }
        close(reader)
        var outgoing = OutgoingBytes()
        outgoing.bytes = [1, 2, 3]
        #expect(throws: AMQPError.self) { _ = try outgoing.write(to: writer) }
    }

    @Test("a retry after a full socket starts at the same bytes, with what was queued meanwhile after them (TLS retry rule)")
    func retryStartsAtTheSameBytes() throws {
        var outgoing = OutgoingBytes()
        outgoing.bytes = Array(0..<100)
        var calls: [[UInt8]] = []
        var full = true
        func attempt() throws -> Bool {
            try outgoing.write { bytes, count in
                calls.append(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
                if calls.count == 1 { return .wrote(30) }
                if full { return .full }
                return .wrote(count)
            }
        }
        #expect(try attempt() == false)
        #expect(outgoing.isWaitingForRoom && outgoing.count == 70)
        outgoing.bytes += [200, 201]  // a later frame, queued while the record waits
        full = false
        #expect(try attempt() == true)
        #expect(calls.count == 3)
        #expect(calls[1] == Array(30..<100))
        #expect(calls[2] == Array(30..<100) + [200, 201], "the retry must begin with the bytes of the refused write")
        #expect(outgoing.isEmpty && !outgoing.isWaitingForRoom)
    }

    @Test("a failed write throws with its reason and keeps the bytes")
    func failedWrite() {
        var outgoing = OutgoingBytes()
        outgoing.bytes = [1, 2, 3]
        #expect(throws: AMQPError.self) { _ = try outgoing.write { _, _ in .failed("TLS error") } }
        #expect(outgoing.count == 3)
    }
}
