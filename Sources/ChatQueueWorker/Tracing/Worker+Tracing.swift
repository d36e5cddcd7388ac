import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore
import ChatQueueSystem
import Logging

/// Trace context, the request's latencies and the summary line: what the
/// worker records about a request for operators (issue 15). Untraced
/// requests cost a nil check here; the summary line costs nothing when its
/// level is filtered out.
extension Worker {
    // MARK: - Trace context

    /// Reads the request's `traceparent`/`tracestate` headers (invalid ones
    /// are ignored) or starts a trace when `tracing.start_traces` is on, and
    /// puts the worker's span on the reply address.
    func beginTrace(of request: InFlightRequest, headers: [String: AMQPFieldValue], now: Deadline) {
        var incoming: TraceContext?
        if case .string(let traceparent) = headers["traceparent"] {
            var tracestate: String?
            if case .string(let state) = headers["tracestate"] { tracestate = state }
            incoming = TraceContext.parse(traceparent: traceparent.utf8, tracestate: tracestate?.utf8)
        }
        guard incoming != nil || settings.tracing.startTraces else { return }
        guard
            let trace = RequestTrace.begin(
                incoming, startTraces: settings.tracing.startTraces, ids: &traceIDs,
                nowUnixNanoseconds: WallClock.unixNanoseconds(), nowMonotonic: now.nanoseconds)
        else { return }
        request.trace = trace
        request.address.traceparent = trace.replyTraceparent
        request.address.tracestate = trace.incoming.state
    }

    /// A traced try starts: its child span's id; returns the headers that carry it upstream.
    func traceTryStarted(_ request: InFlightRequest, upstream: UpstreamClient, now: Deadline) -> [String] {
        guard var trace = request.trace else { return [] }
        let span = SpanID.random(using: &traceIDs)
        if exportsSpans {
            if !trace.tries.isEmpty {
                trace.events.append(
                    FinishedSpan.Event(
                        name: "retry", timeUnixNanoseconds: trace.unixNanoseconds(now.nanoseconds),
                        attributes: [.init("chatqueue.upstream_try", .int(Int64(trace.tries.count + 1)))]))
            }
            trace.tries.append(
                RequestTrace.Try(spanID: span, upstream: upstream.name, startMonotonic: now.nanoseconds))
        }
        let lines = trace.upstreamHeaderLines(span: span)
        request.trace = trace
        return lines
    }

    /// A traced try ended (`failure`: its label, nil when it answered).
    func traceTryEnded(_ request: InFlightRequest, failure: String?, now: UInt64) {
        guard exportsSpans, var trace = request.trace, let last = trace.tries.indices.last,
            trace.tries[last].endMonotonic == nil
        else { return }
        trace.tries[last].endMonotonic = now
        trace.tries[last].failure = failure
        trace.tries[last].firstDataMonotonic = request.firstProgressAt
        request.trace = trace
    }

    /// The final reply went out: an event on the request's span.
    func traceFinalPublished(_ request: InFlightRequest) {
        guard exportsSpans, var trace = request.trace else { return }
        var attributes = [FinishedSpan.Attribute("chatqueue.reply.type", .string(request.finalType))]
        if let error = request.finalError { attributes.append(.init("error.type", .string(error.code ?? error.type))) }
        trace.events.append(
            FinishedSpan.Event(
                name: "final", timeUnixNanoseconds: trace.unixNanoseconds(MonotonicClock.now()), attributes: attributes))
        request.trace = trace
    }

    /// Whether finished spans go anywhere (`tracing.otlp_endpoint`).
    var exportsSpans: Bool { spanExporter != nil }

    // MARK: - Latencies

    /// A chunk was published: time to the first chunk, or the gap since the last.
    func chunkPublished(_ request: InFlightRequest) {
        let now = MonotonicClock.now()
        if request.firstChunkAt == nil {
            request.firstChunkAt = now
            supervisor.metrics.latencies.firstChunk.observe(seconds: Double(now &- request.receivedAt) / 1e9)
            if exportsSpans, var trace = request.trace {
                trace.events.append(FinishedSpan.Event(name: "first_chunk", timeUnixNanoseconds: trace.unixNanoseconds(now)))
                request.trace = trace
            }
        } else {
            supervisor.metrics.latencies.chunkGap.observe(seconds: Double(now &- request.lastChunkAt) / 1e9)
        }
        request.lastChunkAt = now
        request.chunksPublished += 1
    }

    // MARK: - The end

    /// The request is done (settled, or forgotten with its connection): its
    /// duration, its summary line and, when traced and exported, its spans.
    /// `settlement` nil: the connection went and the broker requeues it.
    func requestEnded(
        _ request: InFlightRequest, settlement: RequestStateMachine.Settlement?, reason: RequestStateMachine.SettleReason?
    ) {
        let now = MonotonicClock.now()
        let duration = Double(now &- request.receivedAt) / 1e9
        let answered = reason == .answered
        let outcome: RequestLatencies.Outcome =
            !answered ? .none : request.finalType == ReplyKind.completion.rawValue ? .completion : .error
        supervisor.metrics.latencies.observeDuration(seconds: duration, outcome: outcome)
        if let level = requestSummaryLevel, logger.logLevel <= level {
            logger.log(
                level: level, RequestSummary.message,
                metadata: summary(of: request, settlement: settlement, reason: reason, duration: duration).metadata)
        }
        if let exporter = spanExporter, let trace = request.trace, trace.incoming.isSampled {
            let ending = RequestTrace.Ending(
                queue: settings.queue.name, routingKey: trace.routingKey, requestID: request.metadata.requestID,
                correlationID: request.metadata.correlationID, attempt: request.metadata.attempt,
                model: TextExcerpt.make(request.model.utf8, limit: 128), finalType: request.finalType,
                errorCode: request.finalError.map { $0.code ?? $0.type }, answered: answered, usage: request.usage,
                endMonotonic: now)
            for span in trace.finishedSpans(ending) { exporter.record(span) }
        }
    }

    func summary(
        of request: InFlightRequest, settlement: RequestStateMachine.Settlement?,
        reason: RequestStateMachine.SettleReason?, duration: Double
    ) -> RequestSummary {
        RequestSummary(
            requestID: request.metadata.requestID, correlationID: request.metadata.correlationID,
            traceID: request.trace?.incoming.traceID.hex, spanID: request.trace?.spanID.hex,
            model: TextExcerpt.make(request.model.utf8, limit: 128),
            upstream: request.machine.tries > 0 ? request.upstream.name : nil,
            finalType: request.finalType, errorStatus: request.finalError?.status,
            errorCode: request.finalError.map { $0.code ?? $0.type },
            settlement: settlement.map(Self.settlementName) ?? "lost", reason: reason.map(Self.reasonName) ?? "connection_lost",
            attempt: request.metadata.attempt, tries: request.machine.tries,
            firstChunkMilliseconds: request.firstChunkAt.map { Double($0 &- request.receivedAt) / 1e6 },
            durationMilliseconds: duration * 1000, chunks: request.chunksPublished, usage: request.usage)
    }

    static func settlementName(_ settlement: RequestStateMachine.Settlement) -> String {
        switch settlement {
        case .ack: return "ack"
        case .deadLetter: return "dead_letter"
        case .requeue: return "requeue"
        }
    }

    static func reasonName(_ reason: RequestStateMachine.SettleReason) -> String {
        switch reason {
        case .answered: return "answered"
        case .unanswerable: return "unanswerable"
        case .finalRefused: return "final_refused"
        case .draining: return "draining"
        case .shutdown: return "shutdown"
        case .abandoned: return "abandoned"
        case .held: return "held"
        }
    }
}

extension InFlightRequest {
    /// Adds a try's reported usage to the request's.
    func addUsage(_ tryUsage: TokenUsage) {
        let total = usage ?? TokenUsage(prompt: 0, completion: 0)
        let (prompt, promptOverflow) = total.prompt.addingReportingOverflow(tryUsage.prompt)
        let (completion, completionOverflow) = total.completion.addingReportingOverflow(tryUsage.completion)
        usage = TokenUsage(
            prompt: promptOverflow ? .max : prompt, completion: completionOverflow ? .max : completion)
    }
}

extension Worker {
    /// `log.request_summary` as a swift-log level; nil: off.
    static func level(of setting: RequestSummaryLevel) -> Logger.Level? {
        switch setting {
        case .off: return nil
        case .trace: return .trace
        case .debug: return .debug
        case .info: return .info
        case .notice: return .notice
        case .warning: return .warning
        }
    }
}
