import Testing

@testable import ChatQueueWorker

/// A delivery is settled only when the broker confirmed its final reply.
@Suite("Pending publisher confirms")
struct PendingConfirmsTests {
    @Test("multiple confirms settle everything up to the sequence number, in order")
    func multiple() {
        var pending = PendingConfirms()
        pending.append(sequence: 3, deliveryTag: 30)
        pending.append(sequence: 5, deliveryTag: 50)
        pending.append(sequence: 9, deliveryTag: 90)
        // Sequence 4 was a chunk: confirming it settles only what is at or below it.
        #expect(pending.confirm(4, multiple: true, confirmed: true) == [.init(deliveryTag: 30, confirmed: true)])
        #expect(
            pending.confirm(9, multiple: true, confirmed: true) == [
                .init(deliveryTag: 50, confirmed: true), .init(deliveryTag: 90, confirmed: true),
            ])
        #expect(pending.count == 0)
    }

    @Test("single confirms, also out of order; confirms of chunks settle nothing")
    func single() {
        var pending = PendingConfirms()
        pending.append(sequence: 1, deliveryTag: 10)
        pending.append(sequence: 2, deliveryTag: 20)
        #expect(pending.confirm(7, multiple: false, confirmed: true).isEmpty)
        #expect(pending.confirm(2, multiple: false, confirmed: true) == [.init(deliveryTag: 20, confirmed: true)])
        #expect(pending.count == 1)
        #expect(pending.confirm(1, multiple: false, confirmed: false) == [.init(deliveryTag: 10, confirmed: false)])
        #expect(pending.count == 0)
    }

    @Test("many settled entries do not accumulate")
    func compacts() {
        var pending = PendingConfirms()
        for sequence in 1...5000 as ClosedRange<UInt64> {
            pending.append(sequence: sequence, deliveryTag: sequence)
            _ = pending.confirm(sequence, multiple: false, confirmed: true)
        }
        #expect(pending.count == 0)
        #expect(pending.storedCount <= 1025, "settled entries were never compacted away")
        // Entries still waiting survive a compaction and settle with their own tags.
        for sequence in 5001...7000 as ClosedRange<UInt64> {
            pending.append(sequence: sequence, deliveryTag: sequence + 100_000)
        }
        _ = pending.confirm(6990, multiple: true, confirmed: true)
        #expect(pending.storedCount <= 1025)
        #expect(pending.confirm(7000, multiple: true, confirmed: true).map(\.deliveryTag) == (6991...7000).map { $0 + 100_000 })
    }
}
