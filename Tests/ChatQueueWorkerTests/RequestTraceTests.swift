import ChatQueueCore
import Logging
import Testing

@testable import ChatQueueWorker

@Suite("Tracing: a request's trace, its spans and its summary line")
struct RequestTraceTests {
    static let incoming = TraceContext.parse(
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".utf8, tracestate: "rojo=1".utf8)!

    static func ending(final: String = "chat.completion", error: String? = nil) -> RequestTrace.Ending {
        RequestTrace.Ending(
            queue: "chat.requests", routingKey: "chat.requests", requestID: "r-1", correlationID: "c-1", attempt: 2,
            model: "deepseek-chat", finalType: final, errorCode: error, usage: TokenUsage(prompt: 10, completion: 25),
            endMonotonic: 5_000_000_000)
    }

    @Test("with a traceparent: the worker's span is a child of the requester's; with none, only when start_traces is on, as a sampled root")
    func begin() throws {
        var ids = TraceIDGenerator(seed: (1, 2, 3, 4))
        let child = try #require(
            RequestTrace.begin(Self.incoming, startTraces: false, ids: &ids, nowUnixNanoseconds: 7, nowMonotonic: 1))
        #expect(child.parentSpanID == Self.incoming.spanID)
        #expect(child.spanID != Self.incoming.spanID && child.spanID.isValid)
        #expect(child.replyTraceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(child.spanID.hex)-01")
        #expect(child.upstreamHeaderLines(span: SpanID(0xAB)) == [
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000ab-01", "tracestate: rojo=1",
        ])

        #expect(RequestTrace.begin(nil, startTraces: false, ids: &ids, nowUnixNanoseconds: 7, nowMonotonic: 1) == nil)
        let root = try #require(RequestTrace.begin(nil, startTraces: true, ids: &ids, nowUnixNanoseconds: 7, nowMonotonic: 1))
        #expect(root.parentSpanID == nil)
        #expect(root.incoming.traceID.isValid && root.incoming.isSampled)
        #expect(root.upstreamHeaderLines(span: SpanID(1)).count == 1, "no tracestate on a new trace")
    }

    @Test("spans: the request (consumer, process <queue>) with the messaging and GenAI attributes, each try a client child span on the wall clock")
    func spans() throws {
        var ids = TraceIDGenerator(seed: (5, 6, 7, 8))
        var trace = try #require(
            RequestTrace.begin(
                Self.incoming, startTraces: false, ids: &ids, nowUnixNanoseconds: 1_000_000_000_000,
                nowMonotonic: 1_000_000_000))
        trace.tries = [
            RequestTrace.Try(
                spanID: SpanID(11), upstream: "primary", startMonotonic: 1_100_000_000, endMonotonic: 1_500_000_000,
                firstDataMonotonic: nil, failure: "http_503"),
            RequestTrace.Try(
                spanID: SpanID(12), upstream: "backup", startMonotonic: 2_000_000_000, endMonotonic: 4_000_000_000,
                firstDataMonotonic: 2_300_000_000, failure: nil),
        ]
        let spans = trace.finishedSpans(Self.ending())
        #expect(spans.count == 3)
        let request = spans[0]
        #expect(request.name == "process chat.requests")
        #expect(request.kind == .consumer)
        #expect(request.traceID == Self.incoming.traceID)
        #expect(request.parentSpanID == Self.incoming.spanID)
        #expect(request.traceState == "rojo=1")
        #expect(request.startUnixNanoseconds == 1_000_000_000_000)
        #expect(request.endUnixNanoseconds == 1_004_000_000_000)
        #expect(request.status == .ok)
        let attributes = Dictionary(uniqueKeysWithValues: request.attributes.map { ($0.key, $0.value) })
        #expect(attributes["messaging.system"] == .string("rabbitmq"))
        #expect(attributes["messaging.rabbitmq.destination.routing_key"] == .string("chat.requests"))
        #expect(attributes["messaging.message.id"] == .string("r-1"))
        #expect(attributes["gen_ai.request.model"] == .string("deepseek-chat"))
        #expect(attributes["gen_ai.usage.input_tokens"] == .int(10))
        #expect(attributes["gen_ai.usage.output_tokens"] == .int(25))
        #expect(attributes["chatqueue.attempt"] == .int(2))
        #expect(attributes["chatqueue.upstream_tries"] == .int(2))

        #expect(spans[1].name == "chat deepseek-chat" && spans[1].kind == .client)
        #expect(spans[1].parentSpanID == request.spanID && spans[2].parentSpanID == request.spanID)
        #expect(spans[1].status == .error("http_503"))
        #expect(spans[1].startUnixNanoseconds == 1_000_100_000_000 && spans[1].endUnixNanoseconds == 1_000_500_000_000)
        #expect(spans[2].status == .ok)
        #expect(spans[2].events.map(\.name) == ["first_data"])
        #expect(spans[2].events.first?.timeUnixNanoseconds == 1_001_300_000_000)

        let failed = trace.finishedSpans(Self.ending(final: "error", error: "upstream_error"))
        #expect(failed[0].status == .error("upstream_error"))
        #expect(failed[0].attributes.contains(FinishedSpan.Attribute("error.type", .string("upstream_error"))))
    }

    @Test("the summary line's fields: ids, names, numbers and codes; optional ones only when known")
    func summary() {
        var summary = RequestSummary(
            requestID: "r-1", correlationID: "c-1", traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "b7ad6b7169203331",
            model: "deepseek-chat", upstream: "primary", finalType: "chat.completion", errorStatus: nil, errorCode: nil,
            settlement: "ack", reason: "answered", attempt: 1, tries: 2, firstChunkMilliseconds: 812.4567891,
            durationMilliseconds: 2_501.25, chunks: 31, usage: TokenUsage(prompt: 12, completion: 30))
        #expect(summary.metadata == [
            "request.id": "r-1", "correlation.id": "c-1", "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span.id": "b7ad6b7169203331", "request.model": "deepseek-chat", "upstream.name": "primary",
            "reply.type": "chat.completion", "request.settlement": "ack", "request.reason": "answered",
            "request.attempt": "1", "request.tries": "2", "request.first_chunk_ms": "812.457",
            "request.duration_ms": "2501.25", "request.chunks": "31", "usage.prompt_tokens": "12",
            "usage.completion_tokens": "30",
        ])
        summary = RequestSummary(
            requestID: "r-2", correlationID: "r-2", traceID: nil, spanID: nil, model: "", upstream: nil,
            finalType: "error", errorStatus: 400, errorCode: "invalid_json", settlement: "dead_letter",
            reason: "answered", attempt: 1, tries: 0, firstChunkMilliseconds: nil, durationMilliseconds: .nan, chunks: 0,
            usage: nil)
        #expect(summary.metadata["error.status"] == "400")
        #expect(summary.metadata["error.code"] == "invalid_json")
        #expect(summary.metadata["request.duration_ms"] == "0.0")
        #expect(summary.metadata["trace.id"] == nil && summary.metadata["upstream.name"] == nil)
        #expect(summary.metadata["request.first_chunk_ms"] == nil && summary.metadata["usage.prompt_tokens"] == nil)
    }

    @Test("log.request_summary levels map to swift-log levels; off is none")
    func levels() {
        #expect(Worker.level(of: .off) == nil)
        #expect(Worker.level(of: .info) == .info)
        #expect(Worker.level(of: .warning) == .warning)
    }
}
