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

    static func failing(_ status: Int) -> MockUpstreamOptions {
        var options = MockUpstreamOptions()
        options.failEveryRequest = status
        return options
    }
}
