import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// The three-node cluster of scripts/cluster.sh (started by the test command):
/// a quorum request queue with three replicas and workers on different nodes.
enum TestCluster {
    static let environment = ProcessInfo.processInfo.environment
    /// The nodes' AMQP URLs, node 1 first (`cluster.sh env`).
    static let urls = (environment["CHATQUEUE_TEST_CLUSTER_URLS"]
        ?? "amqp://guest:guest@127.0.0.1:5701/,amqp://guest:guest@127.0.0.1:5702/,amqp://guest:guest@127.0.0.1:5703/")
        .split(separator: ",").map(String.init)
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/cluster.sh").path

    /// The AMQP port of node `node` (1...3), read from its URL.
    static func port(_ node: Int) -> Int {
        let afterHost = urls[node - 1].split(separator: "@").last.map(String.init) ?? ""
        return Int(afterHost.split(separator: ":").last?.prefix { $0.isNumber } ?? "") ?? 5700 + node
    }

    static func options(_ node: Int, _ name: String) -> AMQPConnectionOptions {
        AMQPConnectionOptions(host: "127.0.0.1", port: port(node), heartbeat: 0, connectionName: name)
    }

    /// `broker.url` for a worker that tries the nodes in `order`.
    static func brokerURL(_ order: [Int]) -> String { order.map { urls[$0 - 1] }.joined(separator: ",") }

    /// Fails the test with a clear message when a node is not there.
    static func requireRunning() throws {
        for node in 1...3 {
            do {
                _ = try AMQPConnection(options: options(node, "cluster probe"))
            } catch {
                throw TestFailure("cluster node \(node) is not running on port \(port(node)): run scripts/cluster.sh start (scripts/test.sh does) — \(error)")
            }
        }
    }

    /// Runs scripts/cluster.sh and returns what it printed.
    @discardableResult
    static func control(_ arguments: [String]) throws -> String {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: script)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("cluster.sh \(arguments) failed") }
        return printed.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The node (1...3) leading `queue`'s Raft group.
    static func leader(of queue: String) throws -> Int {
        let name = try control(["leader", queue])  // cq2@localhost
        guard let node = Int(name.dropFirst(2).prefix { $0.isNumber }), (1...3).contains(node) else {
            throw TestFailure("no leader for \(queue): \(name)")
        }
        return node
    }
}

@Suite("Cluster failover", .serialized)
struct ClusterFailoverTests {
    @Test("kill -9 of the node leading the request queue: every request gets its final with the right content, chunks in order, every worker consumes again")
    func leaderKilled() async throws {
        try TestCluster.requireRunning()
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let queue = IntegrationEnvironment.uniqueQueueName("cluster")
        let replies = "\(queue).replies"
        // Worker k tries node k first: one worker per node.
        let workers = try [[1, 2, 3], [2, 3, 1], [3, 1, 2]].map { order in
            try WorkerProcess(
                queue: queue, upstreamURL: mock.baseURL,
                settings: ["queue.type": "quorum", "broker.heartbeat": "5", "replies.allowed_queues": replies],
                brokerURL: TestCluster.brokerURL(order))
        }
        defer { for worker in workers { worker.stop() } }
        for worker in workers { try worker.waitUntilConsuming() }
        let leader = try TestCluster.leader(of: queue)
        defer { _ = try? TestCluster.control(["start-node", "\(leader)"]) }

        // The requester and its durable reply queue live on a node that survives.
        let requesterNode = leader % 3 + 1
        let connection = try AMQPConnection(options: TestCluster.options(requesterNode, "cluster requester"))
        try connection.declareQueue(replies, durable: true)
        let total = 60
        let words = 20
        for index in 0..<total {
            let properties = AMQPOutgoingProperties(
                contentType: "application/json", correlationID: "r\(index)", messageID: "r\(index)", replyTo: replies,
                persistent: true)
            let body = #"{"model":"deepseek-chat","stream":true,"messages":[{"role":"user","content":"n\#(index)"}],"mock":{"words":\#(words),"interval_ms":100}}"#
            try connection.publish(routingKey: queue, mandatory: false, properties: properties, body: Array(body.utf8))
        }
        var reader = try ReplyReader(connection: connection, queue: replies, prefetch: 200)
        // Requests are streaming on every worker; then the leader's node dies.
        var received: [ReceivedReply] = []
        while received.count < 20, let reply = try reader.next(timeout: 30) { received.append(reply) }
        try TestCluster.control(["kill", "\(leader)"])

        var finals: [String: [ReceivedReply]] = [:]
        for reply in received where reply.isFinal { finals[reply.requestID ?? "", default: []].append(reply) }
        while finals.count < total, let reply = try reader.next(timeout: 60) {
            received.append(reply)
            if reply.isFinal { finals[reply.requestID ?? "", default: []].append(reply) }
        }
        // Late duplicates (a final confirmed whose ack died with the node) are counted, not lost.
        while let reply = try reader.next(timeout: 1) {
            received.append(reply)
            if reply.isFinal { finals[reply.requestID ?? "", default: []].append(reply) }
        }

        let expected = (1...words).map { "w\($0)" }.joined(separator: " ")
        var wrong: [String] = []
        var outOfOrder: [String] = []
        var lastSeq: [String: Int64] = [:]
        for reply in received {
            let key = "\(reply.requestID ?? "")/\(reply.attempt ?? 0)"
            let seq = reply.seq ?? -1
            if seq <= lastSeq[key, default: -1] { outOfOrder.append(key) }
            lastSeq[key] = seq
        }
        for (id, replies) in finals {
            for final in replies {
                let content = try? JSONValue(parsing: final.body)["choices"]?[0]?["message"]?["content"]?.stringValue
                if final.type != "chat.completion" || content != expected { wrong.append(id) }
            }
        }
        let duplicates = finals.values.filter { $0.count > 1 }.count
        print("cluster leader kill: \(total) requests, \(finals.count) with a final, \(duplicates) duplicate finals, leader was node \(leader)")
        #expect(finals.count == total, "requests without a final")
        #expect(wrong.isEmpty, "wrong finals: \(wrong)")
        #expect(outOfOrder.isEmpty, "chunks out of order: \(outOfOrder)")
        // The worker whose node died reconnected to another node; the others kept consuming.
        let moved = workers[leader - 1]
        let reconnected = try await moved.waitForStatus(timeout: 30) { status in
            (status["broker"]?["reconnects"]?.integerValue ?? 0) >= 1 && WorkerProcess.isConsuming(status)
        }
        #expect(reconnected.map(WorkerProcess.isConsuming) == true, "worker on the killed node is not consuming again:\n\(moved.log)")
        for worker in workers {
            let status = try await worker.waitForStatus(timeout: 30, until: WorkerProcess.isConsuming)
            #expect(status.map(WorkerProcess.isConsuming) == true, "a worker is not consuming:\n\(worker.log)")
        }
        for worker in workers { #expect(worker.stop() == 0) }
        try TestCluster.control(["start-node", "\(leader)"])
        try? connection.deleteQueue(replies)
        try? connection.deleteQueue(queue)
        try? connection.deleteQueue("\(queue).dead")
        try? await mock.shutdown()
    }
}
