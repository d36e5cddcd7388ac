import Testing

@testable import ChatQueueBench

/// The per-request bookkeeping: chunks in x-seq order, then exactly one final reply.
@Suite("Benchmark request tracking")
struct RequestTrackerTests {
    /// Books a reply for request `index` at time `at` (ns).
    private func reply(
        _ tracker: inout RequestTracker, _ index: Int, _ type: String, seq: Int64?, attempt: Int64? = 1, at: UInt64 = 0
    ) -> RequestTracker.Outcome {
        tracker.received(
            requestID: Substring(String(index)), kind: .init(type: type), seq: seq, attempt: attempt, at: at)
    }

    @Test("a stream in order with one final completes, and its latency is publish to final")
    func inOrder() {
        var tracker = RequestTracker(requests: 2, expectedChunks: 3)
        tracker.published(0, at: 1_000)
        tracker.published(1, at: 2_000)
        #expect(tracker.inFlight == 2)
        for seq in 0..<3 {
            #expect(reply(&tracker, 0, "chat.completion.chunk", seq: Int64(seq)) == .chunk)
        }
        #expect(reply(&tracker, 0, "chat.completion", seq: 3, at: 5_000) == .final)
        #expect(tracker.inFlight == 1)
        #expect(!tracker.allFinal)
        for seq in 0..<3 { _ = reply(&tracker, 1, "chat.completion.chunk", seq: Int64(seq)) }
        #expect(reply(&tracker, 1, "chat.completion", seq: 3, at: 9_000) == .final)
        #expect(tracker.allFinal)
        #expect(tracker.completed == 2)
        #expect(tracker.failed == 0)
        #expect(tracker.chunks == 6)
        #expect(tracker.latencies == [4_000, 7_000])
        #expect(tracker.violations.isEmpty)
    }

    @Test("a gap or a repeat in x-seq is out of order and the request does not count as completed")
    func outOfOrder() {
        var tracker = RequestTracker(requests: 1, expectedChunks: nil)
        tracker.published(0, at: 0)
        #expect(reply(&tracker, 0, "chat.completion.chunk", seq: 0) == .chunk)
        #expect(reply(&tracker, 0, "chat.completion.chunk", seq: 2) == .violation(.outOfOrder))
        // Resynchronized after the gap: the next one in order is fine again.
        #expect(reply(&tracker, 0, "chat.completion.chunk", seq: 3) == .chunk)
        #expect(reply(&tracker, 0, "chat.completion", seq: 4) == .final)
        #expect(tracker.completed == 0)
        #expect(tracker.failed == 1)
        #expect(tracker.violations == [.outOfOrder: 1])
    }

    @Test("a second final, or a chunk after the final, is a violation and does not end the request twice")
    func duplicates() {
        var tracker = RequestTracker(requests: 1, expectedChunks: 0)
        tracker.published(0, at: 0)
        #expect(reply(&tracker, 0, "chat.completion", seq: 0) == .final)
        #expect(reply(&tracker, 0, "chat.completion", seq: 1) == .violation(.duplicateFinal))
        #expect(reply(&tracker, 0, "chat.completion.chunk", seq: 2) == .violation(.chunkAfterFinal))
        #expect(tracker.finals == 1)
        #expect(tracker.inFlight == 0)
        #expect(tracker.completed == 0)
        #expect(tracker.violations == [.duplicateFinal: 1, .chunkAfterFinal: 1])
    }

    @Test("an error reply ends the request as an error")
    func errorReply() {
        var tracker = RequestTracker(requests: 1, expectedChunks: 0)
        tracker.published(0, at: 0)
        #expect(reply(&tracker, 0, "error", seq: 0) == .final)
        #expect(tracker.errorReplies == 1)
        #expect(tracker.completed == 0)
        #expect(tracker.failed == 1)
    }

    @Test("a completion after fewer chunks than the scenario produces is flagged")
    func wrongChunkCount() {
        var tracker = RequestTracker(requests: 1, expectedChunks: 2)
        tracker.published(0, at: 0)
        _ = reply(&tracker, 0, "chat.completion.chunk", seq: 0)
        #expect(reply(&tracker, 0, "chat.completion", seq: 1) == .final)
        #expect(tracker.violations == [.wrongChunkCount: 1])
        #expect(tracker.completed == 0)
    }

    @Test("replies for unknown or unsent requests, or of an unknown type, are violations")
    func unknown() {
        var tracker = RequestTracker(requests: 2, expectedChunks: nil)
        tracker.published(0, at: 0)
        #expect(tracker.received(requestID: nil, kind: .completion, seq: 0, attempt: 1, at: 0) == .violation(.unknownRequest))
        #expect(tracker.received(requestID: "x", kind: .completion, seq: 0, attempt: 1, at: 0) == .violation(.unknownRequest))
        #expect(reply(&tracker, 5, "chat.completion", seq: 0) == .violation(.unknownRequest))
        #expect(reply(&tracker, 1, "chat.completion", seq: 0) == .violation(.unknownRequest))
        #expect(reply(&tracker, 0, "surprise", seq: 0) == .violation(.unexpectedType))
        #expect(tracker.finals == 0)
        #expect(tracker.missing == 1)
    }

    @Test("a redelivery restarts x-seq at 0; replies of an older attempt are out of order")
    func redelivery() {
        var tracker = RequestTracker(requests: 1, expectedChunks: 2)
        tracker.published(0, at: 0)
        _ = reply(&tracker, 0, "chat.completion.chunk", seq: 0, attempt: 1)
        #expect(reply(&tracker, 0, "chat.completion.chunk", seq: 0, attempt: 2) == .chunk)
        #expect(reply(&tracker, 0, "chat.completion.chunk", seq: 1, attempt: 1) == .violation(.outOfOrder))
        #expect(reply(&tracker, 0, "chat.completion.chunk", seq: 1, attempt: 2) == .chunk)
        #expect(reply(&tracker, 0, "chat.completion", seq: 2, attempt: 2) == .final)
        #expect(tracker.redeliveries == 1)
    }

    @Test("requests still in flight at the end are missing and count as failed")
    func missing() {
        var tracker = RequestTracker(requests: 3, expectedChunks: 0)
        tracker.published(0, at: 0)
        tracker.published(1, at: 0)
        _ = reply(&tracker, 0, "chat.completion", seq: 0)
        #expect(tracker.missing == 1)
        #expect(tracker.sent == 2)
        #expect(tracker.failed == 1)
    }
}

@Suite("Latency distributions")
struct DistributionTests {
    @Test("nearest-rank percentiles: p50 and p99 of 1...100 are 50 and 99")
    func nearestRank() throws {
        let distribution = try #require(Distribution(samples: (1...100).reversed().map(Double.init)))
        #expect(distribution == Distribution(count: 100, p50: 50, p99: 99, max: 100))
    }

    @Test("small sets: one sample is every percentile; of 10, p99 is the largest")
    func small() throws {
        #expect(Distribution(samples: [7]) == Distribution(count: 1, p50: 7, p99: 7, max: 7))
        let ten = try #require(Distribution(samples: (1...10).map(Double.init)))
        #expect(ten.p50 == 5)
        #expect(ten.p99 == 10)
        #expect(Distribution(samples: []) == nil)
    }

    @Test("percentile of 1,000 samples: p99 is the 990th")
    func thousand() {
        let sorted = (1...1000).map(Double.init)
        #expect(Distribution.percentile(99, ofSorted: sorted) == 990)
        #expect(Distribution.percentile(100, ofSorted: sorted) == 1000)
        #expect(Distribution.percentile(1, ofSorted: sorted) == 10)
    }
}
