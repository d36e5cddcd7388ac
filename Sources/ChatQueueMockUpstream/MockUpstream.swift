// A DeepSeek-like `/chat/completions` server for demos, tests and benchmarks.
// See MockDirectives for how a request scripts its own reply.

import NIOCore
import NIOHTTP1
import NIOPosix

public final class MockUpstream: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: Channel
    private let state: MockUpstreamState
    private let isShutDown = Locked(false)

    /// The bound port (the kernel's choice when the options asked for 0).
    public let port: Int
    /// `http://127.0.0.1:<port>` (or the configured host), without a trailing slash.
    public let baseURL: String

    private init(group: MultiThreadedEventLoopGroup, serverChannel: Channel, state: MockUpstreamState) {
        self.group = group
        self.serverChannel = serverChannel
        self.state = state
        self.port = serverChannel.localAddress?.port ?? state.options.port
        self.baseURL = "http://\(Self.urlHost(state.options.host)):\(self.port)"
    }

    public static func start(_ options: MockUpstreamOptions) async throws -> MockUpstream {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.eventLoopThreads))
        let state = MockUpstreamState(options: options, group: group)
        let timers = CoalescingTimers(group: group)
        let bootstrap = ServerBootstrap(group: group)
            // Benchmarks open thousands of connections at once.
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try pipeline.addHandler(
                        MockRequestHandler(
                            state: state,
                            timer: timers.timer(for: channel.eventLoop),
                            tally: state.tally(for: channel.eventLoop)
                        )
                    )
                }
            }
            // Each chunk must leave when written, or forwarding-delay benchmarks measure Nagle.
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)

        do {
            let channel = try await bootstrap.bind(host: options.host, port: options.port).get()
            return MockUpstream(group: group, serverChannel: channel, state: state)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Every request received so far, in arrival order.
    public func recordedRequests() -> [RecordedRequest] {
        self.state.recordedRequests
    }

    /// Forgets the recorded requests (not the per-key counters).
    public func removeRecordedRequests() {
        self.state.removeRecordedRequests()
    }

    /// How many requests carried `"mock": {"key": key}`.
    public func requestCount(key: String) -> Int {
        self.state.callCount(key: key)
    }

    /// When connections closed before their response ended, other than by the
    /// mock's own script (`DispatchTime` uptime nanoseconds, in order): streams
    /// a worker stopped (and any open at `shutdown()`).
    public func clientAborts() -> [UInt64] {
        self.state.clientAborts
    }

    /// Answers every completion request with `status` (400...599) and its OpenAI-shaped
    /// error from now on (402: DeepSeek's "Insufficient Balance"), or answers normally
    /// again with nil: an account that runs out of balance, then is topped up.
    public func setFailEveryRequest(_ status: Int?) {
        if let status { precondition((400...599).contains(status), "failEveryRequest must be 400...599") }
        self.state.traffic.setFailEveryRequest(status)
    }

    /// Changes the concurrency limit (at least 1; nil: none) from now on. Requests in
    /// progress are not affected; above a lowered limit, new ones get 429 until enough end.
    public func setMaxConcurrentRequests(_ limit: Int?) {
        self.state.traffic.setMaxConcurrentRequests(limit)
    }

    /// The bodies of `POST /v1/traces` accepted so far (the mock as an OTLP
    /// collector stand-in), in arrival order; `GET /_mock/traces` serves them too.
    public func receivedTraces() -> [[UInt8]] {
        self.state.receivedTraces
    }

    /// Answers `POST /v1/traces` with `status` (400...599, e.g. 503: a collector
    /// refusing), recording nothing, or accepts again with nil.
    public func setTracesStatus(_ status: Int?) {
        if let status { precondition((400...599).contains(status), "the traces status must be 400...599") }
        self.state.setTracesStatus(status)
    }

    /// What the mock has answered so far; the same figures `GET /_mock/statistics` serves.
    public func statistics() -> MockUpstreamStatistics {
        self.state.statistics
    }

    /// Stops listening and closes every connection, ending open streams abruptly.
    public func shutdown() async throws {
        let alreadyShutDown = self.isShutDown.withLock { isShutDown in
            defer { isShutDown = true }
            return isShutDown
        }
        guard !alreadyShutDown else { return }
        try? await self.serverChannel.close()
        try await self.group.shutdownGracefully()
    }

    /// A host as it goes in a URL: wildcard binds are reached over loopback, IPv6 in brackets.
    private static func urlHost(_ host: String) -> String {
        switch host {
        case "0.0.0.0", "": return "127.0.0.1"
        case "::": return "[::1]"
        default: return host.contains(":") ? "[\(host)]" : host
        }
    }
}
