import ChatQueueCore

/// When each request of one path was sent and when its chunks arrived, kept
/// as the two figures a user feels. Pure: the caller reads the monotonic
/// clock (nanoseconds) and says which request a chunk belongs to. Requests
/// are numbered 0..<requests.
public struct ChunkTimings: Sendable {
    private var sentAt: [UInt64]
    /// The previous chunk's arrival; nil until the request's first chunk.
    private var lastChunkAt: [UInt64?]
    /// Sent to first chunk, one sample per request that got one (nanoseconds).
    public private(set) var firstChunk: [UInt64] = []
    /// A chunk's arrival minus the previous chunk's arrival of the same
    /// request, one sample per chunk after the first (nanoseconds).
    public private(set) var gaps: [UInt64] = []

    public init(requests: Int) {
        sentAt = Array(repeating: 0, count: requests)
        lastChunkAt = Array(repeating: nil, count: requests)
    }

    public mutating func sent(_ index: Int, at time: UInt64) {
        sentAt[index] = time
        lastChunkAt[index] = nil
    }

    /// A chunk of request `index` arrived at `time`.
    public mutating func chunk(_ index: Int, at time: UInt64) {
        guard index >= 0, index < sentAt.count else { return }
        if let previous = lastChunkAt[index] {
            gaps.append(time &- previous)
        } else {
            firstChunk.append(time &- sentAt[index])
        }
        lastChunkAt[index] = time
    }

    /// The figures in microseconds.
    public var figures: PathLatency {
        PathLatency(
            firstChunk: Distribution(samples: firstChunk.map(Self.microseconds)),
            gap: Distribution(samples: gaps.map(Self.microseconds)))
    }

    static func microseconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1000 }
}

/// Time to first chunk and inter-chunk gap of one path, in microseconds.
public struct PathLatency: Sendable, Equatable {
    public var firstChunk: Distribution?
    public var gap: Distribution?

    public init(firstChunk: Distribution?, gap: Distribution?) {
        self.firstChunk = firstChunk
        self.gap = gap
    }
}

/// One percentile-wise difference of two distributions, in microseconds:
/// p50 minus p50, p99 minus p99, max minus max. The two paths' requests are
/// different requests, so samples cannot be paired; what a user feels is
/// the distribution, and its percentiles are what differ. May be negative.
public struct LatencyDifference: Sendable, Equatable {
    public var p50: Double
    public var p99: Double
    public var max: Double

    public init(p50: Double, p99: Double, max: Double) {
        self.p50 = p50
        self.p99 = p99
        self.max = max
    }

    /// `through` minus `direct`; nil when either has no samples.
    public init?(_ through: Distribution?, minus direct: Distribution?) {
        guard let through, let direct else { return nil }
        self.init(p50: through.p50 - direct.p50, p99: through.p99 - direct.p99, max: through.max - direct.max)
    }
}

/// What the latency scenario measured: the same streamed request through
/// chatqueue and straight to the upstream, and the echo's broker round trip
/// at the same concurrency (the part of the added time no worker can remove).
public struct AddedLatency: Sendable, Equatable {
    /// The upstream's pacing between chunks (what a gap would be with no delay anywhere).
    public var intervalMilliseconds: Int
    /// Requester -> RabbitMQ -> worker -> upstream -> worker -> RabbitMQ -> requester.
    public var chatqueue: PathLatency
    /// The requester calling the upstream over HTTP itself.
    public var direct: PathLatency
    /// Publish to the echo's reply (microseconds).
    public var echoRoundTrip: Distribution?

    public init(intervalMilliseconds: Int, chatqueue: PathLatency, direct: PathLatency, echoRoundTrip: Distribution?) {
        self.intervalMilliseconds = intervalMilliseconds
        self.chatqueue = chatqueue
        self.direct = direct
        self.echoRoundTrip = echoRoundTrip
    }

    /// Time to first chunk through chatqueue minus straight to the upstream.
    public var addedFirstChunk: LatencyDifference? { LatencyDifference(chatqueue.firstChunk, minus: direct.firstChunk) }

    /// Inter-chunk gap through chatqueue minus straight to the upstream.
    public var addedGap: LatencyDifference? { LatencyDifference(chatqueue.gap, minus: direct.gap) }

    /// The added time to first chunk beyond the echo's round trip, at p50: the
    /// worker's own share (validation, the HTTP call's set-up, forwarding).
    public var workerShareOfFirstChunk: Double? {
        guard let added = addedFirstChunk, let echoRoundTrip else { return nil }
        return added.p50 - echoRoundTrip.p50
    }
}

// MARK: - JSON

extension AddedLatency {
    public var json: JSONValue {
        func path(_ latency: PathLatency) -> JSONValue {
            ["first_chunk_us": latency.firstChunk?.json ?? .null, "gap_us": latency.gap?.json ?? .null]
        }
        func difference(_ value: LatencyDifference?) -> JSONValue {
            guard let value else { return .null }
            return [
                "p50": .decimal(value.p50, digits: 1), "p99": .decimal(value.p99, digits: 1),
                "max": .decimal(value.max, digits: 1),
            ]
        }
        return [
            "interval_ms": .int(intervalMilliseconds),
            "chatqueue": path(chatqueue),
            "direct": path(direct),
            "echo_round_trip_us": echoRoundTrip?.json ?? .null,
            "added_first_chunk_us": difference(addedFirstChunk),
            "added_gap_us": difference(addedGap),
        ]
    }

    init(json: JSONValue) throws(BenchError) {
        func distribution(_ value: JSONValue?) throws(BenchError) -> Distribution? {
            guard let value, !value.isNull else { return nil }
            return try Distribution(json: value)
        }
        func path(_ key: String) throws(BenchError) -> PathLatency {
            guard let object = json[key] else { throw BenchError("added latency: missing \"\(key)\"") }
            return PathLatency(
                firstChunk: try distribution(object["first_chunk_us"]), gap: try distribution(object["gap_us"]))
        }
        guard let interval = json["interval_ms"]?.integerValue else {
            throw BenchError("added latency: missing or invalid \"interval_ms\"")
        }
        self.init(
            intervalMilliseconds: interval, chatqueue: try path("chatqueue"), direct: try path("direct"),
            echoRoundTrip: try distribution(json["echo_round_trip_us"]))
    }
}
