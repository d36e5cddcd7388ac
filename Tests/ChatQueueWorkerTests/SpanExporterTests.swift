import ChatQueueConfig
import ChatQueueCore
import ChatQueueMockUpstream
import Testing

@testable import ChatQueueWorker

#if canImport(Glibc)
import Glibc
#endif

/// The span exporter against the mock upstream standing in for an OTLP
/// collector (`POST /v1/traces`), against a closed port, against a collector
/// answering 503 and against one that never answers. No timing assertions:
/// waits are bounded loops that end as soon as the figures say so.
@Suite("Span exporter: OTLP/HTTP export off the loop, bounded, drops counted")
struct SpanExporterTests {
    static let resource = OTLPResource(serviceName: "chatqueue-test", serviceVersion: "0.1.0", serviceInstanceID: "t1")
    static let trace = TraceID(high: 0x0102_0304_0506_0708, low: 0x090a_0b0c_0d0e_0f10)

    static func options(
        _ endpoint: String, maxQueued: Int = 64, maxBatch: Int = 16, interval: Double = 0.01, timeout: Double = 5
    ) -> SpanExporter.Options {
        SpanExporter.Options(
            endpoint: endpoint, resource: resource, maxQueuedSpans: maxQueued, maxBatchSpans: maxBatch,
            exportInterval: interval, exportTimeout: timeout)
    }

    static func span(_ number: UInt64, parent: UInt64? = nil, name: String = "process chat.requests") -> FinishedSpan {
        FinishedSpan(
            name: name, kind: parent == nil ? .consumer : .client, traceID: trace, spanID: SpanID(number),
            parentSpanID: parent.map(SpanID.init), startUnixNanoseconds: 1_000 + number, endUnixNanoseconds: 2_000 + number,
            attributes: [
                FinishedSpan.Attribute("gen_ai.request.model", .string("deepseek-chat")),
                FinishedSpan.Attribute("gen_ai.usage.input_tokens", .int(12)),
            ])
    }

    /// Hands over on every turn of a polling loop until `done` holds (at most
    /// about 20 s, far beyond what any of these needs: a bound, not a timing check).
    static func handOver(_ exporter: SpanExporter, until done: (SpanExportFigures) -> Bool) async throws {
        for _ in 0..<2000 {
            exporter.handOver(now: .now())
            if done(exporter.figures) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The spans of every body the stand-in received, in order.
    static func receivedSpans(_ collector: MockUpstream) throws -> [JSONValue] {
        try collector.receivedTraces().flatMap { body -> [JSONValue] in
            let document = try JSONValue(parsing: body)
            return document["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?.arrayValue ?? []
        }
    }

    /// A port nothing listens on: the mock's, once it is shut down.
    static func closedPort() async throws -> Int {
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let port = mock.port
        try await mock.shutdown()
        return port
    }

    @Test("spans arrive at the collector with their names, ids, parentage, attributes and the resource")
    func spansArrive() async throws {
        let collector = try await MockUpstream.start(MockUpstreamOptions())
        let exporter = try SpanExporter(options: Self.options(collector.baseURL))
        exporter.record(Self.span(1))
        exporter.record(Self.span(2, parent: 1, name: "chat deepseek-chat"))
        exporter.record(Self.span(3, parent: 1, name: "chat deepseek-chat"))
        try await Self.handOver(exporter) { $0.exported == 3 }
        #expect(exporter.figures == SpanExportFigures(enabled: true, exported: 3))

        let spans = try Self.receivedSpans(collector)
        #expect(spans.map { $0["name"] } == ["process chat.requests", "chat deepseek-chat", "chat deepseek-chat"])
        #expect(spans.map { $0["spanId"] } == [.string(SpanID(1).hex), .string(SpanID(2).hex), .string(SpanID(3).hex)])
        #expect(spans.allSatisfy { $0["traceId"] == .string(Self.trace.hex) })
        #expect(spans[0]["parentSpanId"] == nil)
        #expect(spans[1]["parentSpanId"] == spans[0]["spanId"])
        #expect(spans[2]["parentSpanId"] == spans[0]["spanId"])
        #expect(spans[0]["kind"] == 5)
        #expect(spans[1]["kind"] == 3)
        #expect(spans[1]["attributes"]?[0] == ["key": "gen_ai.request.model", "value": ["stringValue": "deepseek-chat"]])
        #expect(spans[1]["attributes"]?[1] == ["key": "gen_ai.usage.input_tokens", "value": ["intValue": "12"]])
        let body = try JSONValue(parsing: try #require(collector.receivedTraces().first))
        #expect(
            body["resourceSpans"]?[0]?["resource"]?["attributes"]?[0]
                == ["key": "service.name", "value": ["stringValue": "chatqueue-test"]])
        #expect(exporter.shutdown(timeout: 5))
        try await collector.shutdown()
    }

    @Test("batches hold at most max_batch_spans: 10 spans with batches of 4 arrive in 3 requests")
    func batches() async throws {
        let collector = try await MockUpstream.start(MockUpstreamOptions())
        let exporter = try SpanExporter(options: Self.options(collector.baseURL, maxBatch: 4, interval: 3600))
        for number in 1...10 { exporter.record(Self.span(UInt64(number))) }
        #expect(exporter.shutdown(timeout: 10))
        #expect(collector.receivedTraces().count == 3)
        #expect(try Self.receivedSpans(collector).count == 10)
        #expect(exporter.figures.exported == 10)
        try await collector.shutdown()
    }

    @Test("collector down (a closed port): drops are counted as export_failed, nothing held grows past max_queued_spans")
    func collectorDown() async throws {
        let port = try await Self.closedPort()
        let exporter = try SpanExporter(
            options: Self.options("http://127.0.0.1:\(port)", maxQueued: 16, maxBatch: 4, timeout: 2))
        var recorded = 0
        for round in 0..<50 {
            for number in 0..<20 {
                exporter.record(Self.span(UInt64(round * 100 + number + 1)))
                recorded += 1
                #expect(exporter.batchCount <= 16)
            }
            exporter.handOver(now: .now())
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(exporter.figures.droppedQueueFull >= 50 * 4, "each round records 20 into room for at most 16")
        exporter.shutdown(timeout: 10)
        let figures = exporter.figures
        #expect(figures.exported == 0)
        #expect(figures.exportFailures >= 1)
        #expect(figures.lastError != nil)
        #expect(figures.droppedQueueFull + figures.droppedExportFailed == recorded, "every span is accounted for")
    }

    @Test("a collector answering 503: the batch is dropped and counted, nothing is retried; accepted again later")
    func collectorRefuses() async throws {
        let collector = try await MockUpstream.start(MockUpstreamOptions())
        collector.setTracesStatus(503)
        let exporter = try SpanExporter(options: Self.options(collector.baseURL))
        for number in 1...5 { exporter.record(Self.span(UInt64(number))) }
        try await Self.handOver(exporter) { $0.droppedExportFailed == 5 }
        var figures = exporter.figures
        #expect(figures.droppedExportFailed == 5)
        #expect(figures.exportFailures == 1)
        #expect(figures.lastError == "HTTP 503")
        #expect(figures.exported == 0)
        #expect(collector.receivedTraces().isEmpty)

        collector.setTracesStatus(nil)
        exporter.record(Self.span(6))
        exporter.record(Self.span(7))
        try await Self.handOver(exporter) { $0.exported == 2 }
        figures = exporter.figures
        #expect(figures.exported == 2)
        #expect(figures.droppedExportFailed == 5, "the refused spans were not sent again")
        #expect(try Self.receivedSpans(collector).map { $0["spanId"] } == [.string(SpanID(6).hex), .string(SpanID(7).hex)])
        #expect(exporter.shutdown(timeout: 5))
        try await collector.shutdown()
    }

    @Test("a collector that never answers: record and handOver return while the export hangs; the bound holds")
    func collectorHangs() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        let exporter = try SpanExporter(
            options: Self.options("http://127.0.0.1:\(listener.port)", maxQueued: 8, maxBatch: 4, timeout: 60))
        for number in 1...4 { exporter.record(Self.span(UInt64(number))) }
        try await Self.handOver(exporter) { _ in exporter.batchCount == 0 }
        #expect(exporter.batchCount == 0, "the 4 spans went to the export thread, whose POST now hangs")
        for number in 5...14 { exporter.record(Self.span(UInt64(number))) }
        #expect(exporter.batchCount == 4, "4 held by the thread leave room for 4")
        #expect(exporter.figures.droppedQueueFull == 6)
        try await Self.handOver(exporter) { _ in exporter.batchCount == 0 }
        for number in 15...17 { exporter.record(Self.span(UInt64(number))) }
        #expect(exporter.batchCount == 0, "8 held by the thread: no room")
        #expect(exporter.figures.droppedQueueFull == 9)
        #expect(exporter.figures.exported == 0)
        // The hanging POST outlives shutdown's wait; closing the listener then ends it.
        #expect(!exporter.shutdown(timeout: 0.2))
    }

    @Test("shutdown sends what was recorded even before an interval passed; later records are dropped")
    func shutdownFlushes() async throws {
        let collector = try await MockUpstream.start(MockUpstreamOptions())
        let exporter = try SpanExporter(options: Self.options(collector.baseURL, interval: 3600))
        for number in 1...3 { exporter.record(Self.span(UInt64(number))) }
        exporter.handOver(now: .now())
        #expect(exporter.batchCount == 3, "the interval is not over: nothing handed over yet")
        #expect(exporter.nextDeadline != .never, "the loop wakes for the hand-over")
        #expect(exporter.shutdown(timeout: 10))
        #expect(exporter.figures.exported == 3)
        #expect(try Self.receivedSpans(collector).count == 3)
        exporter.record(Self.span(4))
        #expect(exporter.figures.droppedQueueFull == 1)
        try await collector.shutdown()
    }

    @Test("options come from tracing.*: none without an endpoint; spans go to <endpoint>/v1/traces; a tiny interval is raised")
    func options() {
        #expect(SpanExporter.Options(settings: Settings.Tracing(), instance: "w") == nil)
        let options = SpanExporter.Options(
            settings: Settings.Tracing(
                otlpEndpoint: "http://127.0.0.1:4318", serviceName: "svc", maxQueuedSpans: 7, maxBatchSpans: 3,
                exportInterval: 0.000_001, exportTimeout: 2),
            instance: "w3", version: "9.9.9")
        #expect(options?.tracesURL == "http://127.0.0.1:4318/v1/traces")
        #expect(options?.resource == OTLPResource(serviceName: "svc", serviceVersion: "9.9.9", serviceInstanceID: "w3"))
        #expect(options?.maxQueuedSpans == 7)
        #expect(options?.maxBatchSpans == 3)
        #expect(options?.exportInterval == SpanExporter.minimumInterval)
        #expect(options?.exportTimeout == 2)
    }
}

/// A TCP socket on 127.0.0.1 that listens and never accepts: connections
/// complete in the kernel's backlog, requests are never answered.
private struct SilentListener {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        try #require(listen(descriptor, 16) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        try #require(named == 0)
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(descriptor) }
}
