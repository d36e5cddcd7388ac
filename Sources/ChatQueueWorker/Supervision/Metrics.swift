import ChatQueueCore
import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// A latency histogram with one of chatqueue's two fixed bucket sets
/// (seconds, +Inf implied): ``Buckets/seconds`` for waits and durations,
/// ``Buckets/fine`` for gaps between chunks. Pure.
public struct LatencyHistogram: Sendable, Equatable {
    public enum Buckets: Sendable, Equatable {
        /// 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300.
        case seconds
        /// 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10.
        case fine

        /// The finite upper bounds, ascending.
        public var upperBounds: [Double] {
            switch self {
            case .seconds: return [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
            case .fine: return [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
            }
        }
    }

    public let buckets: Buckets
    /// The finite upper bounds, ascending; +Inf is implied.
    public let upperBounds: [Double]

    /// Observations per bucket, not cumulative: `bucketCounts[i]` counts values
    /// in (upperBounds[i-1], upperBounds[i]]; the last element counts those above 300.
    public private(set) var bucketCounts: [UInt64]
    /// The sum of the observed values.
    public private(set) var sum: Double = 0
    /// The number of observations.
    public private(set) var count: UInt64 = 0

    public init(_ buckets: Buckets = .seconds) {
        self.buckets = buckets
        upperBounds = buckets.upperBounds
        bucketCounts = Array(repeating: 0, count: upperBounds.count + 1)
    }

    /// Records one duration; negative values count as 0, NaN is ignored.
    public mutating func observe(seconds: Double) {
        guard !seconds.isNaN else { return }
        let value = max(0, seconds)
        let bucket = upperBounds.firstIndex { value <= $0 } ?? upperBounds.count
        bucketCounts[bucket] += 1
        sum += value
        count += 1
    }

    /// Prometheus's `_bucket` values: observations <= each bound, +Inf last (== count).
    public var cumulativeCounts: [UInt64] {
        var total: UInt64 = 0
        return bucketCounts.map { count in
            total += count
            return total
        }
    }
}

/// What a requester feels, measured in the worker (docs/operations.md
/// "Metrics"): each histogram has fixed buckets and at most three label
/// values. Pure.
public struct RequestLatencies: Sendable, Equatable {
    /// How a request ended, the `outcome` label of ``duration``.
    public enum Outcome: String, Sendable, CaseIterable {
        /// Its final reply was a chat.completion.
        case completion
        /// Its final reply was an error.
        case error
        /// It settled without a final (requeued, handed back, dead-lettered unanswered, abandoned).
        case none

        var index: Int {
            switch self {
            case .completion: return 0
            case .error: return 1
            case .none: return 2
            }
        }
    }

    /// Seconds from the request's AMQP `timestamp` to its delivery (only requests that carry one).
    public var queueWait = LatencyHistogram(.seconds)
    /// Seconds from delivery to the first chunk published (streamed requests).
    public var firstChunk = LatencyHistogram(.seconds)
    /// Seconds between two chunks of one try, as published.
    public var chunkGap = LatencyHistogram(.fine)
    /// Seconds from delivery to settlement, by outcome (in `Outcome.allCases` order).
    public private(set) var durations = Array(repeating: LatencyHistogram(.seconds), count: Outcome.allCases.count)

    public init() {}

    public func duration(_ outcome: Outcome) -> LatencyHistogram { durations[outcome.index] }

    public mutating func observeDuration(seconds: Double, outcome: Outcome) {
        durations[outcome.index].observe(seconds: seconds)
    }
}

/// The numbers the metrics file shows, taken at one moment. Keep one in the
/// worker, update the parts WorkerCounters does not hold (errors by code, token
/// usage, latencies) as they happen, and refresh the rest with
/// ``update(counters:inFlight:)`` before rendering. Pure.
public struct MetricsSnapshot: Sendable, Equatable {
    /// The `instance` label on every sample.
    public var instance: String
    /// The worker's request counters, as of the last ``update(counters:inFlight:)``.
    public var counters = WorkerCounters()
    /// Requests being handled now.
    public var inFlight = 0
    /// Error replies by their `code` label (see ``errorLabel(code:)``).
    public var errorsByCode: [String: Int] = [:]
    /// Token accounting: usage and chunks without usage, per upstream and model.
    public var tokens = TokenLedger()
    /// Each upstream's tries, failures, latencies, breaker and window, in configuration order.
    public var upstreams: [UpstreamFigures] = []
    /// Queue wait, first chunk, chunk gaps and duration of requests.
    public var latencies = RequestLatencies()
    /// Span export (all zero while it is off).
    public var spans = SpanExportFigures()

    public init(instance: String) {
        self.instance = instance
    }

    /// Takes the worker's counters and the current in-flight count.
    public mutating func update(counters: WorkerCounters, inFlight: Int) {
        self.counters = counters
        self.inFlight = inFlight
    }

    /// Counts one error reply with this code (or type, when it has none).
    public mutating func recordError(code: String) {
        errorsByCode[Self.errorLabel(code: code), default: 0] += 1
    }

    /// The `code` label values: chatqueue's own error codes and error types
    /// (docs/protocol.md "Errors"). Codes an upstream makes up are `other`,
    /// so a misbehaving upstream can't add label values (time series) without end.
    public static let errorLabels: Set<String> = [
        // codes
        "invalid_json", "invalid_field", "unsupported_content_type", "request_too_large", "max_deliveries_exceeded",
        "model_not_found", "connection_failed", "bad_response", "response_too_large", "empty_stream",
        "stream_interrupted", "connect_timeout", "first_byte_timeout", "idle_timeout", "request_timeout",
        "deadline_exceeded",
        // the requester cancelled (type and code)
        "cancelled",
        // types, for errors without a code
        "invalid_request_error", "authentication_error", "payment_required", "permission_error", "not_found_error",
        "rate_limit_error", "upstream_error", "timeout_error", "server_error",
    ]

    /// `code` when it is one of ``errorLabels``, else `other`.
    public static func errorLabel(code: String) -> String {
        errorLabels.contains(code) ? code : "other"
    }
}

/// The Prometheus text exposition format (version 0.0.4) of a ``MetricsSnapshot``:
/// `# HELP` and `# TYPE` per family, then its samples, every sample labelled
/// `instance`. Pure.
public enum PrometheusText {
    public static func render(_ snapshot: MetricsSnapshot) -> String {
        var output = ""
        let instance = "instance=\"" + escapedLabelValue(snapshot.instance) + "\""

        func family(_ name: String, _ type: String, _ help: String) {
            output += "# HELP \(name) \(escapedHelp(help))\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, _ labels: [(String, String)] = [], _ value: String) {
            var labelText = instance
            for (label, labelValue) in labels { labelText += ",\(label)=\"\(escapedLabelValue(labelValue))\"" }
            output += "\(name){\(labelText)} \(value)\n"
        }
        func counter(_ name: String, _ help: String, _ value: Int) {
            family(name, "counter", help)
            sample(name, [], String(value))
        }
        func histogram(_ name: String, _ labels: [(String, String)], _ histogram: LatencyHistogram) {
            let cumulative = histogram.cumulativeCounts
            for (index, bound) in histogram.upperBounds.enumerated() {
                sample(name + "_bucket", labels + [("le", number(bound))], String(cumulative[index]))
            }
            sample(name + "_bucket", labels + [("le", "+Inf")], String(histogram.count))
            sample(name + "_sum", labels, number(histogram.sum))
            sample(name + "_count", labels, String(histogram.count))
        }

        family("chatqueue_requests_total", "counter", "Requests finished, by outcome.")
        for (outcome, value) in [
            ("succeeded", snapshot.counters.succeeded), ("failed", snapshot.counters.failed), ("rejected", snapshot.counters.rejected),
            ("requeued", snapshot.counters.requeued),
        ] {
            sample("chatqueue_requests_total", [("outcome", outcome)], String(value))
        }
        family("chatqueue_errors_total", "counter", "Error replies, by error code.")
        for (code, value) in snapshot.errorsByCode.sorted(by: { $0.key < $1.key }) {
            sample("chatqueue_errors_total", [("code", code)], String(value))
        }
        counter("chatqueue_upstream_retries_total", "HTTP retries made to the upstream.", snapshot.counters.retried)
        counter("chatqueue_redeliveries_total", "Deliveries that were redeliveries.", snapshot.counters.redelivered)
        counter("chatqueue_chunks_published_total", "Chunks forwarded to requesters.", snapshot.counters.chunksPublished)
        counter(
            "chatqueue_unroutable_replies_total", "Replies the broker could not route.", snapshot.counters.unroutableReplies)
        counter(
            "chatqueue_final_republishes_total", "Final replies published again after the broker refused them.",
            snapshot.counters.finalsRepublished)
        counter(
            "chatqueue_final_refused_total",
            "Deliveries dead-lettered because the broker refused their final reply every time.",
            snapshot.counters.finalsRefused)
        counter(
            "chatqueue_broker_reconnects_total", "Broker connections re-established after a loss.",
            snapshot.counters.reconnects)
        counter(
            "chatqueue_publisher_replacements_total", "Publisher connections replaced after the broker refused a final.",
            snapshot.counters.publisherReplacements)
        counter(
            "chatqueue_broker_connect_failures_total", "Attempts to connect to the broker that failed.",
            snapshot.counters.brokerConnectFailures)
        counter(
            "chatqueue_upstream_degradations_total", "Times no route had an upstream up, so the worker degraded.",
            snapshot.counters.degradations)
        counter(
            "chatqueue_requests_held_total",
            "Requests handed back to the queue unanswered because no upstream of their route was up.",
            snapshot.counters.held)
        counter(
            "chatqueue_upstream_probes_total", "Requests taken one at a time while degraded, to probe the upstream.",
            snapshot.counters.upstreamProbes)
        family("chatqueue_requests_in_flight", "gauge", "Requests being handled now.")
        sample("chatqueue_requests_in_flight", [], String(snapshot.inFlight))
        // Token accounting: one sample per upstream, model (bounded) and kind or ending.
        let accounts = snapshot.tokens.sorted
        family(
            "chatqueue_usage_tokens_total", "counter", "Tokens the upstream reported in usage, by upstream, model and kind.")
        for (key, account) in accounts {
            for (kind, value) in [("prompt", account.promptTokens), ("completion", account.completionTokens)] {
                sample(
                    "chatqueue_usage_tokens_total", [("upstream", key.upstream), ("model", key.model), ("kind", kind)],
                    String(value))
            }
        }
        family(
            "chatqueue_chunks_without_usage_total", "counter",
            "Chunks forwarded by upstream tries that reported no usage, by upstream, model and how the try ended.")
        for (key, account) in accounts {
            for ending in TryEnding.allCases {
                sample(
                    "chatqueue_chunks_without_usage_total",
                    [("upstream", key.upstream), ("model", key.model), ("ending", ending.rawValue)],
                    String(account.chunksWithoutUsage[ending] ?? 0))
            }
        }
        // Per upstream (issue 12): the label's values are the configured names.
        family(
            "chatqueue_upstream_first_chunk_seconds", "histogram",
            "Seconds from sending a try upstream to its first chunk, by upstream.")
        for upstream in snapshot.upstreams {
            histogram("chatqueue_upstream_first_chunk_seconds", [("upstream", upstream.name)], upstream.firstChunk)
        }
        family(
            "chatqueue_upstream_duration_seconds", "histogram", "Seconds from sending a try upstream to its last byte, by upstream.")
        for upstream in snapshot.upstreams {
            histogram("chatqueue_upstream_duration_seconds", [("upstream", upstream.name)], upstream.duration)
        }
        func perUpstream(_ name: String, _ type: String, _ help: String, _ value: (UpstreamFigures) -> Int) {
            family(name, type, help)
            for upstream in snapshot.upstreams { sample(name, [("upstream", upstream.name)], String(value(upstream))) }
        }
        perUpstream("chatqueue_upstream_tries_total", "counter", "HTTP tries started, by upstream.") { $0.tries }
        family(
            "chatqueue_upstream_failures_total", "counter",
            "Failed HTTP tries, by upstream and code (http_<status>, or connection_failed, first_byte_timeout, ...).")
        for upstream in snapshot.upstreams {
            for (code, value) in upstream.failures.sorted(by: { $0.key < $1.key }) {
                sample("chatqueue_upstream_failures_total", [("upstream", upstream.name), ("code", code)], String(value))
            }
        }
        family(
            "chatqueue_upstream_breaker_state", "gauge", "1 for the state each upstream's circuit breaker is in, else 0.")
        for upstream in snapshot.upstreams {
            for state in ["closed", "open", "half_open"] {
                sample(
                    "chatqueue_upstream_breaker_state", [("upstream", upstream.name), ("state", state)],
                    upstream.breakerState == state ? "1" : "0")
            }
        }
        perUpstream(
            "chatqueue_upstream_breaker_openings_total", "counter", "Times each upstream's circuit breaker opened."
        ) { $0.breakerOpenings }
        perUpstream("chatqueue_upstream_window", "gauge", "Tries each upstream may take at once (its AIMD window).") {
            $0.window
        }
        perUpstream(
            "chatqueue_upstream_window_decreases_total", "counter",
            "Times each upstream's window narrowed on an overload (429, 503, rate-limit headers at zero)."
        ) { $0.windowDecreases }
        perUpstream("chatqueue_upstream_in_flight", "gauge", "Tries running now, by upstream.") { $0.inFlight }
        // What requesters feel (issue 15).
        let latencies = snapshot.latencies
        family(
            "chatqueue_request_queue_wait_seconds", "histogram",
            "Seconds from a request's AMQP timestamp property to its delivery (requests that set one).")
        histogram("chatqueue_request_queue_wait_seconds", [], latencies.queueWait)
        family(
            "chatqueue_request_first_chunk_seconds", "histogram",
            "Seconds from a streamed request's delivery to its first chunk published.")
        histogram("chatqueue_request_first_chunk_seconds", [], latencies.firstChunk)
        family("chatqueue_chunk_gap_seconds", "histogram", "Seconds between two chunks of one try, as published.")
        histogram("chatqueue_chunk_gap_seconds", [], latencies.chunkGap)
        family(
            "chatqueue_request_duration_seconds", "histogram",
            "Seconds from a request's delivery to its settlement, by outcome (completion, error, none).")
        for outcome in RequestLatencies.Outcome.allCases {
            histogram(
                "chatqueue_request_duration_seconds", [("outcome", outcome.rawValue)],
                latencies.duration(outcome))
        }
        // Cancellation and abandoned requests (issue 11).
        counter(
            "chatqueue_requests_cancelled_total", "Requests answered cancelled because their requester cancelled them.",
            snapshot.counters.cancelled)
        counter(
            "chatqueue_requests_abandoned_total",
            "Requests acked unanswered because their reply queue was gone (a reply came back unroutable).",
            snapshot.counters.abandoned)
        counter(
            "chatqueue_cancels_received_total", "Messages taken from the worker's cancel queue.",
            snapshot.counters.cancelsReceived)
        counter(
            "chatqueue_cancels_malformed_total", "Cancel messages dropped as malformed.",
            snapshot.counters.cancelsMalformed)
        counter(
            "chatqueue_cancels_remembered_total",
            "Cancels remembered (held here or not), in case the request arrives, or arrives again, later.",
            snapshot.counters.cancelsRemembered)
        // Span export (issue 15): zero while tracing.otlp_endpoint is not set.
        counter(
            "chatqueue_spans_exported_total", "Spans an OTLP collector accepted.", snapshot.spans.exported)
        family(
            "chatqueue_spans_dropped_total", "counter",
            "Spans not exported, by reason: queue_full (tracing.max_queued_spans held), export_failed (the collector failed or refused).")
        sample("chatqueue_spans_dropped_total", [("reason", "queue_full")], String(snapshot.spans.droppedQueueFull))
        sample("chatqueue_spans_dropped_total", [("reason", "export_failed")], String(snapshot.spans.droppedExportFailed))
        return output
    }

    /// A float as Prometheus reads it: `0.05`, `1`, `2.5`, `+Inf`, `NaN`.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// A label value with `\`, `"` and newlines escaped.
    static func escapedLabelValue(_ text: String) -> String {
        escaped(text, quotes: true)
    }

    /// HELP text with `\` and newlines escaped (a `"` stays as it is there).
    static func escapedHelp(_ text: String) -> String {
        escaped(text, quotes: false)
    }

    private static func escaped(_ text: String, quotes: Bool) -> String {
        var result = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": result += "\\\\"
            case "\"" where quotes: result += "\\\""
            case "\n": result += "\\n"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }
}

/// Writes the metrics for node_exporter's textfile collector: the Prometheus
/// text, atomically (same temporary file and rename as the status file, so
/// the collector, which reads only `*.prom`, never sees a partial file).
public final class MetricsTextfileWriter {
    /// The `.prom` file.
    public let path: String

    /// Throws (EINVAL) unless the file name ends in `.prom`, the only files
    /// the textfile collector reads.
    public init(path: String) throws(SystemError) {
        let name = path.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
        guard name.hasSuffix(".prom"), name.count > ".prom".count else {
            throw SystemError(call: "metrics textfile \(path)", errno: EINVAL, detail: "the name must end in .prom")
        }
        self.path = path
    }

    /// Replaces the file's content with `snapshot` rendered by ``PrometheusText``.
    public func write(_ snapshot: MetricsSnapshot) throws(SystemError) {
        try FileIO.replace(path, with: Array(PrometheusText.render(snapshot).utf8))
    }
}
