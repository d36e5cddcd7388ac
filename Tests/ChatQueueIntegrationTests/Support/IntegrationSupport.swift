import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// The real parts the integration tests run against: the RabbitMQ broker the
/// test command started (CHATQUEUE_TEST_BROKER_URL, default the local one),
/// the built `chatqueue` executable run as real worker processes, and the
/// mock upstream (the only fake: there is no network here).
enum IntegrationEnvironment {
    static let brokerHost = ProcessInfo.processInfo.environment["CHATQUEUE_TEST_BROKER_HOST"] ?? "127.0.0.1"
    static let brokerPort = Int(ProcessInfo.processInfo.environment["CHATQUEUE_TEST_BROKER_PORT"] ?? "") ?? 5672
    static var brokerURL: String { "amqp://guest:guest@\(brokerHost):\(brokerPort)/%2f" }

    static func brokerOptions(name: String = "chatqueue-tests") -> AMQPConnectionOptions {
        AMQPConnectionOptions(host: brokerHost, port: brokerPort, heartbeat: 0, connectionName: name)
    }

    /// The `chatqueue` executable built next to the test bundle.
    static var executable: URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // swift test runs .build/<config>/chatqueuePackageTests.xctest; the executable is beside it.
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("chatqueue").path),
            directory.path != "/"
        {
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent("chatqueue")
    }

    /// Runs rabbitmqctl (against the test broker's node unless `arguments`
    /// name another with `-n`) and returns what it printed.
    static func rabbitmqctl(_ arguments: [String]) throws -> String {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/rabbitmqctl")
        process.arguments = ["-q"] + arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("rabbitmqctl \(arguments) failed") }
        return printed
    }

    /// Queue names of one test, unique so tests can run in parallel.
    static func uniqueQueueName(_ label: String) -> String {
        "test.\(label).\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// A `chatqueue worker` process for one test, with its own request queue.
/// Tests observe it the way operators do: its status file and metrics
/// textfile (docs/operations.md), rewritten every 0.2 s and on each state
/// change; its log is for failure messages, not for assertions.
final class WorkerProcess: @unchecked Sendable {
    let process = Process()
    let queue: String
    let logFile: URL
    let statusFile: String
    let metricsFile: String

    /// Starts a worker on `queue` against `upstreamURL`; `settings` are extra `--set` overrides.
    init(
        queue: String, upstreamURL: String, settings: [String: String] = [:], environment: [String: String] = [:],
        brokerURL: String = IntegrationEnvironment.brokerURL
    ) throws {
        self.queue = queue
        let name = "chatqueue-\(queue)-\(UUID().uuidString.prefix(8))"
        let directory = FileManager.default.temporaryDirectory
        logFile = directory.appendingPathComponent(name + ".log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        var settings = settings
        statusFile = settings["status.file"] ?? directory.appendingPathComponent(name + "-status.json").path
        metricsFile = settings["metrics.textfile"] ?? directory.appendingPathComponent(name + ".prom").path
        settings["status.file"] = statusFile
        settings["metrics.textfile"] = metricsFile
        settings["status.interval"] = settings["status.interval"] ?? "0.2"
        process.executableURL = IntegrationEnvironment.executable
        var arguments = [
            "worker", "--broker-url", brokerURL, "--queue", queue, "--upstream-url", upstreamURL,
            "--set", "log.level=debug", "--set", "queue.type=classic",
        ]
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) { arguments += ["--set", "\(key)=\(value)"] }
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHATQUEUE_") }
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let handle = try FileHandle(forWritingTo: logFile)
        process.standardError = handle
        process.standardOutput = handle
        // A child inherits the spawning thread's signal mask, and the threads async tests run on
        // block SIGTERM and SIGINT: start the worker with them deliverable, as a shell or systemd does.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, &previousMask)
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        try process.run()
    }

    /// Waits until the worker consumes from its queue: its status file says
    /// `running` with a consumer tag.
    func waitUntilConsuming(timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let status, Self.isConsuming(status) { return }
            if !process.isRunning { throw TestFailure("worker exited early: \(log)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw TestFailure("worker did not start consuming within \(timeout) s: \(log)")
    }

    /// Running, with a consumer on the queue.
    static func isConsuming(_ status: JSONValue) -> Bool {
        status["state"]?.stringValue == "running" && status["broker"]?["consumer_tag"]?.stringValue != nil
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// The status file as last written; nil before the first write.
    var status: JSONValue? {
        guard let bytes = FileManager.default.contents(atPath: statusFile) else { return nil }
        return try? JSONValue(parsing: Array(bytes))
    }

    /// Waits until the status file satisfies `condition` or `timeout` seconds
    /// pass; returns the last status read (the caller asserts on it).
    @discardableResult
    func waitForStatus(timeout: Double, until condition: (JSONValue) -> Bool) async throws -> JSONValue? {
        let deadline = Date().addingTimeInterval(timeout)
        var last = status
        while !(last.map(condition) ?? false) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
            last = status
        }
        return last
    }

    /// A counter or gauge in the metrics textfile: the sample of `name` whose
    /// labels (after `instance`) are `labels`, e.g. `outcome="requeued"`; nil when absent.
    func metric(_ name: String, _ labels: String = "") -> Int? {
        guard let text = try? String(contentsOfFile: metricsFile, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { continue }
            let labelText = parts[0].dropFirst(name.count + 1).dropLast()
            let rest = labelText.drop { $0 != "," }.dropFirst()
            if rest == labels[...], let value = Double(parts[1]) { return Int(value) }
        }
        return nil
    }

    /// Waits until the metric reaches at least `value` or `timeout` seconds pass; returns its last value.
    @discardableResult
    func waitForMetric(_ name: String, _ labels: String = "", atLeast value: Int, timeout: Double) async throws -> Int? {
        let deadline = Date().addingTimeInterval(timeout)
        while (metric(name, labels) ?? 0) < value && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        return metric(name, labels)
    }

    /// SIGTERM, then waits for the exit; returns the exit status.
    @discardableResult
    func stop(timeout: Double = 60) -> Int32 {
        if process.isRunning { process.terminate() }
        return waitForExit(process, timeout: timeout)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: logFile)
        try? FileManager.default.removeItem(atPath: statusFile)
        try? FileManager.default.removeItem(atPath: metricsFile)
    }
}

/// Waits for `process` to exit (SIGKILL after `timeout` seconds); returns its status.
func waitForExit(_ process: Process, timeout: Double) -> Int32 {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    return process.terminationStatus
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One test's world: a mock upstream, a worker on a fresh queue, and a requester.
final class IntegrationHarness: @unchecked Sendable {
    let mock: MockUpstream
    let worker: WorkerProcess
    let queue: String
    let requester: Requester

    static func start(
        _ label: String, mockOptions: MockUpstreamOptions = MockUpstreamOptions(), settings: [String: String] = [:],
        environment: [String: String] = [:], directReplyTo: Bool = false
    ) async throws -> IntegrationHarness {
        let mock = try await MockUpstream.start(mockOptions)
        let queue = IntegrationEnvironment.uniqueQueueName(label)
        let worker = try WorkerProcess(
            queue: queue, upstreamURL: mock.baseURL, settings: settings, environment: environment)
        try worker.waitUntilConsuming()
        let requester = try Requester(
            options: IntegrationEnvironment.brokerOptions(name: "test \(label)"), directReplyTo: directReplyTo)
        return IntegrationHarness(mock: mock, worker: worker, queue: queue, requester: requester)
    }

    private init(mock: MockUpstream, worker: WorkerProcess, queue: String, requester: Requester) {
        self.mock = mock
        self.worker = worker
        self.queue = queue
        self.requester = requester
    }

    /// Sends a request body and returns its replies up to and including the final one.
    func exchange(
        _ body: [UInt8], correlationID: String? = nil, messageID: String? = nil, contentType: String? = "application/json",
        headers: [(String, AMQPFieldValue)] = [], timeout: Double = 30
    ) throws -> [ReceivedReply] {
        try requester.send(
            to: queue, body: body, correlationID: correlationID, messageID: messageID, contentType: contentType,
            headers: headers)
        return try collectReplies(timeout: timeout)
    }

    func exchange(json: String, correlationID: String? = nil, timeout: Double = 30) throws -> [ReceivedReply] {
        try exchange(Array(json.utf8), correlationID: correlationID, timeout: timeout)
    }

    /// Replies until a final one arrives.
    func collectReplies(timeout: Double = 30) throws -> [ReceivedReply] {
        var replies: [ReceivedReply] = []
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0, let reply = try requester.nextReply(timeout: left) else {
                throw TestFailure("no final reply within \(timeout) s after \(replies.count) replies; worker log:\n\(worker.log)")
            }
            replies.append(reply)
            if reply.isFinal { return replies }
        }
    }

    /// Messages waiting in a queue (passive declare).
    func messageCount(_ queue: String) throws -> Int {
        let connection = try AMQPConnection(options: IntegrationEnvironment.brokerOptions(name: "test count"))
        defer { connection.close() }
        return try connection.messageCount(queue: queue)
    }

    /// Stops the worker and the mock and deletes the test's queues.
    func shutdown() async throws -> Int32 {
        isShutDown = true
        let status = worker.stop()
        requester.connection.close()
        try? await mock.shutdown()
        Self.deleteTopology(of: queue)
        return status
    }

    private var isShutDown = false

    /// A test that threw before `shutdown()` still leaves no worker, queues or mock behind.
    deinit {
        guard !isShutDown else { return }
        if worker.process.isRunning { kill(worker.process.processIdentifier, SIGKILL) }
        worker.process.waitUntilExit()
        requester.connection.close()
        Self.deleteTopology(of: queue)
        let mock = self.mock
        Task { try? await mock.shutdown() }
    }

    private static func deleteTopology(of queue: String) {
        if let connection = try? AMQPConnection(options: IntegrationEnvironment.brokerOptions(name: "test cleanup")) {
            for name in [queue, "\(queue).dead"] { try? connection.deleteQueue(name) }
            try? connection.deleteExchange("\(queue).dlx")
            connection.close()
        }
    }
}

extension ReceivedReply {
    var json: JSONValue? { try? JSONValue(parsing: body) }
}

// MARK: - Helpers for the error, dead-letter, contract and example tests

extension IntegrationHarness {
    /// Publishes a request with full control over its properties; `replyTo: nil`
    /// sends it without reply_to (which `Requester.send` never does).
    func publish(
        _ body: [UInt8], replyTo: String?, correlationID: String? = nil, messageID: String? = nil,
        contentType: String? = "application/json", headers: [(String, AMQPFieldValue)] = []
    ) throws {
        let properties = AMQPOutgoingProperties(
            contentType: contentType, correlationID: correlationID, messageID: messageID, replyTo: replyTo,
            persistent: true, headers: headers)
        try requester.connection.publish(routingKey: queue, mandatory: false, properties: properties, body: body)
    }

    /// The next reply if one comes within `timeout` seconds; nil shows nothing more was sent.
    func extraReply(within timeout: Double = 0.5) throws -> ReceivedReply? {
        try requester.nextReply(timeout: timeout)
    }

    /// Polls until `queue` holds `expected` ready messages or `timeout` passes;
    /// returns the last count seen (dead-lettering happens after the reply's confirm).
    func waitForMessageCount(_ queue: String, toBe expected: Int, timeout: Double = 10) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        var count = try messageCount(queue)
        while count != expected && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            count = try messageCount(queue)
        }
        return count
    }

    /// The dead-letter queue the worker declared for this test's queue.
    var deadLetterQueue: String { "\(queue).dead" }
}

extension ReceivedReply {
    /// The body as text, for messages.
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A chat request body; `mock` is the raw JSON of the mock's directives object.
/// `text` is put into JSON as is: keep it free of quotes and backslashes.
func chatRequest(_ text: String = "hello", model: String = "deepseek-chat", stream: Bool = false, mock: String? = nil)
    -> String
{
    var body = #"{"model":"\#(model)","messages":[{"role":"user","content":"\#(text)"}]"#
    if stream { body += #","stream":true"# }
    if let mock { body += #","mock":\#(mock)"# }
    return body + "}"
}

/// Reads replies from a named queue (a durable reply queue that outlives a
/// connection or a node), acking each one it has read: replies the broker
/// pushed but the test did not read yet when a connection died go back to the
/// queue instead of being lost.
struct ReplyReader {
    let connection: AMQPConnection
    var assembler = ContentAssembler(maxBodyBytes: 1 << 24)

    init(connection: AMQPConnection, queue: String, prefetch: Int = 50) throws {
        self.connection = connection
        try connection.setPrefetch(prefetch)
        _ = try connection.consume(queue: queue, noAck: false)
    }

    mutating func next(timeout: Double) throws -> ReceivedReply? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            while let frame = try connection.readFrame() {
                if case .message(let message) = try assembler.handle(frame) {
                    if case .deliver(_, let tag, _, _, _) = message.method { try connection.ack(deliveryTag: tag) }
                    return ReceivedReply(
                        type: message.properties.type ?? "", correlationID: message.properties.correlationID,
                        contentType: message.properties.contentType, deliveryMode: message.properties.deliveryMode,
                        headers: message.properties.headers, body: message.body)
                }
            }
            try connection.waitForInput(timeout: 0.2)
        }
        return nil
    }
}
