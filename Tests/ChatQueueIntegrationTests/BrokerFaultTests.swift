import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// The second RabbitMQ node of scripts/fault-broker.sh (started by the test
/// command): restarted under load, and reached over TLS.
enum FaultBroker {
    static let environment = ProcessInfo.processInfo.environment
    static let node = environment["CHATQUEUE_TEST_FAULT_NODE"] ?? "chatqueue-fault@localhost"
    static let port = Int(environment["CHATQUEUE_TEST_FAULT_PORT"] ?? "") ?? 5673
    static let tlsPort = Int(environment["CHATQUEUE_TEST_FAULT_TLS_PORT"] ?? "") ?? 5674
    static let tlsDirectory = environment["CHATQUEUE_TEST_FAULT_TLS_DIR"] ?? "/tmp/chatqueue-fault/tls"
    static var url: String { "amqp://guest:guest@127.0.0.1:\(port)/%2f" }
    static var tlsURL: String { "amqps://guest:guest@localhost:\(tlsPort)/%2f" }

    static func options(_ name: String) -> AMQPConnectionOptions {
        AMQPConnectionOptions(host: "127.0.0.1", port: port, heartbeat: 0, connectionName: name)
    }

    /// Fails the test with a clear message when the node is not there.
    static func requireRunning() throws {
        do {
            _ = try AMQPConnection(options: options("fault probe"))
        } catch {
            throw TestFailure("the fault-injection broker is not running on port \(port): run scripts/fault-broker.sh start (scripts/test.sh does) — \(error)")
        }
    }

    /// rabbitmqctl against the fault node (stop_app / start_app).
    static func control(_ arguments: [String]) throws {
        _ = try query(arguments)
    }

    /// Runs rabbitmqctl against the fault node and returns what it printed.
    static func query(_ arguments: [String]) throws -> String {
        try IntegrationEnvironment.rabbitmqctl(["-n", node] + arguments)
    }
}

@Suite("Broker faults and TLS", .serialized)
struct BrokerFaultTests {
    private func request(_ text: String, stream: Bool, words: Int, intervalMs: Int) -> [UInt8] {
        Array(
            #"{"model":"deepseek-chat","stream":\#(stream),"messages":[{"role":"user","content":"\#(text)"}],"mock":{"words":\#(words),"interval_ms":\#(intervalMs)}}"#
                .utf8)
    }

    /// A worker on the fault broker, a request streaming to it, and a memory
    /// alarm raised once its first chunk arrived: every publisher is blocked.
    /// The caller stops the worker and clears the alarm (`defer`).
    private struct BlockedStream {
        let mock: MockUpstream
        let queue: String
        let worker: WorkerProcess
        let requester: Requester
    }

    /// Waits until the worker's status says the broker blocked its publishing.
    private func waitUntilBlocked(_ worker: WorkerProcess, timeout: Double = 20) async throws -> Bool {
        let status = try await worker.waitForStatus(timeout: timeout) { $0["broker"]?["publishing_blocked"]?.boolValue == true }
        return status?["broker"]?["publishing_blocked"]?.boolValue == true
    }

    /// Waits until the worker's status says a request's upstream reads are paused (its replies back up).
    private func waitUntilPaused(_ worker: WorkerProcess, timeout: Double = 10) async throws -> Bool {
        let status = try await worker.waitForStatus(timeout: timeout) { ($0["requests"]?["paused"]?.integerValue ?? 0) >= 1 }
        return (status?["requests"]?["paused"]?.integerValue ?? 0) >= 1
    }

    private func streamThenBlock(
        _ label: String, settings: [String: String], environment: [String: String] = [:], body: [UInt8],
        headers: [(String, AMQPFieldValue)] = []
    ) async throws -> BlockedStream {
        try FaultBroker.requireRunning()
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let queue = IntegrationEnvironment.uniqueQueueName(label)
        let worker = try WorkerProcess(
            queue: queue, upstreamURL: mock.baseURL, settings: settings, environment: environment,
            brokerURL: FaultBroker.url)
        try worker.waitUntilConsuming()
        let requester = try Requester(options: FaultBroker.options("\(label) requester"))
        try requester.send(to: queue, body: body, correlationID: label, headers: headers)
        _ = try #require(try requester.nextReply(timeout: 30), "no first chunk before the alarm")
        try FaultBroker.control(["set_vm_memory_high_watermark", "0"])
        return BlockedStream(mock: mock, queue: queue, worker: worker, requester: requester)
    }

    @Test("broker restart under load: every request gets its final reply, the worker reconnects and serves on")
    func brokerRestartUnderLoad() async throws {
        try FaultBroker.requireRunning()
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let queue = IntegrationEnvironment.uniqueQueueName("restart")
        let replies = "\(queue).replies"
        let worker = try WorkerProcess(
            queue: queue, upstreamURL: mock.baseURL, settings: ["broker.heartbeat": "5", "replies.allowed_queues": replies],
            brokerURL: FaultBroker.url)
        defer { worker.stop() }
        try worker.waitUntilConsuming()

        // A durable reply queue, so replies published around the restart survive it.
        var connection = try AMQPConnection(options: FaultBroker.options("restart requester"))
        try connection.declareQueue(replies, durable: true)
        let total = 40
        for index in 0..<total {
            let properties = AMQPOutgoingProperties(
                contentType: "application/json", correlationID: "r\(index)", messageID: "r\(index)", replyTo: replies,
                persistent: true)
            try connection.publish(
                routingKey: queue, mandatory: false, properties: properties,
                body: request("n\(index)", stream: index % 2 == 0, words: 20, intervalMs: 60))
        }
        var finals: [String: Int] = [:]
        var requester = try ReplyReader(connection: connection, queue: replies)
        // Let some finish, then take the broker away mid-stream.
        while finals.count < 8 { if let reply = try requester.next(timeout: 30) { finals.count(reply) } else { break } }
        try FaultBroker.control(["stop_app"])
        try await Task.sleep(for: .seconds(1))
        try FaultBroker.control(["start_app"])
        try FaultBroker.control(["await_startup"])
        let restarted = Date()

        connection = try AMQPConnection(options: FaultBroker.options("restart requester 2"))
        requester = try ReplyReader(connection: connection, queue: replies)
        var firstFinalAfterRestart: Double?
        let deadline = Date().addingTimeInterval(120)
        while finals.count < total && Date() < deadline {
            guard let reply = try requester.next(timeout: 30) else { break }
            if reply.isFinal && firstFinalAfterRestart == nil { firstFinalAfterRestart = Date().timeIntervalSince(restarted) }
            finals.count(reply)
        }
        let lost = total - finals.count
        // On a loaded machine every final may be in before the worker's reconnect is logged.
        let reconnected = try await worker.waitForStatus(timeout: 30) { status in
            (status["broker"]?["reconnects"]?.integerValue ?? 0) >= 1 && WorkerProcess.isConsuming(status)
        }
        // Recovery, for the record only: from the broker being back to the worker's log line saying it consumes again.
        // (No assertion reads the log: the status above is what counts.)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let resumed = worker.log.split(separator: "\n").last { $0.contains("consuming") }
            .flatMap { formatter.date(from: String($0.prefix(24))) }
        let recovery = resumed.map { $0.timeIntervalSince(restarted) }
        print(
            "broker restart: \(total) requests, \(finals.values.reduce(0, +)) finals for \(finals.count) requests, lost \(lost), worker consuming again \(recovery.map { String(format: "%.2f", $0) } ?? "-") s after the broker was back, first final after \(firstFinalAfterRestart.map { String(format: "%.2f", $0) } ?? "-") s")
        #expect(lost == 0)
        #expect((reconnected?["broker"]?["reconnects"]?.integerValue ?? 0) >= 1, "worker did not reconnect:\n\(worker.log)")
        #expect(reconnected.map(WorkerProcess.isConsuming) == true, "worker is not consuming again:\n\(worker.log)")

        // Back to serving new requests.
        let after = try Requester(options: FaultBroker.options("restart after"))
        try after.send(to: queue, body: request("after", stream: false, words: 3, intervalMs: 0))
        var final: ReceivedReply?
        while final == nil, let reply = try after.nextReply(timeout: 30) { if reply.isFinal { final = reply } }
        #expect(final?.type == "chat.completion")
        #expect(worker.stop() == 0)
        try? connection.deleteQueue(replies)
        try? connection.deleteQueue(queue)
        try? connection.deleteQueue("\(queue).dead")
        try? await mock.shutdown()
    }

    @Test(
        "a memory alarm blocks publishing: the loop keeps running (watchdog pings), upstream reads pause once replies back up, and everything flows in order once it clears"
    )
    func blockedPublisher() async throws {
        let socketPath = FileManager.default.temporaryDirectory.appendingPathComponent("cq-blocked-\(getpid()).sock").path
        let listener = try DatagramListener(path: socketPath)
        // The request streams for about 6 s; the alarm comes while it does and blocks every publisher.
        let run = try await streamThenBlock(
            "blocked", settings: ["replies.max_backlog_bytes": "4096"],
            environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "200000"],
            body: request("during the alarm", stream: true, words: 150, intervalMs: 40))
        let (mock, queue, worker, requester) = (run.mock, run.queue, run.worker, run.requester)
        defer {
            worker.stop()
            try? FaultBroker.control(["set_vm_memory_high_watermark", "0.4"])
        }
        #expect(try await waitUntilBlocked(worker))
        // While blocked, the event loop still runs: it keeps pinging the watchdog.
        var pings = 0
        let pingDeadline = Date().addingTimeInterval(5)
        while pings < 5 && Date() < pingDeadline {
            if let message = listener.receive(timeout: 0.5), message.contains("WATCHDOG=1") { pings += 1 }
        }
        #expect(pings >= 5, "the loop stopped pinging the watchdog while publishing was blocked")
        // A few KiB of chunks wait for the broker: the worker stops reading the upstream.
        #expect(try await waitUntilPaused(worker))

        try FaultBroker.control(["set_vm_memory_high_watermark", "0.4"])
        var replies: [ReceivedReply] = []
        while let reply = try requester.nextReply(timeout: 30) {
            replies.append(reply)
            if reply.isFinal { break }
        }
        // The first chunk was read above: the rest follow in order, then the final.
        try #require(!replies.isEmpty, "nothing after the alarm cleared")
        #expect(replies.last?.type == "chat.completion")
        #expect(replies.map(\.seq) == (1...Int64(replies.count)).map { $0 })
        // The replies above only flow once the broker unblocked us and the upstream reads resumed.
        let flowing = try await worker.waitForStatus(timeout: 10) { status in
            status["broker"]?["publishing_blocked"]?.boolValue == false && status["requests"]?["paused"]?.integerValue == 0
        }
        #expect(flowing?["broker"]?["publishing_blocked"]?.boolValue == false)
        #expect(flowing?["requests"]?["paused"]?.integerValue == 0)
        #expect(worker.stop() == 0)
        try? requester.connection.deleteQueue(queue)
        try? requester.connection.deleteQueue("\(queue).dead")
        try? await mock.shutdown()
    }

    @Test(
        "SIGTERM while a memory alarm blocks our replies: the worker exits 0 after the grace, and the unanswered request is back in the queue"
    )
    func shutdownWhileBlocked() async throws {
        let run = try await streamThenBlock(
            "blockedstop", settings: ["replies.max_backlog_bytes": "4096", "worker.shutdown_grace": "1"],
            body: request("stopped while blocked", stream: true, words: 150, intervalMs: 40))
        let (mock, queue, worker) = (run.mock, run.queue, run.worker)
        defer {
            worker.stop()
            try? FaultBroker.control(["set_vm_memory_high_watermark", "0.4"])
        }
        #expect(try await waitUntilBlocked(worker))
        #expect(try await waitUntilPaused(worker))
        // Chunks wait in the worker and the final can never be confirmed while the alarm lasts.
        // A worker that waited for them would be killed here (stop's own limit), not exit 0.
        #expect(worker.stop(timeout: 30) == 0, "the worker did not end after its grace:\n\(worker.log)")
        #expect(worker.status?["requests"]?["requeued"]?.integerValue == 1, "the request was not handed back")

        try FaultBroker.control(["set_vm_memory_high_watermark", "0.4"])
        let admin = try AMQPConnection(options: FaultBroker.options("blocked stop admin"))
        var ready = try admin.messageCount(queue: queue)
        let deadline = Date().addingTimeInterval(20)
        while ready != 1 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            ready = try admin.messageCount(queue: queue)
        }
        #expect(ready == 1, "the unanswered request was not handed back")
        try? admin.deleteQueue(queue)
        try? admin.deleteQueue("\(queue).dead")
        admin.close()
        try? await mock.shutdown()
    }

    @Test(
        "a request whose deadline passes while its upstream reads are paused ends deadline_exceeded, and the next request on that worker gets only its own bytes"
    )
    func pausedTransferNotReused() async throws {
        // One transfer at a time: the next request would reuse the paused one's easy handle.
        let run = try await streamThenBlock(
            "pausedreuse", settings: ["replies.max_backlog_bytes": "4096", "worker.concurrency": "1"],
            body: request("alpha", stream: true, words: 2000, intervalMs: 5),
            headers: [("x-deadline-ms", .int(unixMilliseconds() + 4000))])
        let (mock, queue, worker, requester) = (run.mock, run.queue, run.worker, run.requester)
        defer {
            worker.stop()
            try? FaultBroker.control(["set_vm_memory_high_watermark", "0.4"])
        }
        #expect(try await waitUntilPaused(worker, timeout: 20))
        // The deadline passes while the transfer is paused with bytes in libcurl: its error reply is counted
        // when published (it reaches the requester once the alarm clears).
        let deadlineErrors = try await worker.waitForMetric(
            "chatqueue_errors_total", #"code="deadline_exceeded""#, atLeast: 1, timeout: 20)
        #expect(deadlineErrors == 1)
        try FaultBroker.control(["set_vm_memory_high_watermark", "0.4"])
        var finalOfA: ReceivedReply?
        while finalOfA == nil, let reply = try requester.nextReply(timeout: 30) {
            if reply.isFinal { finalOfA = reply }
        }
        #expect(finalOfA?.json?["error"]?["code"]?.stringValue == "deadline_exceeded")

        let bravo = #"{"model":"deepseek-chat","messages":[{"role":"user","content":"bravo"}]}"#
        try requester.send(to: queue, body: Array(bravo.utf8), correlationID: "b")
        let finalOfB = try #require(try requester.nextReply(timeout: 30))
        #expect(finalOfB.correlationID == "b")
        #expect(finalOfB.type == "chat.completion", "\(finalOfB.text)")
        #expect(finalOfB.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: bravo")
        #expect(worker.stop() == 0)
        try? requester.connection.deleteQueue(queue)
        try? requester.connection.deleteQueue("\(queue).dead")
        try? await mock.shutdown()
    }

    @Test("the request queue deleted under the worker: consumer cancel noticed, topology declared again, serving again")
    func queueDeletedUnderTheWorker() async throws {
        let harness = try await IntegrationHarness.start("cancelled")
        let firstTag = try #require(harness.worker.status?["broker"]?["consumer_tag"]?.stringValue)
        let admin = try AMQPConnection(options: IntegrationEnvironment.brokerOptions(name: "test admin"))
        try admin.deleteQueue(harness.queue)
        // Deleting a queue leaves the connection up: only a worker that noticed the cancel subscribes again
        // (a new consumer tag). Its first try finds no queue, so it reconnects and declares the topology again.
        let resubscribed = try await harness.worker.waitForStatus(timeout: 30) { status in
            WorkerProcess.isConsuming(status) && status["broker"]?["consumer_tag"]?.stringValue != firstTag
        }
        let secondTag = resubscribed?["broker"]?["consumer_tag"]?.stringValue
        #expect(secondTag != nil && secondTag != firstTag, "no new subscription:\n\(harness.worker.log)")
        let replies = try harness.exchange(json: chatRequest("after the queue came back"))
        #expect(replies.last?.type == "chat.completion")
        admin.close()
        #expect(try await harness.shutdown() == 0)
    }

    @Test("amqps:// with the broker's CA: the worker connects over TLS and serves")
    func tlsVerified() async throws {
        try FaultBroker.requireRunning()
        try await serveOverTLS(settings: ["broker.tls.ca_file": "\(FaultBroker.tlsDirectory)/ca.pem"])
    }

    @Test("amqps:// with a client certificate (mutual TLS)")
    func tlsMutual() async throws {
        try FaultBroker.requireRunning()
        try await serveOverTLS(
            settings: [
                "broker.tls.ca_file": "\(FaultBroker.tlsDirectory)/ca.pem",
                "broker.tls.cert_file": "\(FaultBroker.tlsDirectory)/client.pem",
                "broker.tls.key_file": "\(FaultBroker.tlsDirectory)/client.key",
            ], presentsClientCertificate: true)
    }

    @Test("amqps:// with a CA the broker's certificate does not chain to: refused, and the worker keeps trying")
    func tlsUnknownCA() async throws {
        try FaultBroker.requireRunning()
        let queue = IntegrationEnvironment.uniqueQueueName("tlsbad")
        let worker = try WorkerProcess(
            queue: queue, upstreamURL: "http://127.0.0.1:9",
            settings: ["broker.tls.ca_file": "\(FaultBroker.tlsDirectory)/other-ca.pem"], brokerURL: FaultBroker.tlsURL)
        let refused = try await worker.waitForStatus(timeout: 20) { status in
            (status["broker"]?["connect_failures"]?.integerValue ?? 0) >= 2
        }
        #expect((refused?["broker"]?["connect_failures"]?.integerValue ?? 0) >= 2, "\(String(describing: refused))")
        #expect(refused?["state"]?.stringValue == "starting")
        #expect(refused?["broker"]?["connected"]?.boolValue == false)
        #expect(refused?["broker"]?["consumer_tag"]?.isNull == true)
        #expect(worker.process.isRunning)
        #expect(worker.stop() == 0)
    }

    @Test("a TLS connection that batches writes goes through its TLS session: frames queue and are written without blocking")
    func tlsBatchedWrites() throws {
        try FaultBroker.requireRunning()
        let options = AMQPConnectionOptions(
            host: "localhost", port: FaultBroker.tlsPort, tls: true, caFile: "\(FaultBroker.tlsDirectory)/ca.pem",
            heartbeat: 0, connectionName: "tls batched writes")
        let connection = try AMQPConnection(options: options)  // throws unless the TLS session was reached
        let queue = try connection.declareQueue("", durable: false, exclusive: true, autoDelete: true)
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 600_000)
        try connection.enqueuePublish(routingKey: queue, mandatory: true, body: body) { $0.type("t") }
        #expect(connection.hasUnsentFrames)
        while !(try connection.writeUnsent()) { Thread.sleep(forTimeInterval: 0.01) }
        // An RPC after the batched frames, then the message back: the stream stayed well-formed.
        _ = try connection.consume(queue: queue, noAck: true)
        var assembler = ContentAssembler(maxBodyBytes: 1 << 20)
        var received: AMQPMessage?
        let deadline = Date().addingTimeInterval(10)
        while received == nil && Date() < deadline {
            while received == nil, let frame = try connection.readFrame() {
                if case .message(let message) = try assembler.handle(frame) { received = message }
            }
            try connection.waitForInput(timeout: 0.2)
        }
        #expect(received?.body == body)
        #expect(received?.properties.type == "t")
        connection.close()
    }

    @Test(
        "replies over TLS to a broker that stops reading: the loop keeps running (watchdog pings) while large replies wait, and all arrive whole afterwards"
    )
    func tlsPublisherWithoutRoom() async throws {
        try FaultBroker.requireRunning()
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let relay = try TCPRelay(targetPort: FaultBroker.tlsPort)
        defer { relay.stop() }
        let queue = IntegrationEnvironment.uniqueQueueName("tlsfull")
        let socketPath = FileManager.default.temporaryDirectory.appendingPathComponent("cq-tlsfull-\(getpid()).sock").path
        let listener = try DatagramListener(path: socketPath)
        let worker = try WorkerProcess(
            queue: queue, upstreamURL: mock.baseURL,
            settings: ["broker.tls.ca_file": "\(FaultBroker.tlsDirectory)/ca.pem", "queue.declare": "true"],
            environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "200000"],
            brokerURL: "amqps://guest:guest@localhost:\(relay.port)/%2f")
        defer { worker.stop() }
        try worker.waitUntilConsuming()
        let requester = try Requester(options: FaultBroker.options("tls full requester"))

        // The broker stops hearing from the worker. Each answer is about 5.6 MB: more than a
        // socket's send buffer can ever hold (tcp_wmem caps it at 4 MiB), so no poll can say
        // there is room for it, and a write that waits for all of it never returns.
        relay.holdClientBytes(true)
        let total = 3
        let words = 700_000
        for index in 0..<total {
            try requester.send(
                to: queue, body: request("big \(index)", stream: false, words: words, intervalMs: 0),
                correlationID: "big\(index)")
        }
        let served = Date().addingTimeInterval(30)
        while mock.recordedRequests().count < total && Date() < served { try await Task.sleep(for: .milliseconds(50)) }
        #expect(mock.recordedRequests().count == total, "the worker did not call the upstream for every request")
        // Give the worker time to try to write the answers, then watch its loop.
        try await Task.sleep(for: .seconds(1))
        while listener.receive(timeout: 0) != nil {}
        var pings = 0
        let pingDeadline = Date().addingTimeInterval(5)
        while pings < 5 && Date() < pingDeadline {
            if let message = listener.receive(timeout: 0.5), message.contains("WATCHDOG=1") { pings += 1 }
        }
        #expect(pings >= 5, "the event loop froze while TLS replies waited for room")

        relay.holdClientBytes(false)
        var finals: [String: ReceivedReply] = [:]
        while finals.count < total, let reply = try requester.nextReply(timeout: 60) {
            if reply.isFinal, let id = reply.correlationID { finals[id] = reply }
        }
        #expect(finals.count == total)
        for reply in finals.values {
            let content = reply.json?["choices"]?[0]?["message"]?["content"]?.stringValue
            #expect(reply.type == "chat.completion")
            #expect(content?.hasSuffix(" w\(words)") == true, "a reply arrived cut or garbled")
        }
        #expect(worker.stop() == 0)
        try? requester.connection.deleteQueue(queue)
        try? requester.connection.deleteQueue("\(queue).dead")
        try? await mock.shutdown()
    }

    private func serveOverTLS(settings: [String: String], presentsClientCertificate: Bool = false) async throws {
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let queue = IntegrationEnvironment.uniqueQueueName("tls")
        let worker = try WorkerProcess(
            queue: queue, upstreamURL: mock.baseURL, settings: settings, brokerURL: FaultBroker.tlsURL)
        defer { worker.stop() }
        try worker.waitUntilConsuming()
        // The broker does not insist on a client certificate, so check that the worker's connections showed one.
        let pid = worker.process.processIdentifier
        let connections = try FaultBroker.query(["list_connections", "client_properties", "peer_cert_subject"])
            .split(separator: "\n").filter { $0.contains("pid\(pid) ") }
        #expect(connections.count == 2, "the worker's two connections: \(connections)")
        for connection in connections {
            #expect(connection.contains("CN=localhost") == presentsClientCertificate, "\(connection)")
        }
        let requester = try Requester(options: FaultBroker.options("tls requester"))
        try requester.send(to: queue, body: request("over tls", stream: true, words: 3, intervalMs: 0), correlationID: "t")
        var replies: [ReceivedReply] = []
        while let reply = try requester.nextReply(timeout: 30) {
            replies.append(reply)
            if reply.isFinal { break }
        }
        #expect(replies.last?.type == "chat.completion")
        #expect(replies.last?.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "w1 w2 w3")
        #expect(worker.stop() == 0)
        try? requester.connection.deleteQueue(queue)
        try? requester.connection.deleteQueue("\(queue).dead")
        try? await mock.shutdown()
    }
}

extension Dictionary where Key == String, Value == Int {
    /// Counts a final reply per request id.
    fileprivate mutating func count(_ reply: ReceivedReply) {
        guard reply.isFinal, let id = reply.requestID else { return }
        self[id, default: 0] += 1
    }
}
