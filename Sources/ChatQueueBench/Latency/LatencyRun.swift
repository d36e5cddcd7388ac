import ChatQueueAMQP
import ChatQueueSystem
import Foundation

/// The latency scenario: what chatqueue adds to the time to first chunk and
/// to the gaps between chunks, against the same streamed request sent
/// straight to the upstream, next to the echo's broker round trip.
///
/// In `rounds` rounds (so a busier moment of the machine touches all three
/// alike), each sends its share of `requests`:
/// 1. straight to the upstream over HTTP (`DirectStreamClient`);
/// 2. through chatqueue: published to the worker's queue, chunks read from the reply queue;
/// 3. to the echo's queue (non-stream, ten times as many: they are quick):
///    publish to reply, the broker round trip.
///
/// Each path keeps `concurrency` requests in flight. A request's send time is
/// read just before its bytes are written; a chunk's arrival is the moment
/// poll(2) reports its bytes readable, before they are read or parsed (every
/// chunk of one read shares it).
public enum LatencyRun {
    public struct Options: Sendable {
        public var load: LoadOptions
        /// The worker's upstream, called directly.
        public var upstream: DirectEndpoint
        /// The echo's request queue; nil: no round-trip figures.
        public var echoQueue: String?
        public var rounds = 4
        /// Echo requests per request of each path.
        public var echoRequestsPerRequest = 10

        public init(load: LoadOptions, upstream: DirectEndpoint, echoQueue: String?) {
            self.load = load
            self.upstream = upstream
            self.echoQueue = echoQueue
        }
    }

    public static func run(_ options: Options, progress: ((String) -> Void)? = nil) throws -> RunResult {
        let load = options.load.load
        let connection = options.load.connection
        try LoadGenerator.waitForQueue(options.load.queue, connection: connection, timeout: options.load.queueWaitSeconds)
        if let echoQueue = options.echoQueue {
            try LoadGenerator.waitForQueue(echoQueue, connection: connection, timeout: options.load.queueWaitSeconds)
        }
        let body = load.requestBody
        let reader = try ReplyReader(options: connection, idleTimeout: options.load.idleTimeout)
        defer { reader.requester.connection.close() }
        let direct = try DirectStreamClient(
            endpoint: options.upstream, body: body, expectedChunks: load.expectedChunks, concurrency: load.concurrency)

        let echoRequests = options.echoQueue == nil ? 0 : load.requests * options.echoRequestsPerRequest
        var directTimings = ChunkTimings(requests: load.requests)
        var queueTimings = ChunkTimings(requests: load.requests)
        var echoTimings = ChunkTimings(requests: echoRequests)
        var queueTracker = RequestTracker(requests: load.requests, expectedChunks: load.expectedChunks)
        var echoTracker = RequestTracker(requests: echoRequests, expectedChunks: nil)
        let echoBody = BenchLoad(scenario: .ceiling).requestBody

        let sampler = ResourceSampler(watching: options.load.watched)
        let startedAt = ISO8601DateFormatter().string(from: Date())
        let start = sampler.snapshot()
        let firstSend = MonotonicClock.now()
        let rounds = max(1, min(options.rounds, load.requests))
        for round in 0..<rounds {
            let share = share(of: load.requests, round: round, rounds: rounds)
            try direct.run(share, timings: &directTimings, idleTimeout: options.load.idleTimeout)
            try reader.run(
                share, queue: options.load.queue, body: body, concurrency: load.concurrency, tracker: &queueTracker,
                timings: &queueTimings)
            if let echoQueue = options.echoQueue {
                try reader.run(
                    self.share(of: echoRequests, round: round, rounds: rounds), queue: echoQueue, body: echoBody,
                    concurrency: load.concurrency, tracker: &echoTracker, timings: &echoTimings)
            }
            progress?(
                "\(options.load.label): round \(round + 1)/\(rounds): direct \(direct.completed) completed, "
                    + "chatqueue \(queueTracker.completed), echo \(echoTracker.completed)")
        }
        let wall = Double(MonotonicClock.now() &- firstSend) / 1e9
        let end = sampler.snapshot()
        let usage = sampler.usage(from: start, to: end)
        if let failure = direct.firstFailure { progress?("direct path: \(direct.failed) failed, first: \(failure)") }

        let added = AddedLatency(
            intervalMilliseconds: load.intervalMilliseconds, chatqueue: queueTimings.figures,
            direct: directTimings.figures,
            echoRoundTrip: Distribution(samples: echoTracker.latencies.map(ChunkTimings.microseconds)))
        var violations: [String: Int] = [:]
        for (violation, count) in queueTracker.violations { violations[violation.rawValue, default: 0] += count }
        for (violation, count) in echoTracker.violations { violations["echo_" + violation.rawValue, default: 0] += count }
        // Every path must be clean for the run to count: the direct path's and
        // the echo's failures are errors of the run too.
        let errors = queueTracker.failed + (load.requests - direct.completed) + echoTracker.failed
        return RunResult(
            label: options.load.label, scenario: load.scenario, requests: load.requests, concurrency: load.concurrency,
            words: load.words, intervalMilliseconds: load.intervalMilliseconds, startedAt: startedAt,
            sent: queueTracker.sent, completed: queueTracker.completed, errors: errors,
            errorReplies: queueTracker.errorReplies + echoTracker.errorReplies,
            missing: queueTracker.missing + echoTracker.missing,
            redeliveries: queueTracker.redeliveries + echoTracker.redeliveries, violations: violations,
            wallSeconds: wall, chunks: queueTracker.chunks,
            latency: Distribution(samples: queueTracker.latencies.map { Double($0) / 1e6 }), chunkDelay: nil,
            processes: usage.processes, machineBusySeconds: usage.machineBusySeconds,
            loadAverageStart: start.loadAverage, loadAverageEnd: end.loadAverage, addedLatency: added)
    }

    /// The requests of round `round` of `rounds`: an even split of 0..<total.
    static func share(of total: Int, round: Int, rounds: Int) -> Range<Int> {
        (total * round / rounds)..<(total * (round + 1) / rounds)
    }
}

/// Publishes requests and reads their replies on one connection, stamping
/// each reply with the moment poll(2) reported its bytes, before the library
/// reads and decodes them (`Requester.nextReply` would stamp after decoding).
final class ReplyReader {
    let requester: Requester
    private var assembler = ContentAssembler(maxBodyBytes: 16 * 1024 * 1024)
    private let idleTimeout: Double

    init(options: AMQPConnectionOptions, idleTimeout: Double) throws(AMQPError) {
        requester = try Requester(options: options)
        self.idleTimeout = idleTimeout
    }

    /// Sends requests `indices` to `queue`, `concurrency` at a time, until
    /// each has its final reply (or nothing arrives for `idleTimeout`).
    func run(
        _ indices: Range<Int>, queue: String, body: [UInt8], concurrency: Int, tracker: inout RequestTracker,
        timings: inout ChunkTimings
    ) throws {
        let connection = requester.connection
        let finalsAtEnd = tracker.finals + indices.count
        var next = indices.lowerBound
        var lastReply = MonotonicClock.now()
        while tracker.finals < finalsAtEnd {
            while next < indices.upperBound && tracker.inFlight < concurrency {
                let id = String(next)
                let sentAt = MonotonicClock.now()
                try requester.send(to: queue, body: body, correlationID: id, messageID: id)
                tracker.published(next, at: sentAt)
                timings.sent(next, at: sentAt)
                next += 1
            }
            guard try connection.waitForInput(timeout: 1) else {
                if Double(MonotonicClock.now() &- lastReply) / 1e9 > idleTimeout { return }
                continue
            }
            let arrival = MonotonicClock.now()
            lastReply = arrival
            // Everything the library reads now arrived by `arrival`; once its
            // buffer is empty, poll again for a fresh stamp.
            repeat {
                guard let frame = try connection.readFrame() else { break }
                guard let output = try assembler.handle(frame) else { continue }
                switch output {
                case .message(let message):
                    if case .returned(_, let text, _, let routingKey) = message.method {
                        throw AMQPError(
                            code: .unroutable, message: "\(text): no queue named \(routingKey)", context: "latency")
                    }
                    let properties = message.properties
                    let reply = ReceivedReply(
                        type: properties.type ?? "", correlationID: properties.correlationID,
                        contentType: properties.contentType, deliveryMode: properties.deliveryMode,
                        headers: properties.headers, body: [])
                    let outcome = tracker.received(
                        requestID: reply.requestID.map { Substring($0) }, kind: RequestTracker.ReplyKind(type: reply.type),
                        seq: reply.seq, attempt: reply.attempt, at: arrival)
                    if outcome == .chunk, let index = reply.requestID.flatMap({ Int($0) }) {
                        timings.chunk(index, at: arrival)
                    }
                case .method(.channelClose(let code, let text), _), .method(.connectionClose(let code, let text), _):
                    throw AMQPError(code: .channelClosed(replyCode: code), message: text, context: "latency")
                case .method:
                    continue
                }
            } while connection.hasBufferedInput
        }
    }
}
