// `chatqueue bench` and its helpers: the load generator, the echo ceiling
// (`bench-echo`), the combined report (`bench-report`) and queue clean-up
// (`bench-cleanup`). scripts/bench.sh drives them; docs/performance.md explains
// the scenarios. The loops and the bookkeeping live in ChatQueueBench.

import ArgumentParser
import ChatQueueAMQP
import ChatQueueBench
import ChatQueueConfig
import ChatQueueCore
import ChatQueueWorker
import Foundation
import Synchronization

/// `chatqueue bench`: one benchmark run against a worker (or the echo) consuming `--queue`.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load a worker with requests and report throughput, latency and resource use.",
        discussion: """
            Publishes requests to the queue with an exclusive reply queue, keeping --concurrency in flight, \
            checks that every request gets its chunks in x-seq order and exactly one final reply, and \
            reports completed, errors, wall time, requests/s, chunks/s, latency (publish to final) and, for \
            slowstreams, the chunk forwarding delay (arrival minus the mock upstream's send stamp). With \
            --worker-pid it samples the worker's CPU and memory from /proc, and the broker's CPU (the \
            process listening on the broker port, or --broker-pid). The worker's upstream must be \
            `chatqueue mock-upstream` (--fixed-response --words 48 for nonstream and stream; slowstreams \
            requests script their pacing with its "mock" directives). The latency scenario sends the same \
            paced stream through chatqueue, straight to --upstream-url (the worker's mock) over HTTP, and \
            (non-stream) to the \
            echo on --echo-queue, and reports the time to first chunk and inter-chunk gap chatqueue adds. \
            Exit 1 unless every request completed without errors. See scripts/bench.sh and \
            docs/performance.md.
            """
    )

    @OptionGroup var configuration: ConfigOptions

    @Option(help: "nonstream, stream, slowstreams, ceiling or latency.")
    var scenario: String = BenchScenario.nonstream.rawValue

    @Option(
        help: "Requests to send (default: 20000 nonstream and ceiling, 2000 stream, 1000 slowstreams, 100 latency).")
    var requests: Int?

    @Option(help: "Requests in flight from the generator (default: 64; slowstreams: all of them; latency: 1).")
    var concurrency: Int?

    @Option(
        help: """
            Words per reply; a stream has words + 2 chunks. Default 48 (50 chunks): what `mock-upstream \
            --words 48` answers; latency 8. Given, requests ask the mock for it (and skip its \
            --fixed-response replies).
            """)
    var words: Int?

    @Option(
        name: .customLong("interval-ms"), help: "Milliseconds between chunks (default: 100 slowstreams, 20 latency, else 0).")
    var intervalMilliseconds: Int?

    @Option(help: "Name of the run in reports (default: the scenario).")
    var label: String?

    @Option(name: .customLong("worker-pid"), help: "Worker (or echo) process to sample from /proc.")
    var workerPID: Int32?

    @Option(name: .customLong("broker-pid"), help: "Broker process to sample (default: the one listening on the broker port).")
    var brokerPID: Int32?

    @Option(name: .customLong("upstream-pid"), help: "Mock upstream process to sample.")
    var upstreamPID: Int32?

    @Option(name: .customLong("json-out"), help: "Write the run's figures to this JSON file.")
    var jsonOut: String?

    @Option(name: .customLong("echo-queue"), help: "latency: the queue `chatqueue bench-echo` consumes (round trips).")
    var echoQueue: String?

    @Option(help: "latency: rounds of direct, chatqueue and echo requests, one after the other.")
    var rounds: Int = 4

    @Option(name: .customLong("idle-timeout"), help: "Seconds without any reply before giving up.")
    var idleTimeout: Double = 60

    @Flag(help: "Print no progress lines.")
    var quiet = false

    func validate() throws {
        guard BenchScenario(rawValue: scenario) != nil else {
            throw ValidationError("--scenario must be one of \(BenchScenario.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let requests, requests < 1 { throw ValidationError("--requests must be >= 1") }
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be >= 1") }
        if let words, words < 0 { throw ValidationError("--words must be >= 0") }
        if let intervalMilliseconds, intervalMilliseconds < 0 { throw ValidationError("--interval-ms must be >= 0") }
        if idleTimeout <= 0 { throw ValidationError("--idle-timeout must be positive") }
        if rounds < 1 { throw ValidationError("--rounds must be >= 1") }
        if scenario == BenchScenario.latency.rawValue {
            // The flag, never upstream.url from a file: the direct path must reach the mock, not a real API.
            guard let upstreamURL = configuration.upstreamURL else {
                throw ValidationError("--scenario latency needs --upstream-url (the worker's mock upstream)")
            }
            do {
                _ = try DirectEndpoint(url: upstreamURL)
            } catch {
                throw ValidationError(error.description)
            }
        }
    }

    func run() throws {
        let settings = try configuration.loadSettings()
        let endpoint = settings.broker.endpoints[0]
        let load = BenchLoad(
            scenario: BenchScenario(rawValue: scenario)!, requests: requests, concurrency: concurrency, words: words,
            intervalMilliseconds: intervalMilliseconds)

        var watched: [ResourceSampler.Watched] = []
        if let workerPID { watched.append(.init(role: "worker", pid: workerPID)) }
        if let broker = brokerPID ?? Self.localBrokerPID(endpoint) {
            watched.append(.init(role: "broker", pid: broker))
        } else {
            Self.stderr("chatqueue bench: broker process not found; broker CPU is not sampled (give --broker-pid)")
        }
        if let upstreamPID { watched.append(.init(role: "upstream", pid: upstreamPID)) }

        var options = LoadOptions(
            connection: Self.connectionOptions(settings, endpoint, name: "chatqueue bench"),
            queue: settings.queue.name, load: load, label: label ?? load.scenario.rawValue, watched: watched)
        options.idleTimeout = idleTimeout

        let result: RunResult
        let progress: ((String) -> Void)? = quiet ? nil : { Self.stderr($0) }
        do {
            if load.scenario == .latency, let upstreamURL = configuration.upstreamURL {
                var latency = LatencyRun.Options(
                    load: options, upstream: try DirectEndpoint(url: upstreamURL), echoQueue: echoQueue)
                latency.rounds = rounds
                result = try LatencyRun.run(latency, progress: progress)
            } else {
                result = try LoadGenerator.run(options, progress: progress)
            }
        } catch {
            Self.stderr("chatqueue bench: \(error)")
            throw ExitCode(1)
        }
        if let jsonOut {
            let bytes = result.json.serialized() + [UInt8(ascii: "\n")]
            guard FileManager.default.createFile(atPath: jsonOut, contents: Data(bytes)) else {
                Self.stderr("chatqueue bench: cannot write \(jsonOut)")
                throw ExitCode(1)
            }
        }
        let report = BenchReport(runs: [result])
        print(report.markdown(), terminator: "")
        if !report.isCorrect { throw ExitCode(1) }
    }

    /// How the benchmark tools connect: like every command (broker.tls.* included),
    /// without heartbeats (a busy generator or echo always reads anyway).
    static func connectionOptions(_ settings: Settings, _ endpoint: BrokerEndpoint, name: String) -> AMQPConnectionOptions {
        var options = settings.amqpOptions(for: endpoint, connectionName: name)
        options.heartbeat = 0
        return options
    }

    /// The broker's pid when it runs on this machine (found by its listening port).
    static func localBrokerPID(_ endpoint: BrokerEndpoint) -> Int32? {
        guard ["127.0.0.1", "localhost", "::1", "[::1]"].contains(endpoint.host) else { return nil }
        return ProcFS.pidListening(onPort: endpoint.port)
    }

    static func stderr(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// Set by SIGINT/SIGTERM; the echo loop checks it between polls.
private let echoStopRequested = Atomic<Bool>(false)

/// `chatqueue bench-echo`: the echo ceiling (see EchoResponder).
struct BenchEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-echo",
        abstract: "Answer every request at once without calling an upstream (the benchmark's ceiling).",
        shouldDisplay: false
    )

    @OptionGroup var configuration: ConfigOptions

    @Option(help: "Deliveries in flight (the prefetch), like worker.concurrency.")
    var concurrency: Int = 64

    func validate() throws {
        guard (1...65535).contains(concurrency) else { throw ValidationError("--concurrency must be 1...65535") }
    }

    func run() throws {
        let settings = try configuration.loadSettings()
        let endpoint = settings.broker.endpoints[0]
        // A parent may have started us with these signals blocked (threads of
        // test runners and Dispatch block them, and children inherit the mask).
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        for signalNumber in [SIGINT, SIGTERM] {
            sigaddset(&stopSignals, signalNumber)
            signal(signalNumber) { _ in echoStopRequested.store(true, ordering: .relaxed) }
        }
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        do {
            let echo = try EchoResponder(
                options: EchoResponder.Options(
                    connection: BenchCommand.connectionOptions(settings, endpoint, name: "chatqueue bench-echo"),
                    queue: settings.queue.name, prefetch: concurrency))
            BenchCommand.stderr("bench-echo consuming from \(settings.queue.name) (prefetch \(concurrency))")
            try echo.run { echoStopRequested.load(ordering: .relaxed) }
            BenchCommand.stderr("bench-echo stopped after \(echo.answered) replies")
        } catch {
            BenchCommand.stderr("chatqueue bench-echo: \(error)")
            throw ExitCode(1)
        }
    }
}

/// `chatqueue bench-report DIR`: one report from the runs' JSON files in DIR.
struct BenchReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-report",
        abstract: "Combine the JSON files of benchmark runs into report.md and report.json.",
        shouldDisplay: false
    )

    @Argument(help: "Folder holding one JSON file per run (chatqueue bench --json-out).")
    var directory: String

    @Option(name: .customLong("rabbitmq-version"), help: "Shown with the machine description.")
    var rabbitMQVersion: String?

    @Option(help: "A line printed above the tables (repeatable).")
    var note: [String] = []

    func run() throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var runs: [RunResult] = []
        for name in names.sorted() where name.hasSuffix(".json") && name != "report.json" {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            do {
                runs.append(try RunResult(json: try JSONValue(parsing: Array(data))))
            } catch {
                BenchCommand.stderr("chatqueue bench-report: skipping \(name): \(error)")
            }
        }
        guard !runs.isEmpty else {
            BenchCommand.stderr("chatqueue bench-report: no run results in \(directory)")
            throw ExitCode(1)
        }
        let report = BenchReport(runs: runs, machine: .current(rabbitMQVersion: rabbitMQVersion))
        let markdown = report.markdown(title: "chatqueue benchmark", notes: note)
        let json = report.json.serialized() + [UInt8(ascii: "\n")]
        for (name, bytes) in [("report.md", Array(markdown.utf8)), ("report.json", json)] {
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                BenchCommand.stderr("chatqueue bench-report: cannot write \(path)")
                throw ExitCode(1)
            }
        }
        print(markdown, terminator: "")
        if !report.isCorrect { throw ExitCode(1) }
    }
}

/// `chatqueue bench-cleanup --queue Q`: deletes a run's queue, its dead-letter queue and exchange.
struct BenchCleanupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-cleanup",
        abstract: "Delete a benchmark run's request queue and its dead-letter queue and exchange.",
        shouldDisplay: false
    )

    @OptionGroup var configuration: ConfigOptions

    func run() throws {
        let settings = try configuration.loadSettings()
        let endpoint = settings.broker.endpoints[0]
        let options = BenchCommand.connectionOptions(settings, endpoint, name: "chatqueue bench-cleanup")
        // A failed delete closes the channel, so each gets its own connection.
        for name in [settings.queue.name, settings.queue.deadLetterQueue] {
            if let connection = try? AMQPConnection(options: options) {
                try? connection.deleteQueue(name)
                connection.close()
            }
        }
        if let connection = try? AMQPConnection(options: options) {
            try? connection.deleteExchange(settings.queue.deadLetterExchange)
            connection.close()
        }
    }
}
