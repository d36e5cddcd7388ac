import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// Requesters in control (issue 11): cancel messages on the cancel exchange,
/// requesters that vanish mid-stream, and requester deadlines, with a real
/// broker, real worker processes and the mock upstream, which records when a
/// client closed a response it was still writing.
@Suite("Cancellation: cancel by request id, the requester gone, deadlines")
struct CancellationTests {
    /// A harness whose worker uses a cancel exchange of its own.
    static func start(_ label: String, settings: [String: String] = [:]) async throws -> (IntegrationHarness, String) {
        let exchange = IntegrationEnvironment.uniqueQueueName("\(label).cancel")
        var settings = settings
        settings["queue.cancel_exchange"] = exchange
        return (try await IntegrationHarness.start(label, settings: settings), exchange)
    }

    static func deleteExchange(_ exchange: String) {
        guard let connection = try? AMQPConnection(options: IntegrationEnvironment.brokerOptions(name: "test cleanup"))
        else { return }
        try? connection.deleteExchange(exchange)
        connection.close()
    }

    /// A slow stream: `words` chunks 50 ms apart (10 s at 200).
    static func slowStream(_ text: String, words: Int = 200) -> [UInt8] {
        Array(chatRequest(text, stream: true, mock: #"{"words":\#(words),"interval_ms":50}"#).utf8)
    }

    /// Replies until `count` chunks arrived (fails on a final before that).
    static func chunks(_ count: Int, from requester: Requester, timeout: Double = 10) throws -> [ReceivedReply] {
        var replies: [ReceivedReply] = []
        let deadline = Date().addingTimeInterval(timeout)
        while replies.count < count {
            guard let reply = try requester.nextReply(timeout: max(0.01, deadline.timeIntervalSinceNow)) else {
                throw TestFailure("\(replies.count) of \(count) chunks within \(timeout) s")
            }
            guard !reply.isFinal else { throw TestFailure("a final before \(count) chunks: \(reply.text)") }
            replies.append(reply)
        }
        return replies
    }

    /// Waits until the mock saw `count` responses closed by the client; returns their times.
    static func clientAborts(_ mock: MockUpstream, count: Int, timeout: Double = 10) async throws -> [UInt64] {
        let deadline = Date().addingTimeInterval(timeout)
        while mock.clientAborts().count < count && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        return mock.clientAborts()
    }

    static func milliseconds(from start: UInt64, to end: UInt64) -> String {
        String(format: "%.1f ms", Double(Int64(bitPattern: end &- start)) / 1e6)
    }

    static func cancels(_ status: JSONValue?, _ key: String) -> Int? { status?["cancels"]?[key]?.integerValue }

    @Test("a cancel mid-stream: the chunks already sent, then exactly one cancelled final; the upstream connection closes")
    func cancelMidStream() async throws {
        let (harness, exchange) = try await Self.start("cancelmid")
        defer { Self.deleteExchange(exchange) }
        try harness.requester.send(to: harness.queue, body: Self.slowStream("cancel me"), messageID: "req-mid")
        let early = try Self.chunks(3, from: harness.requester)
        let cancelledAt = DispatchTime.now().uptimeNanoseconds
        try harness.requester.cancel(requestID: "req-mid", exchange: exchange)
        let rest = try harness.collectReplies()
        let replies = early + rest
        let final = try #require(replies.last)
        #expect(final.type == "error")
        #expect(final.json?["error"]?["code"]?.stringValue == "cancelled")
        #expect(final.json?["error"]?["type"]?.stringValue == "cancelled")
        #expect(final.json?["status"]?.integerValue == 499)
        #expect(final.json?["retryable"] == .bool(false))
        #expect(final.requestID == "req-mid")
        #expect(replies.dropLast().allSatisfy { $0.type == "chat.completion.chunk" })
        #expect(replies.map(\.seq) == (0..<Int64(replies.count)).map { $0 }, "x-seq 0, 1, 2, ... with the final last")
        #expect(replies.count < 200, "the stream was stopped, not run to its end")
        #expect(try harness.extraReply(within: 0.5) == nil, "exactly one final")

        let aborts = try await Self.clientAborts(harness.mock, count: 1)
        #expect(aborts.count == 1, "the upstream saw the connection closed")
        if let closedAt = aborts.first {
            print("cancel mid-stream: cancel published -> upstream connection closed: \(Self.milliseconds(from: cancelledAt, to: closedAt))")
        }
        let status = try await harness.worker.waitForStatus(timeout: 5) {
            Self.cancels($0, "requests_cancelled") == 1 && $0["requests"]?["in_flight"]?.integerValue == 0
        }
        #expect(Self.cancels(status, "requests_cancelled") == 1)
        #expect(Self.cancels(status, "received") == 1)
        #expect(status?["requests"]?["failed"]?.integerValue == 0, "a cancel is not a failure")
        #expect(harness.worker.metric("chatqueue_errors_total", #"code="cancelled""#) == 1)
        #expect(try harness.messageCount(harness.queue) == 0, "acked")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a cancel that arrives before its request: answered cancelled, the upstream never called")
    func cancelBeforeDelivery() async throws {
        let (harness, exchange) = try await Self.start("cancelearly")
        defer { Self.deleteExchange(exchange) }
        try harness.requester.cancel(requestID: "req-early", exchange: exchange)
        let remembered = try await harness.worker.waitForStatus(timeout: 5) { Self.cancels($0, "remembered") == 1 }
        #expect(Self.cancels(remembered, "remembered") == 1)

        let replies = try harness.exchange(
            Array(chatRequest("too late", stream: true, mock: #"{"key":"early"}"#).utf8), messageID: "req-early")
        #expect(replies.map(\.type) == ["error"])
        #expect(replies.first?.json?["error"]?["code"]?.stringValue == "cancelled")
        #expect(replies.first?.json?["attempts"]?.integerValue == 0)
        #expect(harness.mock.requestCount(key: "early") == 0, "the upstream was called")
        #expect(harness.mock.recordedRequests().isEmpty)
        // Other requests are untouched.
        let other = try harness.exchange(Array(chatRequest("another").utf8), messageID: "req-other")
        #expect(other.map(\.type) == ["chat.completion"])
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a cancel after the final, and one of an id nobody sent, change nothing")
    func cancelAfterFinalAndUnknown() async throws {
        let (harness, exchange) = try await Self.start("cancellate")
        defer { Self.deleteExchange(exchange) }
        let replies = try harness.exchange(Array(chatRequest("answered").utf8), messageID: "req-done")
        #expect(replies.map(\.type) == ["chat.completion"])
        try harness.requester.cancel(requestID: "req-done", exchange: exchange)
        try harness.requester.cancel(requestID: "req-nobody-sent", exchange: exchange)
        let status = try await harness.worker.waitForStatus(timeout: 5) { Self.cancels($0, "received") == 2 }
        #expect(Self.cancels(status, "received") == 2)
        #expect(Self.cancels(status, "requests_cancelled") == 0)
        #expect(Self.cancels(status, "malformed") == 0)
        #expect(try harness.extraReply(within: 0.5) == nil, "a second final")
        let next = try harness.exchange(Array(chatRequest("still serving").utf8), messageID: "req-next")
        #expect(next.map(\.type) == ["chat.completion"])
        #expect(try await harness.shutdown() == 0)
    }

    @Test("the requester gone mid-stream: the upstream transfer stops, the request is acked and counted abandoned")
    func requesterGoneMidStream() async throws {
        let (harness, exchange) = try await Self.start("requestergone")
        defer { Self.deleteExchange(exchange) }
        let vanishing = try Requester(options: IntegrationEnvironment.brokerOptions(name: "test vanishing requester"))
        defer { vanishing.connection.close() }
        try vanishing.send(to: harness.queue, body: Self.slowStream("nobody listens"), messageID: "req-gone")
        _ = try Self.chunks(3, from: vanishing)
        let deletedAt = DispatchTime.now().uptimeNanoseconds
        try vanishing.connection.deleteQueue(vanishing.replyTo)

        let aborts = try await Self.clientAborts(harness.mock, count: 1)
        #expect(aborts.count == 1, "the upstream stream kept running")
        if let closedAt = aborts.first {
            print("requester gone: reply queue deleted -> upstream connection closed: \(Self.milliseconds(from: deletedAt, to: closedAt))")
        }
        let status = try await harness.worker.waitForStatus(timeout: 5) {
            Self.cancels($0, "requests_abandoned") == 1 && $0["requests"]?["in_flight"]?.integerValue == 0
        }
        #expect(Self.cancels(status, "requests_abandoned") == 1)
        #expect(status?["requests"]?["in_flight"]?.integerValue == 0, "settled")
        #expect(status?["requests"]?["failed"]?.integerValue == 0)
        #expect((status?["requests"]?["unroutable_replies"]?.integerValue ?? 0) >= 1)
        #expect(try harness.messageCount(harness.queue) == 0)
        #expect(harness.worker.metric("chatqueue_requests_abandoned_total") == 1)
        // A second stream for a live requester runs to its end.
        let replies = try harness.exchange(Array(chatRequest("still here", stream: true, mock: #"{"words":3}"#).utf8))
        #expect(replies.last?.type == "chat.completion")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a request resent with the same id to a new reply queue is not abandoned when the old queue goes")
    func resentRequestSurvivesOldQueue() async throws {
        let (harness, exchange) = try await Self.start("resent")
        defer { Self.deleteExchange(exchange) }
        // The requester's first connection: its request streams, then its reply queue goes.
        let first = try Requester(options: IntegrationEnvironment.brokerOptions(name: "test first requester"))
        defer { first.connection.close() }
        try first.send(to: harness.queue, body: Self.slowStream("first", words: 200), messageID: "req-resent")
        _ = try Self.chunks(2, from: first)
        // The same request, same id (same attempt number), sent again to a new reply queue.
        try harness.requester.send(
            to: harness.queue, body: Self.slowStream("again", words: 40), messageID: "req-resent")
        _ = try Self.chunks(2, from: harness.requester)
        try first.connection.deleteQueue(first.replyTo)

        let status = try await harness.worker.waitForStatus(timeout: 10) { Self.cancels($0, "requests_abandoned") == 1 }
        #expect(Self.cancels(status, "requests_abandoned") == 1, "the first delivery is abandoned")
        let rest = try harness.collectReplies(timeout: 20)
        #expect(rest.last?.type == "chat.completion", "the resent request runs to its end: \(rest.last?.text ?? "")")
        let final = try await harness.worker.waitForStatus(timeout: 5) { $0["requests"]?["in_flight"]?.integerValue == 0 }
        #expect(Self.cancels(final, "requests_abandoned") == 1)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("10,000 malformed cancels are counted and dropped; the worker answers as before, its memory flat")
    func malformedStorm() async throws {
        let (harness, exchange) = try await Self.start("cancelstorm")
        defer { Self.deleteExchange(exchange) }
        let pid = harness.worker.process.processIdentifier
        let before = Self.residentKilobytes(pid)
        let oversized = Array(#"{"request_id":"x","pad":""#.utf8) + [UInt8](repeating: 0x61, count: 5000) + Array(#""}"#.utf8)
        let bodies: [(body: [UInt8], contentType: String?)] = [
            (Array("not json".utf8), "application/json"), (Array("[]".utf8), "application/json"),
            (Array(#"{"request_id":7}"#.utf8), "application/json"), (Array(#"{"request_id":""}"#.utf8), nil),
            (Array(#"{"id":"x"}"#.utf8), "application/json"), (Array(#"{"request_id":"x"}"#.utf8), "text/plain"),
            (Array(#"{"request_id":"\#(String(repeating: "y", count: 300))"}"#.utf8), nil), (oversized, nil),
            ([0xFF, 0xFE, 0x00], nil), (Array(String(repeating: "[", count: 4000).utf8), nil),
        ]
        for index in 0..<10_000 {
            let (body, contentType) = bodies[index % bodies.count]
            try harness.requester.connection.publish(
                exchange: exchange, routingKey: "", mandatory: false,
                properties: AMQPOutgoingProperties(contentType: contentType), body: body)
        }
        let status = try await harness.worker.waitForStatus(timeout: 60) { Self.cancels($0, "malformed") == 10_000 }
        #expect(Self.cancels(status, "malformed") == 10_000)
        #expect(Self.cancels(status, "received") == 10_000)
        #expect(Self.cancels(status, "remembered") == 0)
        let replies = try harness.exchange(Array(chatRequest("after the storm").utf8))
        #expect(replies.map(\.type) == ["chat.completion"])
        let after = Self.residentKilobytes(pid)
        print("malformed cancel storm: worker RSS \(before.map(String.init) ?? "?") kB before, \(after.map(String.init) ?? "?") kB after 10,000")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("two workers on one queue: the cancel reaches the one holding the request; both remember it (a redelivery is cancelled too)")
    func twoWorkers() async throws {
        let (harness, exchange) = try await Self.start("canceltwo", settings: ["worker.concurrency": "1"])
        defer { Self.deleteExchange(exchange) }
        let second = try WorkerProcess(
            queue: harness.queue, upstreamURL: harness.mock.baseURL,
            settings: ["queue.cancel_exchange": exchange, "worker.concurrency": "1"])
        defer { second.stop() }
        try second.waitUntilConsuming()
        // Two slow streams: with a prefetch of 1 each worker holds one.
        try harness.requester.send(to: harness.queue, body: Self.slowStream("first"), messageID: "req-a")
        try harness.requester.send(to: harness.queue, body: Self.slowStream("second"), messageID: "req-b")
        var chunksBy: [String: Int] = [:]
        while chunksBy["req-a", default: 0] < 2 || chunksBy["req-b", default: 0] < 2 {
            guard let reply = try harness.requester.nextReply(timeout: 10), !reply.isFinal else {
                throw TestFailure("both streams did not start: \(chunksBy)")
            }
            chunksBy[reply.requestID ?? "?", default: 0] += 1
        }
        try harness.requester.cancel(requestID: "req-b", exchange: exchange)
        var finals: [String: ReceivedReply] = [:]
        while finals["req-b"] == nil, let reply = try harness.requester.nextReply(timeout: 15) {
            if reply.isFinal { finals[reply.requestID ?? "?"] = reply }
        }
        #expect(finals["req-b"]?.json?["error"]?["code"]?.stringValue == "cancelled")
        #expect(finals["req-a"] == nil, "the other stream goes on")
        let workers = [harness.worker, second]
        for worker in workers {
            _ = try await worker.waitForStatus(timeout: 5) { Self.cancels($0, "received") == 1 }
        }
        let statuses = workers.map(\.status)
        #expect(statuses.map { Self.cancels($0, "received") } == [1, 1], "the fanout reaches every worker")
        #expect(statuses.compactMap { Self.cancels($0, "requests_cancelled") }.reduce(0, +) == 1)
        #expect(statuses.compactMap { Self.cancels($0, "remembered") }.reduce(0, +) == 2)
        #expect(second.stop() == 0)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("x-deadline-ms before the upstream's Retry-After: answered at once, the upstream not called again")
    func deadlineBeforeRetry() async throws {
        let (harness, exchange) = try await Self.start("canceldeadline")
        defer { Self.deleteExchange(exchange) }
        let body = Array(chatRequest("hurry", mock: #"{"fail_first":1,"key":"hurry","retry_after":"3"}"#).utf8)
        let replies = try harness.exchange(body, headers: [("x-deadline-ms", .int(unixMilliseconds() + 1500))])
        #expect(replies.map(\.type) == ["error"])
        #expect(replies.first?.json?["attempts"]?.integerValue == 1)
        try await Task.sleep(for: .seconds(2))
        #expect(harness.mock.requestCount(key: "hurry") == 1, "the upstream was called again")
        #expect(try await harness.shutdown() == 0)
    }

    /// VmRSS of a process in kB, from /proc/<pid>/status.
    static func residentKilobytes(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "")
        }
        return nil
    }
}
