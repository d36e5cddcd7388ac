import ChatQueueAMQP
import ChatQueueBench
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// The benchmark harness end to end with tiny counts: `chatqueue bench` as a
/// process against a real worker (and against `chatqueue bench-echo`), every
/// request accounted for. No timing assertions: this proves the harness works,
/// scripts/bench.sh measures.
@Suite("Benchmark harness smoke run", .serialized)
struct BenchSmokeTests {
    @Test("nonstream, stream and slowstreams runs against a worker complete every request")
    func againstWorker() async throws {
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let queue = IntegrationEnvironment.uniqueQueueName("bench")
        let worker = try WorkerProcess(queue: queue, upstreamURL: mock.baseURL, settings: ["worker.concurrency": "16"])
        try worker.waitUntilConsuming()

        let nonstream = try runBench(
            queue: queue, workerPID: worker.process.processIdentifier, "--scenario", "nonstream", "--requests", "20",
            "--concurrency", "8", "--words", "5")
        #expect(nonstream.sent == 20)
        #expect(nonstream.completed == 20)
        #expect(nonstream.errors == 0)
        #expect(nonstream.chunks == 0)
        #expect(nonstream.latency?.count == 20)
        // The worker was sampled from /proc.
        #expect(nonstream.worker != nil)
        #expect((nonstream.worker?.peakRSSKilobytes ?? 0) > 0)

        let stream = try runBench(
            queue: queue, workerPID: worker.process.processIdentifier, "--scenario", "stream", "--requests", "5",
            "--concurrency", "5", "--words", "6")
        #expect(stream.completed == 5)
        #expect(stream.errors == 0)
        #expect(stream.chunks == 5 * 8)  // role + 6 words + finish
        #expect(stream.chunkDelay == nil)

        let slow = try runBench(
            queue: queue, workerPID: worker.process.processIdentifier, "--scenario", "slowstreams", "--requests", "3",
            "--words", "3", "--interval-ms", "10", "--label", "slowstreams-smoke")
        #expect(slow.label == "slowstreams-smoke")
        #expect(slow.concurrency == 3)
        #expect(slow.completed == 3)
        #expect(slow.errors == 0)
        #expect(slow.chunkDelay?.count == 3 * 5)

        // Not asserted: the worker's shutdown has tests of its own; here only the harness counts.
        worker.stop(timeout: 15)
        try? await mock.shutdown()
        cleanUp(queue)
    }

    @Test("the ceiling run against bench-echo completes every request")
    func againstEcho() throws {
        let queue = IntegrationEnvironment.uniqueQueueName("bench-echo")
        let echo = try Self.startEcho(queue: queue)
        defer {
            Self.stop(echo)
            cleanUp(queue)
        }

        let ceiling = try runBench(
            queue: queue, workerPID: echo.processIdentifier, "--scenario", "ceiling", "--requests", "20",
            "--concurrency", "8")
        #expect(ceiling.scenario == .ceiling)
        #expect(ceiling.completed == 20)
        #expect(ceiling.errors == 0)
        #expect(ceiling.worker != nil)

        // SIGTERM stops the echo cleanly (exit 0), even when started with the signal blocked.
        #expect(Self.stop(echo) == 0)
    }

    @Test("the latency run: every request through the worker, straight to the mock and to the echo is booked")
    func latency() async throws {
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let queue = IntegrationEnvironment.uniqueQueueName("bench-latency")
        let echoQueue = IntegrationEnvironment.uniqueQueueName("bench-latency-echo")
        let worker = try WorkerProcess(queue: queue, upstreamURL: mock.baseURL, settings: ["worker.concurrency": "4"])
        let echo = try Self.startEcho(queue: echoQueue)
        defer {
            Self.stop(echo)
            cleanUp(echoQueue)
        }
        try worker.waitUntilConsuming()

        let run = try runBench(
            queue: queue, workerPID: worker.process.processIdentifier, "--scenario", "latency", "--requests", "4",
            "--concurrency", "2", "--words", "3", "--interval-ms", "5", "--rounds", "2", "--upstream-url",
            mock.baseURL, "--echo-queue", echoQueue)
        #expect(run.scenario == .latency)
        #expect(run.completed == 4)
        #expect(run.errors == 0)
        #expect(run.chunks == 4 * 5)  // role + 3 words + finish
        let added = try #require(run.addedLatency)
        #expect(added.intervalMilliseconds == 5)
        // One first chunk per request and four gaps per request, on both paths; ten echo requests per request.
        #expect(added.chatqueue.firstChunk?.count == 4)
        #expect(added.chatqueue.gap?.count == 4 * 4)
        #expect(added.direct.firstChunk?.count == 4)
        #expect(added.direct.gap?.count == 4 * 4)
        #expect(added.echoRoundTrip?.count == 40)
        #expect(added.addedFirstChunk != nil && added.addedGap != nil)

        worker.stop(timeout: 15)
        try? await mock.shutdown()
        cleanUp(queue)
    }

    private static func startEcho(queue: String) throws -> Process {
        let echo = Process()
        echo.executableURL = IntegrationEnvironment.executable
        echo.arguments = [
            "bench-echo", "--broker-url", IntegrationEnvironment.brokerURL, "--queue", queue, "--concurrency", "8",
        ]
        echo.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHATQUEUE_") }
        echo.standardError = FileHandle.nullDevice
        try echo.run()
        return echo
    }

    /// SIGTERM, then SIGKILL after `timeout` seconds; the exit status.
    @discardableResult
    private static func stop(_ process: Process, timeout: Double = 15) -> Int32 {
        if process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Runs `chatqueue bench` with `arguments` and returns what it wrote to --json-out.
    private func runBench(queue: String, workerPID: Int32, _ arguments: String...) throws -> RunResult {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: output) }
        let process = Process()
        process.executableURL = IntegrationEnvironment.executable
        process.arguments =
            [
                "bench", "--broker-url", IntegrationEnvironment.brokerURL, "--queue", queue, "--worker-pid",
                String(workerPID), "--json-out", output.path, "--idle-timeout", "30", "--quiet",
            ] + arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHATQUEUE_") }
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        let printed = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: printed, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestFailure("chatqueue bench \(arguments) exited \(process.terminationStatus):\n\(text)")
        }
        #expect(text.contains("| figure |"))  // the Markdown report went to stdout
        let data = try Data(contentsOf: output)
        return try RunResult(json: try JSONValue(parsing: Array(data)))
    }

    private func cleanUp(_ queue: String) {
        guard let connection = try? AMQPConnection(options: IntegrationEnvironment.brokerOptions(name: "test cleanup"))
        else { return }
        for name in [queue, "\(queue).dead"] { try? connection.deleteQueue(name) }
        try? connection.deleteExchange("\(queue).dlx")
        connection.close()
    }
}
