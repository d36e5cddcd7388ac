// `chatqueue mock-upstream`: the DeepSeek-like fake API as a standalone server,
// for demos and benchmarks that have no network.

import ArgumentParser
import ChatQueueMockUpstream
import Foundation

struct MockUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-upstream",
        abstract: "Serve a DeepSeek-like POST /chat/completions API locally.",
        discussion: """
            Replies echo the last user message (or are N words with --words). A request can script \
            its reply with a top-level "mock" object, e.g. {"mock":{"status":429,"retry_after":2}} \
            or {"mock":{"interval_ms":100,"words":50}}. Runs until SIGINT or SIGTERM.

            A rate-limited provider: with --max-concurrent K, a completion request arriving while K are \
            in progress gets 429 rate_limit_exceeded with Retry-After: 1 at once, and every completion \
            answer carries x-ratelimit-limit-requests and x-ratelimit-remaining-requests. An account out \
            of balance: --fail-every-request 402.

            GET /_mock/statistics answers JSON: answers_by_status, in_progress, peak_in_progress, \
            max_concurrent_requests, fail_every_request, and seconds: one entry per second since the \
            first answer (second, ok, rate_limited, other, peak_in_progress; the last hour).

            It also stands in for an OTLP collector: POST /v1/traces is answered 200 and its body \
            kept; GET /_mock/traces answers the bodies kept, as a JSON array.
            """
    )

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port: Int = 8089

    @Option(name: .customLong("chunk-interval-ms"), help: "Default delay between stream chunks, in milliseconds.")
    var chunkIntervalMilliseconds: Int = 0

    @Option(help: "Default reply length in words (default: echo the prompt).")
    var words: Int?

    @Option(
        name: .customLong("latency-ms"),
        help: "Milliseconds each completion waits before its first byte (a request's first_byte_delay_ms overrides it).")
    var latencyMilliseconds: Int = 0

    @Option(
        name: .customLong("max-concurrent"),
        help: "Concurrency limit K: requests beyond K in progress get 429 with Retry-After: 1.")
    var maxConcurrent: Int?

    @Option(
        name: .customLong("fail-every-request"),
        help: "Answer every completion request with this status (400...599) and its error body, e.g. 402.")
    var failEveryRequest: Int?

    @Option(name: .customLong("require-api-key"), help: "Answer 401 unless requests carry 'Authorization: Bearer <key>'.")
    var requireAPIKey: String?

    @Option(help: "Event loop threads.")
    var threads: Int = 1

    @Flag(
        name: .customLong("fixed-response"),
        help: """
            Answer requests without a "mock" object with one reply rendered at start, without parsing \
            them (streamed when the body holds "stream":true): for benchmarks.
            """)
    var fixedResponse = false

    func validate() throws {
        guard (0...65535).contains(self.port) else { throw ValidationError("--port must be 0...65535") }
        guard self.chunkIntervalMilliseconds >= 0 else { throw ValidationError("--chunk-interval-ms must be >= 0") }
        guard self.latencyMilliseconds >= 0 else { throw ValidationError("--latency-ms must be >= 0") }
        if let maxConcurrent, maxConcurrent < 1 { throw ValidationError("--max-concurrent must be >= 1") }
        if let failEveryRequest, !(400...599).contains(failEveryRequest) {
            throw ValidationError("--fail-every-request must be 400...599")
        }
        guard self.threads >= 1 else { throw ValidationError("--threads must be >= 1") }
        if let words, words < 0 { throw ValidationError("--words must be >= 0") }
    }

    func run() async throws {
        var options = MockUpstreamOptions()
        options.host = self.host
        options.port = self.port
        options.chunkInterval = .milliseconds(self.chunkIntervalMilliseconds)
        options.words = self.words
        options.latency = .milliseconds(self.latencyMilliseconds)
        options.maxConcurrentRequests = self.maxConcurrent
        options.failEveryRequest = self.failEveryRequest
        options.requireAPIKey = self.requireAPIKey
        options.eventLoopThreads = self.threads
        options.fixedResponses = self.fixedResponse
        // Nobody can read recordings from outside the process; keep long runs flat in memory.
        options.recordRequests = false

        // Catch signals before the server exists, so an early Ctrl-C still shuts down cleanly.
        let signals = TerminationSignals()
        let server = try await MockUpstream.start(options)
        FileHandle.standardError.write(Data("mock upstream listening on \(server.baseURL)\n".utf8))

        await signals.next()
        try await server.shutdown()
    }
}

/// SIGINT and SIGTERM as an async event instead of process death.
private struct TerminationSignals {
    private let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init() {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.stream = stream
        self.sources = [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { continuation.yield(signalNumber) }
            source.resume()
            return source
        }
    }

    /// Returns when the first signal arrives.
    func next() async {
        for await _ in self.stream { break }
        for source in self.sources { source.cancel() }
    }
}
