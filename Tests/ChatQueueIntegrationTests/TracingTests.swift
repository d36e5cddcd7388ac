import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// Issue 15 with real RabbitMQ and workers: W3C trace context from the
/// request to the upstream and back on the replies, the one summary line per
/// request, and the request latency histograms.
@Suite("Tracing: trace context, the summary line, request latencies")
struct TracingTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let requesterSpan = "00f067aa0ba902b7"
    static let traceparent = "00-\(traceID)-\(requesterSpan)-01"

    /// The worker's JSON log lines with the summary message.
    static func summaries(_ worker: WorkerProcess) -> [JSONValue] {
        worker.log.split(separator: "\n").compactMap { line in
            guard let value = try? JSONValue(parsing: Array(line.utf8)), value["msg"]?.stringValue == "request done"
            else { return nil }
            return value
        }
    }

    /// Waits for `count` summary lines (they follow the final's confirm).
    static func waitForSummaries(_ worker: WorkerProcess, count: Int) async throws -> [JSONValue] {
        let deadline = Date().addingTimeInterval(10)
        while summaries(worker).count < count && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return summaries(worker)
    }

    static func field(_ line: JSONValue, _ key: String) -> String? {
        line["metadata"]?[key]?.stringValue ?? line[key]?.stringValue
    }

    @Test("a traceparent reaches the upstream as a child (same trace, new span, parent = the requester's) and comes back on every reply with the worker's span; the tracestate too; logs carry trace.id and span.id")
    func propagation() async throws {
        let harness = try await IntegrationHarness.start("traceprop", settings: ["log.format": "json"])
        let body = Array(chatRequest("trace me", stream: true, mock: #"{"words":3}"#).utf8)
        let replies = try harness.exchange(
            body, messageID: "traced-1",
            headers: [("traceparent", .string(Self.traceparent)), ("tracestate", .string("rojo=00f067aa0ba902b7"))])
        #expect(replies.last?.type == "chat.completion")
        #expect(replies.count >= 4, "3 words streamed")

        let upstreamTrace = try #require(harness.mock.recordedRequests().last?.header("traceparent"))
        let upstream = try #require(TraceContext.parse(traceparent: upstreamTrace.utf8, tracestate: nil as [UInt8]?))
        #expect(upstream.traceID.hex == Self.traceID)
        #expect(upstream.spanID.hex != Self.requesterSpan)
        #expect(upstream.flags == 1)
        #expect(harness.mock.recordedRequests().last?.header("tracestate") == "rojo=00f067aa0ba902b7")

        var workerSpans: Set<String> = []
        for reply in replies {
            let header = try #require(reply.headers["traceparent"]?.stringValue, "a reply without traceparent")
            let context = try #require(TraceContext.parse(traceparent: header.utf8, tracestate: nil as [UInt8]?))
            #expect(context.traceID.hex == Self.traceID)
            workerSpans.insert(context.spanID.hex)
            #expect(reply.headers["tracestate"]?.stringValue == "rojo=00f067aa0ba902b7")
        }
        #expect(workerSpans.count == 1, "one worker span for the request")
        let workerSpan = try #require(workerSpans.first)
        #expect(workerSpan != Self.requesterSpan && workerSpan != upstream.spanID.hex)

        let lines = try await Self.waitForSummaries(harness.worker, count: 1)
        let line = try #require(lines.first)
        #expect(Self.field(line, "trace.id") == Self.traceID)
        #expect(Self.field(line, "span.id") == workerSpan)
        #expect(try await harness.shutdown() == 0)
    }

    @Test(
        "a malformed traceparent is dropped: nothing goes upstream or on the replies",
        arguments: [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero span id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // version 00 with more
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  // short
            "\u{0}\n; rm -rf /",
        ])
    func malformed(traceparent: String) async throws {
        let harness = try await IntegrationHarness.start("tracebad")
        let replies = try harness.exchange(
            Array(chatRequest("x").utf8), headers: [("traceparent", .string(traceparent)), ("tracestate", .string("a=b"))])
        #expect(replies.last?.type == "chat.completion")
        #expect(harness.mock.recordedRequests().last?.header("traceparent") == nil)
        #expect(harness.mock.recordedRequests().last?.header("tracestate") == nil)
        #expect(replies.allSatisfy { $0.headers["traceparent"] == nil && $0.headers["tracestate"] == nil })
        #expect(try await harness.shutdown() == 0)
    }

    @Test("without a traceparent nothing is traced, unless tracing.start_traces is on: then a new sampled trace, with the worker's span as its root")
    func startTraces() async throws {
        let off = try await IntegrationHarness.start("tracenone")
        let plain = try off.exchange(json: chatRequest("x"))
        #expect(plain.last?.headers["traceparent"] == nil)
        #expect(off.mock.recordedRequests().last?.header("traceparent") == nil)
        #expect(try await off.shutdown() == 0)

        let on = try await IntegrationHarness.start("tracestart", settings: ["tracing.start_traces": "true"])
        let replies = try on.exchange(json: chatRequest("x"))
        let reply = try #require(replies.last?.headers["traceparent"]?.stringValue)
        let upstream = try #require(on.mock.recordedRequests().last?.header("traceparent"))
        let replyContext = try #require(TraceContext.parse(traceparent: reply.utf8, tracestate: nil as [UInt8]?))
        let upstreamContext = try #require(TraceContext.parse(traceparent: upstream.utf8, tracestate: nil as [UInt8]?))
        #expect(replyContext.traceID == upstreamContext.traceID)
        #expect(replyContext.spanID != upstreamContext.spanID)
        #expect(replyContext.isSampled)
        #expect(try await on.shutdown() == 0)
    }

    /// Every span the mock, as collector, received so far.
    static func exportedSpans(_ mock: MockUpstream) -> [JSONValue] {
        mock.receivedTraces().compactMap { try? JSONValue(parsing: $0) }.flatMap { request -> [JSONValue] in
            (request["resourceSpans"]?.arrayValue ?? []).flatMap { resource in
                (resource["scopeSpans"]?.arrayValue ?? []).flatMap { $0["spans"]?.arrayValue ?? [] }
            }
        }
    }

    static func attribute(_ span: JSONValue, _ key: String) -> JSONValue? {
        span["attributes"]?.arrayValue?.first { $0["key"]?.stringValue == key }?["value"]
    }

    @Test("with an OTLP endpoint, a traced request's spans reach the collector: the request's span a child of the requester's, each try a child of it with the id the upstream saw, the GenAI and messaging attributes; an untraced request exports nothing")
    func spansExported() async throws {
        // A second mock is the collector stand-in.
        let collector = try await MockUpstream.start(MockUpstreamOptions())
        let harness = try await IntegrationHarness.start(
            "tracespans", settings: ["tracing.otlp_endpoint": collector.baseURL, "tracing.export_interval": "0.1"])
        let (mock, worker, queue) = (harness.mock, harness.worker, harness.queue)

        // First try 503, then an answer: two try spans. And one untraced request.
        let key = "spans-\(UUID().uuidString)"
        let traced = try harness.exchange(
            Array(chatRequest("trace", stream: true, mock: #"{"words":3,"fail_first":1,"key":"\#(key)"}"#).utf8),
            messageID: "spans-1", headers: [("traceparent", .string(Self.traceparent))])
        #expect(traced.last?.type == "chat.completion")
        #expect(try harness.exchange(json: chatRequest("plain")).last?.type == "chat.completion")

        let deadline = Date().addingTimeInterval(15)
        var spans = Self.exportedSpans(collector)
        while spans.count < 3 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            spans = Self.exportedSpans(collector)
        }
        #expect(spans.count == 3, "the request and its two tries; nothing for the untraced request")
        let request = try #require(spans.first { $0["name"]?.stringValue == "process \(queue)" })
        #expect(request["traceId"]?.stringValue == Self.traceID)
        #expect(request["parentSpanId"]?.stringValue == Self.requesterSpan)
        #expect(request["kind"]?.integerValue == 5, "SPAN_KIND_CONSUMER")
        #expect(Self.attribute(request, "messaging.system")?["stringValue"]?.stringValue == "rabbitmq")
        #expect(Self.attribute(request, "messaging.message.id")?["stringValue"]?.stringValue == "spans-1")
        #expect(Self.attribute(request, "gen_ai.request.model")?["stringValue"]?.stringValue == "deepseek-chat")
        #expect(Self.attribute(request, "gen_ai.usage.output_tokens")?["intValue"] != nil)
        let events = request["events"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(events.contains("retry") && events.contains("first_chunk") && events.contains("final"))

        let tries = spans.filter { $0["kind"]?.integerValue == 3 }
        #expect(tries.count == 2, "SPAN_KIND_CLIENT, one per try")
        #expect(tries.allSatisfy { $0["parentSpanId"] == request["spanId"] && $0["traceId"]?.stringValue == Self.traceID })
        #expect(tries.allSatisfy { $0["name"]?.stringValue == "chat deepseek-chat" })
        // The ids the upstream saw are the try spans' ids.
        let upstreamSpans = Set(
            mock.recordedRequests().compactMap { $0.header("traceparent") }.compactMap {
                TraceContext.parse(traceparent: $0.utf8, tracestate: nil as [UInt8]?)?.spanID.hex
            })
        #expect(upstreamSpans == Set(tries.compactMap { $0["spanId"]?.stringValue }))
        #expect(tries.contains { Self.attribute($0, "error.type")?["stringValue"]?.stringValue == "http_503" })
        #expect(try await worker.waitForMetric("chatqueue_spans_exported_total", atLeast: 3, timeout: 5) == 3)
        #expect(try await harness.shutdown() == 0)
        try await collector.shutdown()
    }

    @Test("one summary line per request, for a completion, an error and a cancel, with its fields and no content")
    func summaryLines() async throws {
        let exchange = IntegrationEnvironment.uniqueQueueName("tracesum.cancel")
        defer { CancellationTests.deleteExchange(exchange) }
        let harness = try await IntegrationHarness.start(
            "tracesum", settings: ["log.format": "json", "log.level": "info", "queue.cancel_exchange": exchange])
        let secret = "the-content-\(UUID().uuidString)"
        // A completion, streamed: 3 chunks and usage.
        let completion = try harness.exchange(
            Array(chatRequest(secret, stream: true, mock: #"{"words":3}"#).utf8), messageID: "sum-ok",
            headers: [("traceparent", .string(Self.traceparent))])
        #expect(completion.last?.type == "chat.completion")
        // An error: the upstream answers 400.
        let failed = try harness.exchange(
            Array(chatRequest(secret, mock: #"{"status":400}"#).utf8), messageID: "sum-error")
        #expect(failed.last?.type == "error")
        // A cancel mid-stream.
        try harness.requester.send(to: harness.queue, body: CancellationTests.slowStream(secret), messageID: "sum-cancel")
        _ = try CancellationTests.chunks(2, from: harness.requester)
        try harness.requester.cancel(requestID: "sum-cancel", exchange: exchange)
        let cancelled = try harness.collectReplies()
        #expect(cancelled.last?.json?["error"]?["code"]?.stringValue == "cancelled")

        let lines = try await Self.waitForSummaries(harness.worker, count: 3)
        #expect(lines.count == 3, "one line per request")
        func line(_ id: String) throws -> JSONValue {
            try #require(lines.first { Self.field($0, "request.id") == id }, "no summary for \(id)")
        }
        let ok = try line("sum-ok")
        #expect(ok["level"]?.stringValue == "info")
        #expect(Self.field(ok, "trace.id") == Self.traceID)
        #expect(Self.field(ok, "request.model") == "deepseek-chat")
        #expect(Self.field(ok, "upstream.name") == "default")
        #expect(Self.field(ok, "reply.type") == "chat.completion")
        #expect(Self.field(ok, "request.settlement") == "ack")
        #expect(Self.field(ok, "request.reason") == "answered")
        #expect(Self.field(ok, "request.attempt") == "1")
        #expect(Self.field(ok, "request.tries") == "1")
        #expect(Self.field(ok, "request.chunks") == String(completion.count - 1))
        #expect(Self.field(ok, "request.first_chunk_ms").flatMap(Double.init).map { $0 >= 0 } == true)
        #expect(Self.field(ok, "request.duration_ms").flatMap(Double.init).map { $0 > 0 } == true)
        #expect(Self.field(ok, "usage.completion_tokens").flatMap(Int.init).map { $0 > 0 } == true)
        #expect(Self.field(ok, "error.code") == nil)

        let error = try line("sum-error")
        #expect(Self.field(error, "trace.id") == nil)
        #expect(Self.field(error, "reply.type") == "error")
        #expect(Self.field(error, "error.status") == "400")
        #expect(Self.field(error, "error.code") != nil)
        #expect(Self.field(error, "request.chunks") == "0")
        #expect(Self.field(error, "request.first_chunk_ms") == nil)

        let cancel = try line("sum-cancel")
        #expect(Self.field(cancel, "reply.type") == "error")
        #expect(Self.field(cancel, "error.code") == "cancelled")
        #expect(Self.field(cancel, "error.status") == "499")
        #expect(Self.field(cancel, "request.chunks").flatMap(Int.init).map { $0 >= 2 } == true)

        #expect(!harness.worker.log.contains(secret), "message content in the log")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("log.request_summary=off logs no summary line")
    func summaryOff() async throws {
        let harness = try await IntegrationHarness.start(
            "tracesumoff", settings: ["log.format": "json", "log.request_summary": "off"])
        #expect(try harness.exchange(json: chatRequest("x")).last?.type == "chat.completion")
        #expect(try harness.exchange(json: chatRequest("y")).last?.type == "chat.completion")
        #expect(try await harness.shutdown() == 0)
        #expect(Self.summaries(harness.worker).isEmpty)
    }

    @Test("the latency histograms count what happened: queue wait from the timestamp property, first chunk, chunk gaps, duration by outcome")
    func latencyHistograms() async throws {
        let harness = try await IntegrationHarness.start("tracelat")
        // A timestamp 3 s ago, in seconds as AMQP says; then one in milliseconds.
        let now = UInt64(Date().timeIntervalSince1970)
        try harness.requester.send(
            to: harness.queue, body: Array(chatRequest("a", stream: true, mock: #"{"words":4}"#).utf8), timestamp: now - 3)
        let streamed = try harness.collectReplies()
        #expect(streamed.last?.type == "chat.completion")
        let chunks = streamed.count - 1
        try harness.requester.send(
            to: harness.queue, body: Array(chatRequest("b", mock: #"{"status":400}"#).utf8), timestamp: (now - 1) * 1000)
        #expect(try harness.collectReplies().last?.type == "error")
        // A timestamp far in the future tells nothing and is not counted.
        try harness.requester.send(to: harness.queue, body: Array(chatRequest("c").utf8), timestamp: now + 86_400)
        #expect(try harness.collectReplies().last?.type == "chat.completion")

        let worker = harness.worker
        #expect(try await worker.waitForMetric("chatqueue_request_duration_seconds_count", "outcome=\"completion\"", atLeast: 2, timeout: 10) == 2)
        #expect(worker.metric("chatqueue_request_duration_seconds_count", "outcome=\"error\"") == 1)
        #expect(worker.metric("chatqueue_request_duration_seconds_count", "outcome=\"none\"") == 0)
        #expect(worker.metric("chatqueue_request_queue_wait_seconds_count") == 2)
        // The seconds timestamp waited at least 2 s: it is not in the 1 s bucket.
        #expect(worker.metric("chatqueue_request_queue_wait_seconds_bucket", "le=\"1\"") == 0)
        #expect(worker.metric("chatqueue_request_queue_wait_seconds_bucket", "le=\"5\"") == 2)
        #expect(worker.metric("chatqueue_request_first_chunk_seconds_count") == 1)
        #expect(worker.metric("chatqueue_chunk_gap_seconds_count") == chunks - 1, "one gap fewer than chunks")
        #expect(try await harness.shutdown() == 0)
    }
}
