import ChatQueueCore

/// What a benchmark run sends, and what it expects back.
public enum BenchScenario: String, Sendable, CaseIterable {
    /// Non-stream requests against an instant upstream: broker round trips and HTTP calls per request.
    case nonstream
    /// Stream requests of many chunks against an instant upstream: chunk forwarding cost.
    case stream
    /// Many concurrent streams paced by the upstream: forwarding delay and memory per stream.
    case slowstreams
    /// The nonstream load against `chatqueue bench-echo`, which answers at once without HTTP:
    /// what the broker allows on this machine.
    case ceiling
    /// Streams paced by the upstream, through chatqueue and straight to the
    /// upstream: the time to first chunk and the inter-chunk gap chatqueue adds.
    case latency

    /// Requests sent when `--requests` is not given.
    public var defaultRequests: Int {
        switch self {
        case .nonstream, .ceiling: return 20_000
        case .stream: return 2_000
        case .slowstreams: return 1_000
        case .latency: return 100
        }
    }

    /// Requests in flight from the generator when `--concurrency` is not given:
    /// 64, for latency 1, or for slowstreams every request at once (nil).
    public var defaultConcurrency: Int? {
        switch self {
        case .slowstreams: return nil
        case .latency: return 1
        default: return 64
        }
    }

    public var isStream: Bool { self == .stream || self == .slowstreams || self == .latency }

    /// Words in each reply. A streamed reply is one chunk per word plus the role
    /// chunk and the finish chunk, so 48 words make 50 chunks.
    public static let defaultWords = 48

    /// Words when `--words` is not given: 48, or for latency 8 (10 chunks,
    /// 9 gaps: many short streams give more first chunks to measure).
    public var defaultWordCount: Int { self == .latency ? 8 : Self.defaultWords }

    /// Milliseconds between chunks the upstream is asked for.
    public var defaultIntervalMilliseconds: Int {
        switch self {
        case .slowstreams: return 100
        case .latency: return 20
        default: return 0
        }
    }

    /// Whether the upstream stamps each chunk with its send time (forwarding delay).
    public var stampsChunks: Bool { self == .slowstreams }
}

/// The parameters of one run's requests.
public struct BenchLoad: Sendable, Equatable {
    public var scenario: BenchScenario
    public var requests: Int
    public var concurrency: Int
    /// Words in each reply: what the upstream is told (`--words`), else what
    /// `mock-upstream --words 48` answers by default.
    public var words: Int
    /// Whether requests ask for `words` themselves (it was given explicitly).
    public var requestsWords: Bool
    public var intervalMilliseconds: Int

    public init(
        scenario: BenchScenario, requests: Int? = nil, concurrency: Int? = nil, words: Int? = nil,
        intervalMilliseconds: Int? = nil
    ) {
        self.scenario = scenario
        self.requests = requests ?? scenario.defaultRequests
        self.concurrency = concurrency ?? scenario.defaultConcurrency ?? self.requests
        self.words = words ?? scenario.defaultWordCount
        self.requestsWords = words != nil
        self.intervalMilliseconds = intervalMilliseconds ?? scenario.defaultIntervalMilliseconds
    }

    public var stream: Bool { scenario.isStream }
    public var stamp: Bool { scenario.stampsChunks }

    /// Chunks every request must get before its final reply: none without
    /// streaming; with it, the mock upstream's role chunk, one per word, and the
    /// finish chunk (`[DONE]` is not forwarded).
    public var expectedChunks: Int { stream ? words + 2 : 0 }

    /// The request body, the same for every request of the run. A top-level
    /// "mock" object scripts the mock upstream's answer (the worker forwards
    /// bodies unchanged; the echo ignores them). It is left out when nothing
    /// needs scripting, so `mock-upstream --fixed-response` answers from its
    /// prebuilt replies without parsing the request.
    public var requestBody: [UInt8] {
        var directives = JSONObject()
        if intervalMilliseconds > 0 { directives["interval_ms"] = .number(String(intervalMilliseconds)) }
        if stamp { directives["stamp"] = .bool(true) }
        if requestsWords || !directives.isEmpty { directives["words"] = .number(String(words)) }
        var body: JSONObject = [
            "model": "deepseek-chat",
            "messages": .array([.object(["role": "user", "content": "benchmark"])]),
        ]
        if stream { body["stream"] = .bool(true) }
        if !directives.isEmpty { body["mock"] = .object(directives) }
        return JSONValue.object(body).serialized()
    }
}
