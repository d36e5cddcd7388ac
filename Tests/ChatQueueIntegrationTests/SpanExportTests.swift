import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// A real worker with span export on: its exporter's lifecycle and figures
/// (the spans themselves are built per request in `Worker+Requests.swift`).
@Suite("Span export: a worker with tracing.otlp_endpoint")
struct SpanExportTests {
    @Test("collector down (a closed port): requests are answered, the status and metrics show export on, exit is clean")
    func collectorDown() async throws {
        let closed = try await MockUpstream.start(MockUpstreamOptions())
        let closedURL = closed.baseURL
        try await closed.shutdown()
        let harness = try await IntegrationHarness.start(
            "otlp-down",
            settings: ["tracing.otlp_endpoint": closedURL, "tracing.start_traces": "true", "tracing.export_interval": "0.05"])
        for index in 0..<5 {
            let replies = try harness.exchange(json: chatRequest("span \(index)"), correlationID: "s\(index)")
            #expect(replies.last?.type == "chat.completion")
        }
        let status = try await harness.worker.waitForStatus(timeout: 10) { $0["tracing"]?["export"] == true }
        #expect(status?["tracing"]?["export"] == true)
        #expect(status?["tracing"]?["spans_exported"] == 0)
        #expect(harness.worker.metric("chatqueue_spans_exported_total") == 0)
        #expect(harness.worker.metric("chatqueue_spans_dropped_total", #"reason="queue_full""#) == 0)
        #expect(harness.worker.metric("chatqueue_spans_dropped_total", #"reason="export_failed""#) != nil)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("export off (the default): the status says so and the span metrics stay 0")
    func exportOff() async throws {
        let harness = try await IntegrationHarness.start("otlp-off")
        let replies = try harness.exchange(json: chatRequest("no spans"))
        #expect(replies.last?.type == "chat.completion")
        let status = try await harness.worker.waitForStatus(timeout: 10) { $0["requests"]?["succeeded"] == 1 }
        #expect(status?["tracing"]?["export"] == false)
        #expect(harness.worker.metric("chatqueue_spans_exported_total") == 0)
        #expect(harness.worker.metric("chatqueue_spans_dropped_total", #"reason="export_failed""#) == 0)
        #expect(try await harness.shutdown() == 0)
    }
}
