// State shared by every connection of one mock server: what was asked, the
// counters that make replies unique (ids) or scripted (fail_first keys), the
// provider-like limits (MockTraffic) and what was answered (MockAnswerTally).

import Foundation
import NIOCore

final class MockUpstreamState: Sendable {
    let options: MockUpstreamOptions
    /// Set in the fixed-response mode.
    let fixedResponses: FixedResponses?
    private let ledger = Locked(Ledger())
    /// The concurrency limit, the runtime switches and requests in progress.
    let traffic: MockTraffic
    let clock = MockClock()
    /// Answers counted per event loop, keyed by the loop's identity.
    private let tallies: [ObjectIdentifier: MockAnswerTally]

    private struct Ledger {
        var recorded: [RecordedRequest] = []
        var callsPerKey: [String: Int] = [:]
        var lastCompletionID = 0
        var clientAborts: [UInt64] = []
        /// Bodies of `POST /v1/traces` (the OTLP collector stand-in), in arrival order.
        var traces: [[UInt8]] = []
        /// Answer `POST /v1/traces` with this status instead of 200 (nil: accept).
        var tracesStatus: Int?
    }

    init(options: MockUpstreamOptions, group: any EventLoopGroup) {
        self.options = options
        self.fixedResponses = options.fixedResponses ? FixedResponses(words: options.words) : nil
        self.traffic = MockTraffic(
            maxConcurrentRequests: options.maxConcurrentRequests, failEveryRequest: options.failEveryRequest)
        var tallies: [ObjectIdentifier: MockAnswerTally] = [:]
        for eventLoop in group.makeIterator() {
            tallies[ObjectIdentifier(eventLoop)] = MockAnswerTally()
        }
        self.tallies = tallies
    }

    /// The tally of `eventLoop`, which must belong to the server's group.
    func tally(for eventLoop: any EventLoop) -> MockAnswerTally {
        guard let tally = self.tallies[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("\(eventLoop) is not part of the mock upstream's event loop group")
        }
        return tally
    }

    var statistics: MockUpstreamStatistics {
        let merged = MockAnswerTally.merged(Array(self.tallies.values))
        return MockUpstreamStatistics(
            answersByStatus: merged.byStatus,
            inProgress: self.traffic.inProgress,
            peakInProgress: self.traffic.peakInProgress,
            maxConcurrentRequests: self.traffic.maxConcurrentRequests,
            failEveryRequest: self.traffic.failEveryRequest,
            seconds: merged.seconds
        )
    }

    func record(_ request: RecordedRequest) {
        guard self.options.recordRequests else { return }
        self.ledger.withLock { $0.recorded.append(request) }
    }

    var recordedRequests: [RecordedRequest] {
        self.ledger.withLock { $0.recorded }
    }

    func removeRecordedRequests() {
        self.ledger.withLock { $0.recorded.removeAll() }
    }

    /// Counts one more call carrying `key` and returns its 1-based number.
    func countCall(key: String) -> Int {
        self.ledger.withLock { ledger in
            ledger.callsPerKey[key, default: 0] += 1
            return ledger.callsPerKey[key]!
        }
    }

    func callCount(key: String) -> Int {
        self.ledger.withLock { $0.callsPerKey[key] ?? 0 }
    }

    /// A client closed its connection while a response was still being written.
    func recordClientAbort() {
        let now = DispatchTime.now().uptimeNanoseconds
        self.ledger.withLock { $0.clientAborts.append(now) }
    }

    var clientAborts: [UInt64] {
        self.ledger.withLock { $0.clientAborts }
    }

    /// The collector stand-in: records an accepted body; returns the status to answer.
    func receiveTraces(_ body: [UInt8]) -> Int {
        self.ledger.withLock { ledger in
            if let status = ledger.tracesStatus { return status }
            ledger.traces.append(body)
            return 200
        }
    }

    var receivedTraces: [[UInt8]] {
        self.ledger.withLock { $0.traces }
    }

    func setTracesStatus(_ status: Int?) {
        self.ledger.withLock { $0.tracesStatus = status }
    }

    func nextCompletionID() -> Int {
        self.ledger.withLock { ledger in
            ledger.lastCompletionID += 1
            return ledger.lastCompletionID
        }
    }
}

/// A value behind a lock. Foundation's `NSLock` keeps this portable to macOS
/// versions that lack `Synchronization.Mutex`.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try body(&self.value)
    }
}
