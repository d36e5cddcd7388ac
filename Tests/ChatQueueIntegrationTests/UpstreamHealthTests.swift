import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// Several upstreams, when they fail (docs/operations.md "Several upstreams"):
/// circuit breakers, account faults in reply and hold mode, real workers and
/// mock upstreams on their own ports. Asserted through replies, the mocks'
/// request counts and the status file, never timing.
@Suite("Several upstreams: circuit breakers and account faults", .serialized)
struct UpstreamHealthTests {
    /// The status file's entry for upstream `name`.
    static func upstream(_ status: JSONValue?, _ name: String) -> JSONValue? {
        status?["upstreams"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }

    @Test("a breaker opens after failures in a row, lets one probe through after its cooldown, and closes when it works")
    func breakerCycle() async throws {
        let harness = try await IntegrationHarness.start(
            "breaker",
            settings: [
                "upstream.breaker_failures": "2", "upstream.breaker_cooldown": "1", "retry.base_delay": "0.01",
                "retry.max_attempts": "4",
            ])
        let key = "breaker-\(UUID().uuidString)"
        // Two 503s in a row open the breaker; the request waits in the worker
        // (no error reply), the worker degrades, and the probe after the
        // cooldown is the request's third try, which works.
        let replies = try harness.exchange(
            json: chatRequest(mock: #"{"fail_first":2,"fail_status":503,"key":"\#(key)"}"#), timeout: 30)
        #expect(replies.last?.type == "chat.completion", "\(replies.last?.text ?? "")")
        #expect(harness.mock.requestCount(key: key) == 3)
        let status = try await harness.worker.waitForStatus(timeout: 10) {
            Self.upstream($0, "default")?["breaker_openings"]?.integerValue == 1 && $0["state"]?.stringValue == "running"
        }
        let entry = Self.upstream(status, "default")
        #expect(entry?["breaker"]?.stringValue == "closed")
        #expect(entry?["breaker_openings"]?.integerValue == 1)
        #expect(entry?["failures"]?["http_503"]?.integerValue == 2)
        #expect(entry?["tries"]?.integerValue == 3)
        #expect(status?["upstream"]?["degradations"]?.integerValue == 1, "one route, its only upstream open: degraded")
        #expect(status?["state"]?.stringValue == "running", "the probe worked: taking requests again")
        #expect(harness.worker.metric("chatqueue_upstream_breaker_openings_total", #"upstream="default""#) == 1)
        // And it serves as before.
        #expect(try harness.exchange(json: chatRequest()).last?.type == "chat.completion")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("reply mode: a 402 upstream gives way to the next of the route on every request; no reply is a 402")
    func replyModeFallsOver() async throws {
        let broke = try await MockUpstream.start(Self.failing(402))
        let healthy = try await MockUpstream.start(MockUpstreamOptions())
        let harness = try await IntegrationHarness.start(
            "acctreply",
            settings: [
                "upstreams.names": "broke,healthy", "upstreams.broke.url": broke.baseURL,
                "upstreams.healthy.url": healthy.baseURL, "upstreams.routes": "* -> broke healthy",
                "retry.max_attempts": "1",
            ])
        for index in 0..<4 {
            let replies = try harness.exchange(json: chatRequest("r\(index)"))
            #expect(replies.last?.type == "chat.completion", "\(replies.last?.text ?? "")")
        }
        // Reply mode keeps no hold: each request tried the 402 upstream first.
        #expect(broke.recordedRequests().count == 4)
        #expect(healthy.recordedRequests().count == 4)
        let status = try await harness.worker.waitForStatus(timeout: 10) {
            Self.upstream($0, "broke")?["failures"]?["http_402"]?.integerValue == 4
        }
        #expect(Self.upstream(status, "broke")?["breaker"]?.stringValue == "closed")
        #expect(try await harness.shutdown() == 0)
        try await broke.shutdown()
        try await healthy.shutdown()
    }

    @Test("hold mode with another upstream: the 402 upstream's breaker opens with the reason; the rest go straight to the other")
    func holdModeSkipsBrokeUpstream() async throws {
        let broke = try await MockUpstream.start(Self.failing(402))
        let healthy = try await MockUpstream.start(MockUpstreamOptions())
        let harness = try await IntegrationHarness.start(
            "acctholdskip",
            settings: [
                "upstreams.names": "broke,healthy", "upstreams.broke.url": broke.baseURL,
                "upstreams.healthy.url": healthy.baseURL, "upstreams.routes": "* -> broke healthy",
                "upstream.on_account_error": "hold", "upstream.hold_probe_interval": "600",
            ])
        for index in 0..<4 {
            let replies = try harness.exchange(json: chatRequest("r\(index)"))
            #expect(replies.last?.type == "chat.completion", "\(replies.last?.text ?? "")")
        }
        #expect(broke.recordedRequests().count == 1, "held open: no more tries until its probe")
        #expect(healthy.recordedRequests().count == 4)
        let status = try await harness.worker.waitForStatus(timeout: 10) {
            Self.upstream($0, "broke")?["breaker"]?.stringValue == "open"
        }
        let entry = Self.upstream(status, "broke")
        #expect(entry?["breaker_reason"]?.stringValue == "payment_required")
        #expect(entry?["probe_at"]?.stringValue != nil)
        #expect(status?["state"]?.stringValue == "running", "the route has another upstream up")
        #expect(status?["upstream"]?["last_error"]?.stringValue == "broke: payment_required")
        #expect(try await harness.shutdown() == 0)
        try await broke.shutdown()
        try await healthy.shutdown()
    }

    /// Replies to `count` requests sent at once, each list up to its final, by correlation id.
    static func exchangeAll(_ harness: IntegrationHarness, _ bodies: [String], timeout: Double = 60) throws
        -> [String: [ReceivedReply]]
    {
        for (index, body) in bodies.enumerated() {
            try harness.requester.send(to: harness.queue, body: Array(body.utf8), correlationID: "c\(index)")
        }
        var replies: [String: [ReceivedReply]] = [:]
        var finals = 0
        let deadline = Date().addingTimeInterval(timeout)
        while finals < bodies.count {
            let left = deadline.timeIntervalSinceNow
            guard left > 0, let reply = try harness.requester.nextReply(timeout: left) else {
                throw TestFailure("\(finals) of \(bodies.count) finals within \(timeout) s; worker log:\n\(harness.worker.log)")
            }
            replies[reply.correlationID ?? "", default: []].append(reply)
            if reply.isFinal { finals += 1 }
        }
        return replies
    }

    @Test("four upstreams (healthy, failing, rate-limited, out of balance): each route ends in completions, and each upstream's breaker and window show why")
    func fourUpstreams() async throws {
        let healthy = try await MockUpstream.start(MockUpstreamOptions())
        let failing = try await MockUpstream.start(Self.failing(503))
        var limitedOptions = MockUpstreamOptions()
        limitedOptions.maxConcurrentRequests = 1
        limitedOptions.latency = .milliseconds(100)
        let limited = try await MockUpstream.start(limitedOptions)
        let broke = try await MockUpstream.start(Self.failing(402))
        let harness = try await IntegrationHarness.start(
            "fourupstreams",
            settings: [
                "upstreams.names": "healthy,failing,limited,broke",
                "upstreams.healthy.url": healthy.baseURL, "upstreams.failing.url": failing.baseURL,
                "upstreams.limited.url": limited.baseURL, "upstreams.broke.url": broke.baseURL,
                "upstreams.broke.on_account_error": "hold", "upstream.hold_probe_interval": "600",
                "upstream.breaker_failures": "2", "upstream.breaker_cooldown": "600",
                "upstreams.routes": "acct-* -> broke healthy,fail-* -> failing healthy,limited-* -> limited,* -> healthy",
                "retry.max_attempts": "30", "retry.base_delay": "0.05", "worker.concurrency": "8",
            ])
        // Out of balance: the first request's 402 holds that upstream; every request is answered by the other.
        for index in 0..<3 {
            let replies = try harness.exchange(json: chatRequest("a\(index)", model: "acct-model"))
            #expect(replies.last?.type == "chat.completion", "\(replies.last?.text ?? "")")
        }
        #expect(broke.recordedRequests().count == 1)
        // Failing: two 503s in a row open its breaker; later requests go straight to the healthy one.
        for index in 0..<4 {
            let replies = try harness.exchange(json: chatRequest("f\(index)", model: "fail-model", stream: true))
            #expect(replies.last?.type == "chat.completion", "\(replies.last?.text ?? "")")
        }
        #expect(failing.recordedRequests().count == 2)
        // Rate-limited (one at a time): eight at once; the 429s narrow its window, all are answered.
        let limitedReplies = try Self.exchangeAll(
            harness, (0..<8).map { chatRequest("l\($0)", model: "limited-model") }, timeout: 120)
        #expect(limitedReplies.count == 8)
        #expect(limitedReplies.values.allSatisfy { $0.last?.type == "chat.completion" })
        #expect(limited.statistics().answers(429) >= 1)
        #expect(limited.statistics().peakInProgress == 1)
        // Anything else: the healthy one.
        #expect(try harness.exchange(json: chatRequest(model: "other")).last?.type == "chat.completion")

        let status = try await harness.worker.waitForStatus(timeout: 10) {
            Self.upstream($0, "limited")?["window_decreases"]?.integerValue ?? 0 >= 1
                && Self.upstream($0, "failing")?["breaker"]?.stringValue == "open"
                && Self.upstream($0, "broke")?["breaker"]?.stringValue == "open"
        }
        #expect(Self.upstream(status, "broke")?["breaker_reason"]?.stringValue == "payment_required")
        #expect(Self.upstream(status, "failing")?["breaker_reason"]?.stringValue == "failures")
        #expect(Self.upstream(status, "failing")?["failures"]?["http_503"]?.integerValue == 2)
        #expect(Self.upstream(status, "limited")?["breaker"]?.stringValue == "closed", "429s narrow the window, not the breaker")
        #expect((Self.upstream(status, "limited")?["window_decreases"]?.integerValue ?? 0) >= 1)
        #expect((Self.upstream(status, "limited")?["window"]?.integerValue ?? 8) < 8)
        #expect(Self.upstream(status, "healthy")?["breaker"]?.stringValue == "closed")
        #expect(status?["state"]?.stringValue == "running")
        #expect(
            harness.worker.metric("chatqueue_upstream_breaker_state", #"upstream="failing",state="open""#) == 1)
        #expect((harness.worker.metric("chatqueue_upstream_failures_total", #"upstream="limited",code="http_429""#) ?? 0) >= 1)
        #expect(try await harness.shutdown() == 0)
        for mock in [healthy, failing, limited, broke] { try await mock.shutdown() }
    }

    @Test("hold: a 402 holds the queue without an error reply, and the worker resumes on its own once the upstream is switched back")
    func holdAndResume() async throws {
        var options = Self.failing(402)
        options.requireAPIKey = nil
        let harness = try await IntegrationHarness.start(
            "acctholdresume", mockOptions: options,
            settings: ["upstream.on_account_error": "hold", "upstream.hold_probe_interval": "0.5"])
        for index in 0..<5 {
            try harness.requester.send(
                to: harness.queue, body: Array(chatRequest("h\(index)").utf8), correlationID: "h\(index)")
        }
        // Held: degraded, the breaker open for the account, nothing answered.
        let held = try await harness.worker.waitForStatus(timeout: 20) {
            $0["state"]?.stringValue == "degraded"
                && Self.upstream($0, "default")?["breaker_reason"]?.stringValue == "payment_required"
                && Self.upstream($0, "default")?["breaker_openings"]?.integerValue ?? 0 >= 2
        }
        #expect(held?["state"]?.stringValue == "degraded", "\(harness.worker.log)")
        #expect(held?["upstream"]?["last_error"]?.stringValue == "payment_required")
        #expect(harness.mock.statistics().answers(402) >= 2, "probed again after the first 402")
        #expect(try harness.extraReply(within: 0.5) == nil, "no reply while held")
        // Top-up: the next probe works and everything is answered with a completion.
        harness.mock.setFailEveryRequest(nil)
        var finals: [String: ReceivedReply] = [:]
        let deadline = Date().addingTimeInterval(60)
        while finals.count < 5, Date() < deadline {
            guard let reply = try harness.requester.nextReply(timeout: deadline.timeIntervalSinceNow) else { break }
            #expect(reply.type != "error", "\(reply.text)")
            if reply.isFinal { finals[reply.correlationID ?? ""] = reply }
        }
        #expect(finals.count == 5)
        #expect(finals.values.allSatisfy { $0.type == "chat.completion" })
        let resumed = try await harness.worker.waitForStatus(timeout: 10) { $0["state"]?.stringValue == "running" }
        #expect(resumed?["state"]?.stringValue == "running")
        #expect(Self.upstream(resumed, "default")?["breaker"]?.stringValue == "closed")
        #expect(resumed?["requests"]?["failed"]?.integerValue == 0)
        #expect(try await harness.shutdown() == 0)
    }

    static func failing(_ status: Int) -> MockUpstreamOptions {
        var options = MockUpstreamOptions()
        options.failEveryRequest = status
        return options
    }
}
