import ChatQueueSystem
import ChatQueueAMQP
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How one run is driven.
public struct LoadOptions: Sendable {
    public var connection: AMQPConnectionOptions
    /// The request queue the worker (or the echo) consumes.
    public var queue: String
    public var load: BenchLoad
    /// The run's name in reports.
    public var label: String
    /// Processes to sample (worker, broker, upstream); the generator is added.
    public var watched: [ResourceSampler.Watched]
    /// Give up when no reply arrives for this long (seconds); the rest count as missing.
    public var idleTimeout: Double = 60
    /// After the last final reply, keep reading this long (seconds) to catch duplicates.
    public var drainSeconds: Double = 0.25
    /// How long to wait for the request queue to exist before the first publish.
    public var queueWaitSeconds: Double = 30

    public init(
        connection: AMQPConnectionOptions, queue: String, load: BenchLoad, label: String,
        watched: [ResourceSampler.Watched]
    ) {
        self.connection = connection
        self.queue = queue
        self.load = load
        self.label = label
        self.watched = watched
    }
}

/// The load generator: one thread, one connection with an exclusive reply
/// queue. Keeps up to `concurrency` requests in flight, books every reply in a
/// `RequestTracker`, and samples the watched processes from the first publish
/// to the last final reply.
public enum LoadGenerator {
    public static func run(_ options: LoadOptions, progress: ((String) -> Void)? = nil) throws -> RunResult {
        let load = options.load
        try waitForQueue(options.queue, connection: options.connection, timeout: options.queueWaitSeconds)
        let requester = try Requester(options: options.connection)
        defer { requester.connection.close() }

        var tracker = RequestTracker(requests: load.requests, expectedChunks: load.expectedChunks)
        var delays: [Double] = []
        if load.stamp { delays.reserveCapacity(min(load.requests * load.expectedChunks, 10_000_000)) }
        let body = load.requestBody
        let sampler = ResourceSampler(watching: options.watched)

        let startedAt = ISO8601DateFormatter().string(from: Date())
        let start = sampler.snapshot()
        let firstPublish = Clock.monotonic()
        var lastFinal = firstPublish
        var lastReply = firstPublish
        var lastProgress = firstPublish
        var next = 0

        func book(_ reply: ReceivedReply, at now: UInt64) {
            let kind = RequestTracker.ReplyKind(type: reply.type)
            let outcome = tracker.received(
                requestID: reply.requestID.map { Substring($0) }, kind: kind, seq: reply.seq, attempt: reply.attempt,
                at: now)
            switch outcome {
            case .chunk where load.stamp:
                if let sentAt = ChunkStamp.sentAtMilliseconds(in: reply.body) {
                    delays.append(Clock.wallMilliseconds() - sentAt)
                }
            case .final:
                lastFinal = now
            default:
                break
            }
        }

        while !tracker.allFinal {
            while next < load.requests && tracker.inFlight < load.concurrency {
                let id = String(next)
                try requester.send(to: options.queue, body: body, correlationID: id, messageID: id)
                tracker.published(next, at: Clock.monotonic())
                next += 1
            }
            let reply = try requester.nextReply(timeout: 1)
            let now = Clock.monotonic()
            if let reply {
                lastReply = now
                book(reply, at: now)
            } else if Double(now &- lastReply) / 1e9 > options.idleTimeout {
                progress?("no reply for \(options.idleTimeout) s; giving up with \(tracker.inFlight) requests in flight")
                break
            }
            if let progress, now &- lastProgress > 5_000_000_000 {
                lastProgress = now
                progress(
                    "\(options.label): \(tracker.finals)/\(load.requests) final, \(tracker.chunks) chunks, "
                        + "\(tracker.inFlight) in flight")
            }
        }
        let end = sampler.snapshot()
        let usage = sampler.usage(from: start, to: end)

        // Anything after the last final is a duplicate or a stray: book it too.
        let drainUntil = Clock.monotonic() &+ UInt64(options.drainSeconds * 1e9)
        while true {
            let now = Clock.monotonic()
            guard now < drainUntil else { break }
            guard let reply = try requester.nextReply(timeout: Double(drainUntil &- now) / 1e9) else { break }
            book(reply, at: Clock.monotonic())
        }

        let violations = Dictionary(uniqueKeysWithValues: tracker.violations.map { ($0.key.rawValue, $0.value) })
        return RunResult(
            label: options.label, scenario: load.scenario, requests: load.requests, concurrency: load.concurrency,
            words: load.words, intervalMilliseconds: load.intervalMilliseconds, startedAt: startedAt,
            sent: tracker.sent, completed: tracker.completed, errors: tracker.failed,
            errorReplies: tracker.errorReplies, missing: tracker.missing, redeliveries: tracker.redeliveries,
            violations: violations, wallSeconds: Double(lastFinal &- firstPublish) / 1e9, chunks: tracker.chunks,
            latency: Distribution(samples: tracker.latencies.map { Double($0) / 1e6 }),
            chunkDelay: Distribution(samples: delays), processes: usage.processes,
            machineBusySeconds: usage.machineBusySeconds, loadAverageStart: start.loadAverage,
            loadAverageEnd: end.loadAverage)
    }

    /// Waits until `queue` exists (the worker or echo declared it), with a fresh
    /// connection per try: a passive declare of a missing queue closes the channel.
    public static func waitForQueue(_ queue: String, connection: AMQPConnectionOptions, timeout: Double) throws {
        let deadline = Clock.monotonic() &+ UInt64(timeout * 1e9)
        while true {
            do {
                var probeOptions = connection
                probeOptions.connectionName = "chatqueue bench probe"
                let probe = try AMQPConnection(options: probeOptions)
                defer { probe.close() }
                _ = try probe.messageCount(queue: queue)
                return
            } catch {
                if Clock.monotonic() >= deadline {
                    throw BenchError("queue \(queue) did not appear within \(timeout) s: \(error)")
                }
                usleep(100_000)
            }
        }
    }
}

/// The clocks a run reads.
enum Clock {
    /// Monotonic nanoseconds.
    static func monotonic() -> UInt64 { MonotonicClock.now() }

    /// Unix time in milliseconds (with fractions), comparable to the mock's stamps.
    static func wallMilliseconds() -> Double { WallClock.unixSeconds() * 1000 }
}
