/// Per-request bookkeeping of a run, checked against the wire contract
/// (docs/protocol.md): every request gets its chunks in x-seq order (0, 1, 2,
/// ...) and then exactly one final reply whose x-seq follows the last chunk.
/// Pure: the generator feeds it what arrives, with monotonic times in
/// nanoseconds. Requests are numbered 0..<requests (their request id is the
/// decimal number).
public struct RequestTracker: Sendable {
    /// What a reply's AMQP `type` says it is.
    public enum ReplyKind: Sendable, Equatable {
        case chunk
        case completion
        case error
        case other

        public init(type: String) {
            switch type {
            case "chat.completion.chunk": self = .chunk
            case "chat.completion": self = .completion
            case "error": self = .error
            default: self = .other
            }
        }
    }

    /// A breach of the contract, counted by kind.
    public enum Violation: String, Sendable, CaseIterable, Comparable {
        /// x-seq not the next one expected (a gap, a repeat, or a stale attempt).
        case outOfOrder = "out_of_order"
        case chunkAfterFinal = "chunk_after_final"
        case duplicateFinal = "duplicate_final"
        /// A completion after a different number of chunks than the scenario produces.
        case wrongChunkCount = "wrong_chunk_count"
        /// No usable x-request-id, or one this run never sent.
        case unknownRequest = "unknown_request"
        /// An AMQP type that is neither a chunk nor a final reply.
        case unexpectedType = "unexpected_type"

        public static func < (lhs: Violation, rhs: Violation) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// What one reply meant.
    public enum Outcome: Sendable, Equatable {
        /// A chunk in order.
        case chunk
        /// The request's first final reply: it is no longer in flight.
        case final
        /// Something the contract does not allow; counted, otherwise ignored.
        case violation(Violation)
    }

    private enum State: UInt8 {
        case unsent, inFlight, completed, errorReply
    }

    /// Chunks each request must get before a `chat.completion`; nil: not checked.
    public let expectedChunks: Int?
    private var state: [State]
    private var flawed: [Bool]
    private var publishedAt: [UInt64]
    private var nextSeq: [Int64]
    private var attempt: [Int64]
    private var chunkCount: [Int32]

    public private(set) var sent = 0
    /// Requests whose first final reply arrived (either kind).
    public private(set) var finals = 0
    /// Chunks received in order.
    public private(set) var chunks = 0
    public private(set) var errorReplies = 0
    /// Replies of a later attempt (x-attempt went up): the broker redelivered a request.
    public private(set) var redeliveries = 0
    public private(set) var violations: [Violation: Int] = [:]
    /// Publish to first final reply, in nanoseconds, in arrival order.
    public private(set) var latencies: [UInt64] = []

    public init(requests: Int, expectedChunks: Int?) {
        self.expectedChunks = expectedChunks
        state = Array(repeating: .unsent, count: requests)
        flawed = Array(repeating: false, count: requests)
        publishedAt = Array(repeating: 0, count: requests)
        nextSeq = Array(repeating: 0, count: requests)
        attempt = Array(repeating: 1, count: requests)
        chunkCount = Array(repeating: 0, count: requests)
        latencies.reserveCapacity(requests)
    }

    public var requests: Int { state.count }
    public var inFlight: Int { sent - finals }
    public var allFinal: Bool { finals == requests }

    public mutating func published(_ index: Int, at time: UInt64) {
        precondition(state[index] == .unsent, "request \(index) published twice")
        state[index] = .inFlight
        publishedAt[index] = time
        sent += 1
    }

    /// Books one reply. `requestID` is the reply's x-request-id.
    public mutating func received(
        requestID: Substring?, kind: ReplyKind, seq: Int64?, attempt replyAttempt: Int64?, at time: UInt64
    ) -> Outcome {
        guard let requestID, let index = Int(requestID), index >= 0, index < requests, state[index] != .unsent else {
            return count(.unknownRequest)
        }
        if kind == .other { return flag(index, .unexpectedType) }

        let replyAttempt = replyAttempt ?? 1
        if replyAttempt > attempt[index] {
            // A redelivery restarts x-seq at 0 (docs/protocol.md "Redelivery").
            attempt[index] = replyAttempt
            nextSeq[index] = 0
            chunkCount[index] = 0
            redeliveries += 1
        } else if replyAttempt < attempt[index] {
            return flag(index, .outOfOrder)
        }

        var outcome = Outcome.chunk
        if let seq, seq == nextSeq[index] {
            nextSeq[index] = seq + 1
        } else {
            outcome = flag(index, .outOfOrder)
            if let seq { nextSeq[index] = seq + 1 }  // resynchronize: count one gap once
        }

        let isFinal = state[index] == .completed || state[index] == .errorReply
        switch kind {
        case .chunk:
            if isFinal { return flag(index, .chunkAfterFinal) }
            chunkCount[index] += 1
            chunks += 1
            return outcome
        case .completion, .error:
            if isFinal { return flag(index, .duplicateFinal) }
            finals += 1
            latencies.append(time &- publishedAt[index])
            if kind == .error {
                state[index] = .errorReply
                errorReplies += 1
            } else {
                state[index] = .completed
                if let expectedChunks, Int(chunkCount[index]) != expectedChunks { _ = flag(index, .wrongChunkCount) }
            }
            return .final
        case .other:
            return flag(index, .unexpectedType)
        }
    }

    private mutating func count(_ violation: Violation) -> Outcome {
        violations[violation, default: 0] += 1
        return .violation(violation)
    }

    private mutating func flag(_ index: Int, _ violation: Violation) -> Outcome {
        flawed[index] = true
        return count(violation)
    }

    /// Requests that got exactly one final `chat.completion`, every chunk in order, and nothing wrong.
    public var completed: Int {
        var total = 0
        for index in state.indices where state[index] == .completed && !flawed[index] { total += 1 }
        return total
    }

    /// Requests published but still waiting for a final reply.
    public var missing: Int {
        var total = 0
        for item in state where item == .inFlight { total += 1 }
        return total
    }

    /// Requests with any contract violation (whatever their final reply was).
    public var flawedRequests: Int {
        var total = 0
        for item in flawed where item { total += 1 }
        return total
    }

    /// Requests sent that did not complete cleanly: error replies, violations, missing finals.
    public var failed: Int { sent - completed }
}

/// Percentiles of a set of samples (nearest rank: the smallest sample with at
/// least p% of all samples at or below it).
public struct Distribution: Sendable, Equatable {
    public var count: Int
    public var p50: Double
    public var p99: Double
    public var max: Double

    public init(count: Int, p50: Double, p99: Double, max: Double) {
        self.count = count
        self.p50 = p50
        self.p99 = p99
        self.max = max
    }

    /// nil when there are no samples.
    public init?(samples: [Double]) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        self.init(
            count: sorted.count, p50: Self.percentile(50, ofSorted: sorted), p99: Self.percentile(99, ofSorted: sorted),
            max: sorted[sorted.count - 1])
    }

    /// The nearest-rank percentile `p` (1...100) of ascending `sorted` samples:
    /// the sample of rank ceil(p * n / 100), in integers so 99% of 100 is rank 99.
    public static func percentile(_ p: Int, ofSorted sorted: [Double]) -> Double {
        precondition(!sorted.isEmpty && (1...100).contains(p))
        let rank = (p * sorted.count + 99) / 100
        return sorted[rank - 1]
    }
}
