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
        guard self.threads >= 1 else { throw ValidationError("--threads must be >= 1") }
        if let words, words < 0 { throw ValidationError("--words must be >= 0") }
    }

    func run() async throws {
        var options = MockUpstreamOptions()
        options.host = self.host
        options.port = self.port
        options.chunkInterval = .milliseconds(self.chunkIntervalMilliseconds)
        options.words = self.words
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
