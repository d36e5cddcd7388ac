// Public configuration and observation types of the mock upstream.

/// How a ``MockUpstream`` listens and what it answers when a request carries no directives.
public struct MockUpstreamOptions: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 asks the kernel for an ephemeral port; read the bound one from ``MockUpstream/port``.
    public var port: Int = 0
    /// When set, a request without `Authorization: Bearer <key>` gets DeepSeek's 401.
    public var requireAPIKey: String? = nil
    /// When set, every completion request gets this status (400...599) and
    /// its OpenAI-shaped error, whatever it asks: an upstream that is down, or
    /// an account out of balance (402). ``MockUpstream/setFailEveryRequest(_:)`` changes it.
    public var failEveryRequest: Int? = nil
    /// A provider's concurrency limit K: a completion request arriving while K are in
    /// progress (received, response not yet fully written) gets 429 `rate_limit_exceeded`
    /// with `Retry-After: 1` at once. While set, every completion answer carries
    /// `x-ratelimit-limit-requests` and `x-ratelimit-remaining-requests`. At least 1.
    public var maxConcurrentRequests: Int? = nil
    /// How long each completion takes before its first byte; a request's
    /// `first_byte_delay_ms` directive overrides it. With `fixedResponses` it delays those too.
    public var latency: Duration = .zero
    /// Delay between stream chunks; a request's `interval_ms` directive overrides it.
    public var chunkInterval: Duration = .zero
    /// Reply length in words ("w1 w2 …"); `nil` echoes the last user message instead.
    public var words: Int? = nil
    public var eventLoopThreads: Int = 1
    /// Answer requests without a "mock" object with a reply rendered once at
    /// start, without parsing them (benchmarks: the upstream is never the bottleneck).
    public var fixedResponses: Bool = false
    /// Long benchmark runs turn this off so memory stays flat; counters per key are kept either way.
    public var recordRequests: Bool = true

    public init() {}
}

/// One request exactly as it arrived, for tests to assert on what the worker sent.
public struct RecordedRequest: Sendable {
    public var method: String
    public var path: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(method: String, path: String, headers: [(String, String)], body: [UInt8]) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }

    /// The first value of the header `name`, compared case-insensitively as HTTP requires.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return self.headers.first { $0.0.lowercased() == wanted }?.1
    }

    /// The body decoded as UTF-8 (lossy), handy in assertions.
    public var bodyText: String {
        String(decoding: self.body, as: UTF8.self)
    }
}
