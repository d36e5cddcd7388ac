import ChatQueueCore

/// A traced request's place in its trace (W3C trace context): the worker's
/// span for the request (a child of the requester's span, or the root of a
/// trace the worker started) and, when spans are exported, what each
/// upstream try did. The ids go upstream and onto every reply as
/// `traceparent`/`tracestate`; untraced requests have none of this.
struct RequestTrace {
    /// The trace id, the requester's span (the parent) and the flags and tracestate to pass on.
    let incoming: TraceContext
    /// nil when the worker started the trace (no valid traceparent came with the request).
    let parentSpanID: SpanID?
    /// The worker's span for this request.
    let spanID: SpanID
    /// Wall-clock and monotonic time of the delivery, to place later monotonic times on the wall clock.
    let startUnixNanoseconds: UInt64
    let startMonotonic: UInt64
    /// `traceparent` on replies: this trace, the worker's span as the parent.
    let replyTraceparent: String
    /// The routing key the request was published with (recorded only when spans are exported).
    var routingKey = ""
    /// The upstream tries, each a child span (recorded only when spans are exported).
    var tries: [Try] = []
    /// Things that happened to the request (retries, first chunk, final), when spans are exported.
    var events: [FinishedSpan.Event] = []

    /// One upstream try: a child span of the request's.
    struct Try {
        var spanID: SpanID
        var upstream: String
        var startMonotonic: UInt64
        var endMonotonic: UInt64?
        var firstDataMonotonic: UInt64?
        /// `http_<status>` or a failure code; nil while running or when it succeeded.
        var failure: String?
    }

    /// The trace of a request that brings `context` (a parsed traceparent), or
    /// a new one when it brings none and `startTraces` is on; nil: not traced.
    static func begin(
        _ context: TraceContext?, startTraces: Bool, ids: inout TraceIDGenerator, nowUnixNanoseconds: UInt64,
        nowMonotonic: UInt64
    ) -> RequestTrace? {
        let incoming: TraceContext
        let parent: SpanID?
        if let context {
            incoming = context
            parent = context.spanID
        } else if startTraces {
            // A new trace, sampled: the worker decided to trace it.
            incoming = TraceContext(traceID: .random(using: &ids), spanID: SpanID(0), flags: 1)
            parent = nil
        } else {
            return nil
        }
        let span = SpanID.random(using: &ids)
        return RequestTrace(
            incoming: incoming, parentSpanID: parent, spanID: span, startUnixNanoseconds: nowUnixNanoseconds,
            startMonotonic: nowMonotonic, replyTraceparent: incoming.traceparent(span: span))
    }

    /// The headers for an upstream try that is the child span `span`.
    func upstreamHeaderLines(span: SpanID) -> [String] {
        var lines = ["traceparent: " + incoming.traceparent(span: span)]
        if let state = incoming.state { lines.append("tracestate: " + state) }
        return lines
    }

    /// `monotonic` as Unix nanoseconds (saturating).
    func unixNanoseconds(_ monotonic: UInt64) -> UInt64 {
        let elapsed = monotonic >= startMonotonic ? monotonic - startMonotonic : 0
        let (sum, overflow) = startUnixNanoseconds.addingReportingOverflow(elapsed)
        return overflow ? .max : sum
    }
}

extension RequestTrace {
    /// What the request span says about its end.
    struct Ending {
        /// The queue it was consumed from and the routing key it was published with.
        var queue: String
        var routingKey: String
        var requestID: String
        var correlationID: String
        var attempt: Int
        var model: String
        /// `chat.completion`, `error` or `none`.
        var finalType: String
        /// The error reply's code, if it was one.
        var errorCode: String?
        /// The final was confirmed (else the request was handed back, dead-lettered or lost).
        var answered = true
        var usage: TokenUsage?
        var endMonotonic: UInt64
    }

    /// The request's span (kind consumer, "process <queue>", OpenTelemetry
    /// messaging and GenAI attributes) and one client span per upstream try
    /// ("chat <model>"), for export.
    func finishedSpans(_ ending: Ending) -> [FinishedSpan] {
        typealias Attribute = FinishedSpan.Attribute
        var attributes: [Attribute] = [
            Attribute("messaging.system", .string("rabbitmq")),
            Attribute("messaging.operation.type", .string("process")),
            Attribute("messaging.destination.name", .string(ending.queue)),
            Attribute("messaging.rabbitmq.destination.routing_key", .string(ending.routingKey)),
            Attribute("messaging.message.id", .string(ending.requestID)),
            Attribute("messaging.message.conversation_id", .string(ending.correlationID)),
            Attribute("gen_ai.operation.name", .string("chat")),
            Attribute("chatqueue.attempt", .int(Int64(ending.attempt))),
            Attribute("chatqueue.final_type", .string(ending.finalType)),
            Attribute("chatqueue.upstream_tries", .int(Int64(tries.count))),
        ]
        if !ending.model.isEmpty { attributes.append(Attribute("gen_ai.request.model", .string(ending.model))) }
        if let usage = ending.usage {
            attributes.append(Attribute("gen_ai.usage.input_tokens", .int(Int64(usage.prompt))))
            attributes.append(Attribute("gen_ai.usage.output_tokens", .int(Int64(usage.completion))))
        }
        if let code = ending.errorCode { attributes.append(Attribute("error.type", .string(code))) }
        let status: FinishedSpan.Status =
            !ending.answered ? .unset : ending.finalType == "chat.completion" ? .ok : ending.errorCode.map { .error($0) } ?? .unset
        var spans = [
            FinishedSpan(
                name: "process " + ending.queue, kind: .consumer, traceID: incoming.traceID, spanID: spanID,
                parentSpanID: parentSpanID, traceState: incoming.state, startUnixNanoseconds: startUnixNanoseconds,
                endUnixNanoseconds: unixNanoseconds(ending.endMonotonic), status: status, attributes: attributes,
                events: events)
        ]
        for attempt in tries {
            var tryAttributes: [Attribute] = [
                Attribute("gen_ai.operation.name", .string("chat")),
                Attribute("chatqueue.upstream.name", .string(attempt.upstream)),
            ]
            if !ending.model.isEmpty { tryAttributes.append(Attribute("gen_ai.request.model", .string(ending.model))) }
            if let failure = attempt.failure { tryAttributes.append(Attribute("error.type", .string(failure))) }
            var tryEvents: [FinishedSpan.Event] = []
            if let first = attempt.firstDataMonotonic {
                tryEvents.append(FinishedSpan.Event(name: "first_data", timeUnixNanoseconds: unixNanoseconds(first)))
            }
            spans.append(
                FinishedSpan(
                    name: ending.model.isEmpty ? "chat" : "chat " + ending.model, kind: .client,
                    traceID: incoming.traceID, spanID: attempt.spanID, parentSpanID: spanID,
                    traceState: incoming.state, startUnixNanoseconds: unixNanoseconds(attempt.startMonotonic),
                    endUnixNanoseconds: unixNanoseconds(attempt.endMonotonic ?? ending.endMonotonic),
                    status: attempt.failure.map { .error($0) } ?? .ok, attributes: tryAttributes, events: tryEvents))
        }
        return spans
    }
}
