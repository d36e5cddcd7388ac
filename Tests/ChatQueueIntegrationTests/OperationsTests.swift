import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How the worker behaves as a supervised service: several instances on one
/// queue, systemd's notify protocol, the status file, degraded mode.
@Suite("Operations")
struct OperationsTests {
    @Test("three workers on one queue: 1,000 mixed requests each answered exactly once, work spread over all three")
    func threeInstances() async throws {
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        defer { Task { try? await mock.shutdown() } }
        let queue = IntegrationEnvironment.uniqueQueueName("three")
        let workers = try (1...3).map { index in
            try WorkerProcess(
                queue: queue, upstreamURL: mock.baseURL,
                settings: ["worker.concurrency": "16", "log.level": "info"], environment: [:])
        }
        for worker in workers { try worker.waitUntilConsuming() }
        let requester = try Requester(options: IntegrationEnvironment.brokerOptions(name: "three requester"))
        let total = 1000
        for index in 0..<total {
            let body = chatRequest("request \(index)", stream: index % 2 == 0, mock: #"{"words":5}"#)
            try requester.send(to: queue, body: Array(body.utf8), correlationID: "c\(index)", messageID: "c\(index)")
        }
        var finals: [String: Int] = [:]
        var nextSeq: [String: Int64] = [:]
        var outOfOrder = 0
        var errors = 0
        while finals.count < total, let reply = try requester.nextReply(timeout: 60) {
            let id = reply.requestID ?? "?"
            if reply.seq != nextSeq[id, default: 0] { outOfOrder += 1 }
            nextSeq[id] = (reply.seq ?? 0) + 1
            if reply.isFinal {
                finals[id, default: 0] += 1
                if reply.type != "chat.completion" { errors += 1 }
            }
        }
        // Anything extra would arrive now.
        while let reply = try requester.nextReply(timeout: 0.5) { if reply.isFinal { finals[reply.requestID ?? "?", default: 0] += 1 } }
        #expect(finals.count == total)
        #expect(finals.values.allSatisfy { $0 == 1 })
        #expect(outOfOrder == 0)
        #expect(errors == 0)

        var perWorker: [Int] = []
        for worker in workers {
            let status = worker.stop()
            #expect(status == 0)
            // Each worker's status file keeps its counts after a clean stop.
            let final = worker.status
            #expect(final?["state"]?.stringValue == "stopped")
            perWorker.append(final?["requests"]?["received"]?.integerValue ?? 0)
        }
        print("three instances: \(total) requests, per worker \(perWorker)")
        #expect(perWorker.allSatisfy { $0 > 0 }, "work did not reach every worker: \(perWorker)")
        #expect(perWorker.reduce(0, +) == total)
        try? requester.connection.deleteQueue(queue)
        try? requester.connection.deleteQueue("\(queue).dead")
    }

    @Test("systemd notify: READY=1 once consuming, WATCHDOG=1 repeatedly, STATUS= lines, STOPPING=1 on SIGTERM")
    func notifyProtocol() async throws {
        let socketPath = FileManager.default.temporaryDirectory.appendingPathComponent("cq-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock").path
        let listener = try DatagramListener(path: socketPath)
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let queue = IntegrationEnvironment.uniqueQueueName("notify")
        let statusFile = FileManager.default.temporaryDirectory.appendingPathComponent("cq-status-\(queue).json").path
        let metricsFile = FileManager.default.temporaryDirectory.appendingPathComponent("cq-metrics-\(queue).prom").path
        let worker = try WorkerProcess(
            queue: queue, upstreamURL: mock.baseURL,
            settings: ["status.file": statusFile, "status.interval": "0.2", "metrics.textfile": metricsFile],
            environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "400000"])
        try worker.waitUntilConsuming()
        // One request, so the counters and histograms have something in them.
        let requester = try Requester(options: IntegrationEnvironment.brokerOptions(name: "notify requester"))
        try requester.send(to: queue, body: Array(chatRequest("count me").utf8))
        var answered = false
        while !answered, let reply = try requester.nextReply(timeout: 30) { answered = reply.isFinal }
        #expect(answered)

        var messages: [String] = []
        let deadline = Date().addingTimeInterval(20)
        while messages.filter({ $0.contains("WATCHDOG=1") }).count < 3 && Date() < deadline {
            if let message = listener.receive(timeout: 0.5) { messages.append(message) }
        }
        let ready = messages.firstIndex { $0.split(separator: "\n").contains("READY=1") }
        #expect(ready != nil, "no READY=1 in \(messages)")
        #expect(messages.filter { $0.contains("WATCHDOG=1") }.count >= 3)
        #expect(messages.contains { $0.contains("STATUS=running") })

        // The status file is there and healthy.
        let health = Process()
        health.executableURL = IntegrationEnvironment.executable
        health.arguments = ["health", "--status-file", statusFile, "--max-age", "5"]
        health.standardOutput = FileHandle.nullDevice
        try health.run()
        health.waitUntilExit()
        #expect(health.terminationStatus == 0)
        let status = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: statusFile))))
        #expect(status["state"]?.stringValue == "running")
        #expect(status["broker"]?["queue"]?.stringValue == queue)
        #expect(status["pid"]?.integerValue == Int(worker.process.processIdentifier))
        #expect(status["requests"]?["succeeded"]?.integerValue == 1)

        // The Prometheus textfile, for node_exporter.
        try await Task.sleep(for: .milliseconds(500))
        let metrics = try String(contentsOfFile: metricsFile, encoding: .utf8)
        #expect(metrics.contains("# TYPE chatqueue_requests_total counter"))
        #expect(metrics.contains(#"chatqueue_requests_total{instance=""#) && metrics.contains(#"outcome="succeeded"} 1"#))
        #expect(metrics.contains("chatqueue_upstream_duration_seconds_count"))

        // An AF_UNIX datagram queue holds 10 messages by default (net.unix.max_dgram_qlen), and the
        // notifier never blocks: drain what the watchdog queued meanwhile, as systemd would have.
        while listener.receive(timeout: 0) != nil {}
        worker.process.terminate()
        var stopping = false
        let stopDeadline = Date().addingTimeInterval(20)
        while !stopping && Date() < stopDeadline {
            if let message = listener.receive(timeout: 0.5) { stopping = message.split(separator: "\n").contains("STOPPING=1") }
        }
        #expect(stopping)
        #expect(worker.stop() == 0)
        let final = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: statusFile))))
        #expect(final["state"]?.stringValue == "stopped")
        try? FileManager.default.removeItem(atPath: statusFile)
        try? FileManager.default.removeItem(atPath: metricsFile)
        try? requester.connection.deleteQueue(queue)
        try? requester.connection.deleteQueue("\(queue).dead")
        try? await mock.shutdown()
    }

    @Test("degraded: after repeated upstream failures the worker probes one request at a time, then recovers")
    func degradedMode() async throws {
        // The first 8 upstream calls fail with 503; later ones succeed.
        let harness = try await IntegrationHarness.start(
            "degraded", settings: ["retry.max_attempts": "1", "worker.concurrency": "4"])
        let total = 12
        for index in 0..<total {
            let body = chatRequest("d\(index)", mock: #"{"fail_first":8,"key":"degraded-\#(harness.queue)","fail_status":503}"#)
            try harness.requester.send(to: harness.queue, body: Array(body.utf8), correlationID: "d\(index)")
        }
        var finals: [String: String] = [:]
        while finals.count < total, let reply = try harness.requester.nextReply(timeout: 60) {
            if reply.isFinal { finals[reply.correlationID ?? "?"] = reply.type }
        }
        #expect(finals.count == total)
        #expect(finals.values.filter { $0 == "error" }.count == 8)
        #expect(finals.values.filter { $0 == "chat.completion" }.count == 4)
        // Degraded once, probed with single requests, recovered: running again, the failure streak over.
        let status = try await harness.worker.waitForStatus(timeout: 10) { $0["state"]?.stringValue == "running" }
        #expect(status?["upstream"]?["degradations"]?.integerValue == 1, "\(String(describing: status))")
        #expect((status?["upstream"]?["probes"]?.integerValue ?? 0) >= 1, "\(String(describing: status))")
        #expect(status?["state"]?.stringValue == "running")
        #expect(status?["upstream"]?["consecutive_failures"]?.integerValue == 0)
        #expect(try await harness.shutdown() == 0)
    }
}

/// A bound AF_UNIX datagram socket standing in for systemd's notify socket.
final class DatagramListener: @unchecked Sendable {
    let descriptor: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else { throw TestFailure("bind \(path): errno \(errno)") }
    }

    /// One datagram, or nil after `timeout` seconds.
    func receive(timeout: Double) -> String? {
        var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeout * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    deinit {
        close(descriptor)
        unlink(path)
    }
}
