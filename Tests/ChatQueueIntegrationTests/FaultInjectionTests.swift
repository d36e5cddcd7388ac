import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// Workers killed, stopped and cut off from their broker: every request still
/// gets a final reply, and nothing is lost. The broker-restart and TLS tests
/// use a second RabbitMQ node (scripts/fault-broker.sh) so the other tests'
/// broker never goes away.
@Suite("Fault injection", .serialized)
struct FaultInjectionTests {
    /// A stream request slow enough to be caught in flight.
    private func slowStream(_ text: String, words: Int, intervalMs: Int, key: String = "") -> [UInt8] {
        Array(
            #"{"model":"deepseek-chat","stream":true,"messages":[{"role":"user","content":"\#(text)"}],"mock":{"words":\#(words),"interval_ms":\#(intervalMs),"key":"\#(key)"}}"#
                .utf8)
    }

    @Test("kill -9 mid-stream: another worker answers the redelivery as attempt 2, x-seq from 0")
    func killedWorkerMidStream() async throws {
        let harness = try await IntegrationHarness.start("kill9")
        try harness.requester.send(to: harness.queue, body: slowStream("slow", words: 30, intervalMs: 100), correlationID: "k9")
        let first = try #require(try harness.requester.nextReply(timeout: 30))
        #expect(first.attempt == 1)
        kill(harness.worker.process.processIdentifier, SIGKILL)
        harness.worker.process.waitUntilExit()

        let second = try WorkerProcess(queue: harness.queue, upstreamURL: harness.mock.baseURL)
        defer { second.stop() }
        try second.waitUntilConsuming()
        var replies: [ReceivedReply] = []
        while true {
            let reply = try #require(try harness.requester.nextReply(timeout: 30), "no final after redelivery")
            if reply.attempt == 2 { replies.append(reply) }
            if reply.isFinal && reply.attempt == 2 { break }
        }
        #expect(replies.first?.seq == 0)
        #expect(replies.map(\.seq) == (0..<Int64(replies.count)).map { $0 })
        #expect(replies.last?.type == "chat.completion")
        #expect(replies.last?.json?["choices"]?[0]?["message"]?["content"]?.stringValue?.hasPrefix("w1 w2") == true)
        #expect(second.stop() == 0)
        _ = try await harness.shutdown()
    }

    /// A worker (with this shutdown grace, else the default) streaming a slow
    /// reply, 100 ms a word, whose first chunk has arrived.
    private func streaming(_ label: String, words: Int, grace: String? = nil) async throws -> IntegrationHarness {
        let harness = try await IntegrationHarness.start(
            label, settings: grace.map { ["worker.shutdown_grace": $0] } ?? [:])
        try harness.requester.send(
            to: harness.queue, body: slowStream(label, words: words, intervalMs: 100), correlationID: label)
        _ = try #require(try harness.requester.nextReply(timeout: 30), "no first chunk")
        return harness
    }

    /// The stopped worker handed its request back unanswered: counted, and
    /// waiting in the queue for the next worker.
    private func expectHandedBack(_ harness: IntegrationHarness) throws {
        #expect(harness.worker.status?["state"]?.stringValue == "stopped")
        #expect(harness.worker.status?["requests"]?["requeued"]?.integerValue == 1)
        #expect(try harness.waitForMessageCount(harness.queue, toBe: 1) == 1)
    }

    @Test("SIGTERM with a slow request in flight: it completes, then the worker exits 0")
    func drainCompletesInFlight() async throws {
        let harness = try await streaming("drain", words: 10)
        harness.worker.process.terminate()
        let rest = try harness.collectReplies(timeout: 30)
        #expect(rest.last?.type == "chat.completion")
        #expect(rest.last?.attempt == 1)
        #expect(harness.worker.stop() == 0)
        #expect(try harness.messageCount(harness.queue) == 0)
        _ = try await harness.shutdown()
    }

    @Test("SIGTERM with a request longer than the grace: requeued, then completed by another worker")
    func graceExceededRequeues() async throws {
        let harness = try await streaming("grace", words: 40, grace: "0.5")
        #expect(harness.worker.stop() == 0)
        try expectHandedBack(harness)

        let second = try WorkerProcess(queue: harness.queue, upstreamURL: harness.mock.baseURL)
        defer { second.stop() }
        try second.waitUntilConsuming()
        var final: ReceivedReply?
        while final == nil {
            let reply = try #require(try harness.requester.nextReply(timeout: 30), "no final from the second worker")
            if reply.isFinal && reply.attempt == 2 { final = reply }
        }
        #expect(final?.type == "chat.completion")
        _ = try await harness.shutdown()
    }

    @Test("a second SIGTERM ends a long grace at once: the request is requeued, the worker exits 0")
    func secondSignalEndsTheGrace() async throws {
        let harness = try await streaming("second-signal", words: 600, grace: "300")
        harness.worker.process.terminate()
        let draining = try await harness.worker.waitForStatus(timeout: 10) { $0["state"]?.stringValue == "draining" }
        #expect(draining?["state"]?.stringValue == "draining")
        #expect(harness.worker.process.isRunning, "the first signal must only start draining")
        harness.worker.process.terminate()
        // stop() waits for the exit (and would send SIGKILL only after 60 s).
        #expect(harness.worker.stop() == 0)
        // Had the grace (300 s) gone on, the minute-long stream would have completed and been acked.
        try expectHandedBack(harness)
        _ = try await harness.shutdown()
    }

    @Test("a request redelivered more than worker.max_deliveries times is answered and dead-lettered")
    func poisonMessage() async throws {
        // Quorum queues count deliveries (x-delivery-count); each kill -9 is one more.
        let settings = ["queue.type": "quorum", "worker.max_deliveries": "2"]
        let harness = try await IntegrationHarness.start("poison", settings: settings)
        let body = Array(
            #"{"model":"deepseek-chat","messages":[{"role":"user","content":"poison"}],"mock":{"first_byte_delay_ms":60000,"key":"poison"}}"#
                .utf8)
        try harness.requester.send(to: harness.queue, body: body, correlationID: "p")
        var worker = harness.worker
        var spare: [WorkerProcess] = []
        for call in 1...2 {
            // Wait until the worker called the upstream with this delivery, then kill it.
            let deadline = Date().addingTimeInterval(30)
            while harness.mock.requestCount(key: "poison") < call && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(harness.mock.requestCount(key: "poison") == call)
            kill(worker.process.processIdentifier, SIGKILL)
            worker.process.waitUntilExit()
            worker = try WorkerProcess(queue: harness.queue, upstreamURL: harness.mock.baseURL, settings: settings)
            spare.append(worker)
            try worker.waitUntilConsuming()
        }
        let replies = try harness.collectReplies(timeout: 30)
        let error = try #require(replies.last?.json?["error"])
        #expect(error["code"]?.stringValue == "max_deliveries_exceeded")
        #expect(replies.last?.attempt == 3)
        #expect(try harness.waitForMessageCount("\(harness.queue).dead", toBe: 1) == 1)
        #expect(harness.mock.requestCount(key: "poison") == 2)
        for process in spare { process.stop() }
        _ = try await harness.shutdown()
    }

    @Test("a burst of 10,000 malformed messages: all answered or dead-lettered, worker still serving, memory flat")
    func malformedBurst() async throws {
        let harness = try await IntegrationHarness.start("burst", settings: ["worker.max_request_bytes": "65536"])
        // Warm up, then take the baseline resident size.
        _ = try harness.exchange(json: #"{"model":"deepseek-chat","messages":[{"role":"user","content":"warm"}]}"#)
        let baseline = try residentKilobytes(harness.worker.process.processIdentifier)

        let huge = [UInt8](repeating: UInt8(ascii: "a"), count: 70_000)
        let kinds: [(body: [UInt8], replyTo: Bool)] = [
            (Array("{not json".utf8), true),
            ([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], true),  // invalid UTF-8
            (Array(#"{"model":42,"messages":[]}"#.utf8), true),
            (Array(#"{"model":"m","messages":[{"role":1}]}"#.utf8), true),
            (Array(#"[1,2,3]"#.utf8), true),
            (huge, true),
            (Array(#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}"#.utf8), true),
            (Array("{not json, no reply_to".utf8), false),
        ]
        let total = 10_000
        var expectedReplies = 0
        for index in 0..<total {
            let kind = kinds[index % kinds.count]
            if kind.replyTo {
                expectedReplies += 1
                try harness.requester.send(to: harness.queue, body: kind.body, correlationID: "m\(index)")
            } else {
                try harness.publish(kind.body, replyTo: nil)
            }
        }
        var errors = 0
        var others = 0
        while errors + others < expectedReplies {
            guard let reply = try harness.requester.nextReply(timeout: 60) else { break }
            if reply.type == "error" { errors += 1 } else { others += 1 }
        }
        #expect(errors == expectedReplies)
        #expect(others == 0)
        // Every one of them is in the dead-letter queue (invalid, or nowhere to reply).
        #expect(try harness.waitForMessageCount("\(harness.queue).dead", toBe: total, timeout: 60) == total)
        #expect(try harness.messageCount(harness.queue) == 0)

        // Still serving.
        let after = try harness.exchange(json: #"{"model":"deepseek-chat","messages":[{"role":"user","content":"still here"}]}"#)
        #expect(after.last?.type == "chat.completion")
        let grown = try residentKilobytes(harness.worker.process.processIdentifier) - baseline
        print("malformed burst: \(total) messages, worker RSS \(baseline) kB -> +\(grown) kB")
        #expect(grown < 16 * 1024, "worker RSS grew by \(grown) kB over the burst")
        #expect(try await harness.shutdown() == 0)
    }

    /// VmRSS of a process, in kB.
    private func residentKilobytes(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let value = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { throw TestFailure("no VmRSS for \(pid)") }
        return value
    }
}
