// What a running mock has answered: counts by status, requests in progress,
// and a per-second series, for tests and for scripts that measure a worker
// against a rate-limited mock (`GET /_mock/statistics`). Each event loop counts
// its own answers behind its own lock, so connections never wait for each
// other; a read merges the loops.

import ChatQueueCore
import NIOCore

/// A snapshot of ``MockUpstream/statistics()``.
public struct MockUpstreamStatistics: Sendable, Equatable {
    /// Responses sent, by HTTP status (every path but the statistics route itself).
    public var answersByStatus: [Int: Int]
    /// Completion requests received and not yet fully answered (429s of the limit never count).
    public var inProgress: Int
    /// The most completion requests in progress at once since start.
    public var peakInProgress: Int
    /// The limit in force (``MockUpstreamOptions/maxConcurrentRequests``, or the last runtime switch).
    public var maxConcurrentRequests: Int?
    /// The status every completion request fails with now, if any.
    public var failEveryRequest: Int?
    /// One entry per second since the first answer, oldest first, without gaps
    /// (the last ``MockUpstreamStatistics/retainedSeconds`` seconds only).
    public var seconds: [Second]

    /// How much of the per-second series a mock keeps.
    public static let retainedSeconds = 3600

    /// What happened in one second of the mock's life.
    public struct Second: Sendable, Equatable {
        /// Seconds since the mock started (0 is its first second).
        public var offset: Int
        /// Responses with status 200.
        public var ok: Int
        /// Responses with status 429 (the limit's and scripted ones).
        public var rateLimited: Int
        /// Responses with any other status.
        public var other: Int
        /// The most completion requests in progress, as seen when requests arrived this second.
        public var peakInProgress: Int

        public init(offset: Int, ok: Int = 0, rateLimited: Int = 0, other: Int = 0, peakInProgress: Int = 0) {
            self.offset = offset
            self.ok = ok
            self.rateLimited = rateLimited
            self.other = other
            self.peakInProgress = peakInProgress
        }
    }

    public init(
        answersByStatus: [Int: Int] = [:], inProgress: Int = 0, peakInProgress: Int = 0,
        maxConcurrentRequests: Int? = nil, failEveryRequest: Int? = nil, seconds: [Second] = []
    ) {
        self.answersByStatus = answersByStatus
        self.inProgress = inProgress
        self.peakInProgress = peakInProgress
        self.maxConcurrentRequests = maxConcurrentRequests
        self.failEveryRequest = failEveryRequest
        self.seconds = seconds
    }

    /// Responses with `status` so far.
    public func answers(_ status: Int) -> Int {
        self.answersByStatus[status] ?? 0
    }

    /// The JSON `GET /_mock/statistics` serves (statuses as string keys, in order).
    public var json: JSONValue {
        let statuses = self.answersByStatus.keys.sorted().map { (String($0), JSONValue(integerLiteral: self.answersByStatus[$0]!)) }
        let seconds = self.seconds.map { second -> JSONValue in
            [
                "second": .init(integerLiteral: second.offset),
                "ok": .init(integerLiteral: second.ok),
                "rate_limited": .init(integerLiteral: second.rateLimited),
                "other": .init(integerLiteral: second.other),
                "peak_in_progress": .init(integerLiteral: second.peakInProgress),
            ]
        }
        return [
            "answers_by_status": .object(JSONObject(statuses)),
            "in_progress": .init(integerLiteral: self.inProgress),
            "peak_in_progress": .init(integerLiteral: self.peakInProgress),
            "max_concurrent_requests": self.maxConcurrentRequests.map { .init(integerLiteral: $0) } ?? .null,
            "fail_every_request": self.failEveryRequest.map { .init(integerLiteral: $0) } ?? .null,
            "seconds": .array(seconds),
        ]
    }
}

/// One event loop's counts. Written on its loop, read by ``MockUpstream/statistics()``.
final class MockAnswerTally: Sendable {
    private let counts = Locked(Counts())

    struct Counts {
        var byStatus: [Int: Int] = [:]
        /// `series[i]` is second `firstOffset + i`.
        var series: [MockUpstreamStatistics.Second] = []
        var firstOffset = 0

        /// The entry of second `offset`, appending empty seconds up to it (earlier ones are not kept).
        mutating func withSecond(_ offset: Int, _ body: (inout MockUpstreamStatistics.Second) -> Void) {
            if self.series.isEmpty { self.firstOffset = offset }
            guard offset >= self.firstOffset else { return }
            while self.firstOffset + self.series.count <= offset {
                self.series.append(.init(offset: self.firstOffset + self.series.count))
            }
            body(&self.series[offset - self.firstOffset])
            // Drop the oldest hour at once, so trimming costs nothing per answer.
            if self.series.count >= 2 * MockUpstreamStatistics.retainedSeconds {
                let dropped = self.series.count - MockUpstreamStatistics.retainedSeconds
                self.series.removeFirst(dropped)
                self.firstOffset += dropped
            }
        }
    }

    /// A response with `status` began in second `offset`.
    func countAnswer(_ status: Int, second offset: Int) {
        self.counts.withLock { counts in
            counts.byStatus[status, default: 0] += 1
            counts.withSecond(offset) { second in
                switch status {
                case 200: second.ok += 1
                case 429: second.rateLimited += 1
                default: second.other += 1
                }
            }
        }
    }

    /// A completion request was admitted in second `offset` with `inProgress` in progress (itself included).
    func noteInProgress(_ inProgress: Int, second offset: Int) {
        self.counts.withLock { counts in
            counts.withSecond(offset) { second in
                second.peakInProgress = max(second.peakInProgress, inProgress)
            }
        }
    }

    var snapshot: Counts {
        self.counts.withLock { $0 }
    }

    /// The loops' counts as one: statuses summed, series merged second by second.
    static func merged(_ tallies: [MockAnswerTally]) -> (byStatus: [Int: Int], seconds: [MockUpstreamStatistics.Second]) {
        let snapshots = tallies.map(\.snapshot)
        var byStatus: [Int: Int] = [:]
        var seconds: [Int: MockUpstreamStatistics.Second] = [:]
        for snapshot in snapshots {
            byStatus.merge(snapshot.byStatus, uniquingKeysWith: +)
            for second in snapshot.series {
                var total = seconds[second.offset] ?? .init(offset: second.offset)
                total.ok += second.ok
                total.rateLimited += second.rateLimited
                total.other += second.other
                total.peakInProgress = max(total.peakInProgress, second.peakInProgress)
                seconds[second.offset] = total
            }
        }
        guard let first = seconds.keys.min(), let last = seconds.keys.max() else { return (byStatus, []) }
        let start = max(first, last - MockUpstreamStatistics.retainedSeconds + 1)
        return (byStatus, (start...last).map { seconds[$0] ?? .init(offset: $0) })
    }
}

/// Seconds since a mock started, for the per-second series.
struct MockClock: Sendable {
    let start = NIODeadline.now()

    var secondOffset: Int {
        Int((NIODeadline.now() - self.start).nanoseconds / 1_000_000_000)
    }
}
