import ChatQueueCore
import Testing

@testable import ChatQueueWorker

@Suite("Supervision: Prometheus metrics")
struct SupervisionMetricsTests {
    @Test("histogram buckets are cumulative, the +Inf bucket is the count")
    func histogram() {
        var histogram = LatencyHistogram()
        for seconds in [0.01, 0.05, 0.07, 0.3, 2, 2.5, 45, 301, 1000, -1, .nan] {
            histogram.observe(seconds: seconds)
        }
        #expect(histogram.count == 10)
        #expect(histogram.sum == 0.01 + 0.05 + 0.07 + 0.3 + 2 + 2.5 + 45 + 301 + 1000)
        #expect(histogram.bucketCounts == [3, 1, 0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 2])
        #expect(histogram.cumulativeCounts == [3, 4, 4, 5, 5, 7, 7, 7, 7, 8, 8, 8, 10])
        let cumulative = histogram.cumulativeCounts
        #expect(zip(cumulative, cumulative.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(cumulative.last == histogram.count)
    }

    @Test("the exposition text, line for line")
    func exactText() {
        var snapshot = MetricsSnapshot(instance: "w\"1")
        snapshot.update(counters: .sample, inFlight: 6)
        snapshot.spans = SpanExportFigures(
            enabled: true, exported: 40, droppedQueueFull: 3, droppedExportFailed: 5, exportFailures: 2)
        snapshot.recordError(code: "connection_failed")
        snapshot.recordError(code: "invalid_json")
        snapshot.recordError(code: "connection_failed")
        snapshot.tokens.record(
            model: "deepseek-chat", usage: TokenUsage(prompt: 10, completion: 25), chunks: 9, ending: .completed)
        snapshot.tokens.record(model: "deepseek-chat", usage: TokenUsage(prompt: 5, completion: 0), chunks: 0, ending: .failed)
        snapshot.tokens.record(model: "deepseek-chat", usage: nil, chunks: 4, ending: .stopped)
        snapshot.tokens.record(model: "a\"b", usage: nil, chunks: 2, ending: .failed)
        var upstream = UpstreamFigures()
        upstream.name = "default"
        upstream.firstChunk.observe(seconds: 0.2)
        upstream.firstChunk.observe(seconds: 0.75)
        upstream.duration.observe(seconds: 12.5)
        upstream.tries = 3
        upstream.recordFailure(.httpStatus(503, body: []))
        upstream.recordFailure(.httpStatus(503, body: Array("secret text".utf8)))
        upstream.recordFailure(.firstByteTimeout)
        upstream.breakerState = "open"
        upstream.breakerOpenings = 1
        upstream.window = 8
        upstream.windowDecreases = 2
        upstream.inFlight = 1
        snapshot.upstreams = [upstream]
        snapshot.latencies.queueWait.observe(seconds: 3)
        snapshot.latencies.firstChunk.observe(seconds: 0.3)
        snapshot.latencies.chunkGap.observe(seconds: 0.002)
        snapshot.latencies.chunkGap.observe(seconds: 0.02)
        snapshot.latencies.observeDuration(seconds: 1.5, outcome: .completion)
        snapshot.latencies.observeDuration(seconds: 0.01, outcome: .error)

        let i = #"instance="w\"1""#
        let u = #"upstream="default""#
        func buckets(
            _ name: String, _ counts: [Int], sum: String, count: Int, labels: String? = u, fine: Bool = false
        ) -> [String] {
            let bounds =
                fine
                ? ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
                : ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120", "300", "+Inf"]
            let prefix = labels.map { "\(i),\($0)" } ?? i
            return zip(bounds, counts).map { "\(name)_bucket{\(prefix),le=\"\($0)\"} \($1)" } + [
                "\(name)_sum{\(prefix)} \(sum)", "\(name)_count{\(prefix)} \(count)",
            ]
        }
        let expected =
            [
                "# HELP chatqueue_requests_total Requests finished, by outcome.",
                "# TYPE chatqueue_requests_total counter",
                "chatqueue_requests_total{\(i),outcome=\"succeeded\"} 7",
                "chatqueue_requests_total{\(i),outcome=\"failed\"} 2",
                "chatqueue_requests_total{\(i),outcome=\"rejected\"} 1",
                "chatqueue_requests_total{\(i),outcome=\"requeued\"} 3",
                "# HELP chatqueue_errors_total Error replies, by error code.",
                "# TYPE chatqueue_errors_total counter",
                "chatqueue_errors_total{\(i),code=\"connection_failed\"} 2",
                "chatqueue_errors_total{\(i),code=\"invalid_json\"} 1",
                "# HELP chatqueue_upstream_retries_total HTTP retries made to the upstream.",
                "# TYPE chatqueue_upstream_retries_total counter",
                "chatqueue_upstream_retries_total{\(i)} 4",
                "# HELP chatqueue_redeliveries_total Deliveries that were redeliveries.",
                "# TYPE chatqueue_redeliveries_total counter",
                "chatqueue_redeliveries_total{\(i)} 5",
                "# HELP chatqueue_chunks_published_total Chunks forwarded to requesters.",
                "# TYPE chatqueue_chunks_published_total counter",
                "chatqueue_chunks_published_total{\(i)} 120",
                "# HELP chatqueue_unroutable_replies_total Replies the broker could not route.",
                "# TYPE chatqueue_unroutable_replies_total counter",
                "chatqueue_unroutable_replies_total{\(i)} 6",
                "# HELP chatqueue_final_republishes_total Final replies published again after the broker refused them.",
                "# TYPE chatqueue_final_republishes_total counter",
                "chatqueue_final_republishes_total{\(i)} 8",
                "# HELP chatqueue_final_refused_total Deliveries dead-lettered because the broker refused their final reply every time.",
                "# TYPE chatqueue_final_refused_total counter",
                "chatqueue_final_refused_total{\(i)} 9",
                "# HELP chatqueue_broker_reconnects_total Broker connections re-established after a loss.",
                "# TYPE chatqueue_broker_reconnects_total counter",
                "chatqueue_broker_reconnects_total{\(i)} 2",
                "# HELP chatqueue_publisher_replacements_total Publisher connections replaced after the broker refused a final.",
                "# TYPE chatqueue_publisher_replacements_total counter",
                "chatqueue_publisher_replacements_total{\(i)} 19",
                "# HELP chatqueue_broker_connect_failures_total Attempts to connect to the broker that failed.",
                "# TYPE chatqueue_broker_connect_failures_total counter",
                "chatqueue_broker_connect_failures_total{\(i)} 10",
                "# HELP chatqueue_upstream_degradations_total Times no route had an upstream up, so the worker degraded.",
                "# TYPE chatqueue_upstream_degradations_total counter",
                "chatqueue_upstream_degradations_total{\(i)} 11",
                "# HELP chatqueue_requests_held_total Requests handed back to the queue unanswered because no upstream of their route was up.",
                "# TYPE chatqueue_requests_held_total counter",
                "chatqueue_requests_held_total{\(i)} 18",
                "# HELP chatqueue_upstream_probes_total Requests taken one at a time while degraded, to probe the upstream.",
                "# TYPE chatqueue_upstream_probes_total counter",
                "chatqueue_upstream_probes_total{\(i)} 12",
                "# HELP chatqueue_requests_in_flight Requests being handled now.",
                "# TYPE chatqueue_requests_in_flight gauge",
                "chatqueue_requests_in_flight{\(i)} 6",
                "# HELP chatqueue_usage_tokens_total Tokens the upstream reported in usage, by upstream, model and kind.",
                "# TYPE chatqueue_usage_tokens_total counter",
                "chatqueue_usage_tokens_total{\(i),upstream=\"default\",model=\"deepseek-chat\",kind=\"prompt\"} 15",
                "chatqueue_usage_tokens_total{\(i),upstream=\"default\",model=\"deepseek-chat\",kind=\"completion\"} 25",
                "chatqueue_usage_tokens_total{\(i),upstream=\"default\",model=\"other\",kind=\"prompt\"} 0",
                "chatqueue_usage_tokens_total{\(i),upstream=\"default\",model=\"other\",kind=\"completion\"} 0",
                "# HELP chatqueue_chunks_without_usage_total Chunks forwarded by upstream tries that reported no usage, "
                    + "by upstream, model and how the try ended.",
                "# TYPE chatqueue_chunks_without_usage_total counter",
                "chatqueue_chunks_without_usage_total{\(i),upstream=\"default\",model=\"deepseek-chat\",ending=\"completed\"} 0",
                "chatqueue_chunks_without_usage_total{\(i),upstream=\"default\",model=\"deepseek-chat\",ending=\"failed\"} 0",
                "chatqueue_chunks_without_usage_total{\(i),upstream=\"default\",model=\"deepseek-chat\",ending=\"stopped\"} 4",
                "chatqueue_chunks_without_usage_total{\(i),upstream=\"default\",model=\"other\",ending=\"completed\"} 0",
                "chatqueue_chunks_without_usage_total{\(i),upstream=\"default\",model=\"other\",ending=\"failed\"} 2",
                "chatqueue_chunks_without_usage_total{\(i),upstream=\"default\",model=\"other\",ending=\"stopped\"} 0",
                "# HELP chatqueue_upstream_first_chunk_seconds Seconds from sending a try upstream to its first chunk, by upstream.",
                "# TYPE chatqueue_upstream_first_chunk_seconds histogram",
            ]
            + buckets(
                "chatqueue_upstream_first_chunk_seconds", [0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2], sum: "0.95",
                count: 2)
            + [
                "# HELP chatqueue_upstream_duration_seconds Seconds from sending a try upstream to its last byte, by upstream.",
                "# TYPE chatqueue_upstream_duration_seconds histogram",
            ]
            + buckets(
                "chatqueue_upstream_duration_seconds", [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1], sum: "12.5", count: 1)
            + [
                "# HELP chatqueue_upstream_tries_total HTTP tries started, by upstream.",
                "# TYPE chatqueue_upstream_tries_total counter",
                "chatqueue_upstream_tries_total{\(i),\(u)} 3",
                "# HELP chatqueue_upstream_failures_total Failed HTTP tries, by upstream and code (http_<status>, or connection_failed, first_byte_timeout, ...).",
                "# TYPE chatqueue_upstream_failures_total counter",
                "chatqueue_upstream_failures_total{\(i),\(u),code=\"first_byte_timeout\"} 1",
                "chatqueue_upstream_failures_total{\(i),\(u),code=\"http_503\"} 2",
                "# HELP chatqueue_upstream_breaker_state 1 for the state each upstream's circuit breaker is in, else 0.",
                "# TYPE chatqueue_upstream_breaker_state gauge",
                "chatqueue_upstream_breaker_state{\(i),\(u),state=\"closed\"} 0",
                "chatqueue_upstream_breaker_state{\(i),\(u),state=\"open\"} 1",
                "chatqueue_upstream_breaker_state{\(i),\(u),state=\"half_open\"} 0",
                "# HELP chatqueue_upstream_breaker_openings_total Times each upstream's circuit breaker opened.",
                "# TYPE chatqueue_upstream_breaker_openings_total counter",
                "chatqueue_upstream_breaker_openings_total{\(i),\(u)} 1",
                "# HELP chatqueue_upstream_window Tries each upstream may take at once (its AIMD window).",
                "# TYPE chatqueue_upstream_window gauge",
                "chatqueue_upstream_window{\(i),\(u)} 8",
                "# HELP chatqueue_upstream_window_decreases_total Times each upstream's window narrowed on an overload (429, 503, rate-limit headers at zero).",
                "# TYPE chatqueue_upstream_window_decreases_total counter",
                "chatqueue_upstream_window_decreases_total{\(i),\(u)} 2",
                "# HELP chatqueue_upstream_in_flight Tries running now, by upstream.",
                "# TYPE chatqueue_upstream_in_flight gauge",
                "chatqueue_upstream_in_flight{\(i),\(u)} 1",
                "# HELP chatqueue_request_queue_wait_seconds Seconds from a request's AMQP timestamp property to its delivery (requests that set one).",
                "# TYPE chatqueue_request_queue_wait_seconds histogram",
            ]
            + buckets(
                "chatqueue_request_queue_wait_seconds", [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1], sum: "3", count: 1,
                labels: nil)
            + [
                "# HELP chatqueue_request_first_chunk_seconds Seconds from a streamed request's delivery to its first chunk published.",
                "# TYPE chatqueue_request_first_chunk_seconds histogram",
            ]
            + buckets(
                "chatqueue_request_first_chunk_seconds", [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], sum: "0.3", count: 1,
                labels: nil)
            + [
                "# HELP chatqueue_chunk_gap_seconds Seconds between two chunks of one try, as published.",
                "# TYPE chatqueue_chunk_gap_seconds histogram",
            ]
            + buckets(
                "chatqueue_chunk_gap_seconds", [0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], sum: "0.022", count: 2,
                labels: nil, fine: true)
            + [
                "# HELP chatqueue_request_duration_seconds Seconds from a request's delivery to its settlement, by outcome (completion, error, none).",
                "# TYPE chatqueue_request_duration_seconds histogram",
            ]
            + buckets(
                "chatqueue_request_duration_seconds", [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], sum: "1.5", count: 1,
                labels: #"outcome="completion""#)
            + buckets(
                "chatqueue_request_duration_seconds", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], sum: "0.01", count: 1,
                labels: #"outcome="error""#)
            + buckets(
                "chatqueue_request_duration_seconds", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], sum: "0", count: 0,
                labels: #"outcome="none""#)
            + [
                "# HELP chatqueue_requests_cancelled_total Requests answered cancelled because their requester cancelled them.",
                "# TYPE chatqueue_requests_cancelled_total counter",
                "chatqueue_requests_cancelled_total{\(i)} 13",
                "# HELP chatqueue_requests_abandoned_total Requests acked unanswered because their reply queue was gone (a reply came back unroutable).",
                "# TYPE chatqueue_requests_abandoned_total counter",
                "chatqueue_requests_abandoned_total{\(i)} 14",
                "# HELP chatqueue_cancels_received_total Messages taken from the worker's cancel queue.",
                "# TYPE chatqueue_cancels_received_total counter",
                "chatqueue_cancels_received_total{\(i)} 15",
                "# HELP chatqueue_cancels_malformed_total Cancel messages dropped as malformed.",
                "# TYPE chatqueue_cancels_malformed_total counter",
                "chatqueue_cancels_malformed_total{\(i)} 16",
                "# HELP chatqueue_cancels_remembered_total Cancels remembered (held here or not), in case the request arrives, or arrives again, later.",
                "# TYPE chatqueue_cancels_remembered_total counter",
                "chatqueue_cancels_remembered_total{\(i)} 17",
                "# HELP chatqueue_spans_exported_total Spans an OTLP collector accepted.",
                "# TYPE chatqueue_spans_exported_total counter",
                "chatqueue_spans_exported_total{\(i)} 40",
                "# HELP chatqueue_spans_dropped_total Spans not exported, by reason: queue_full (tracing.max_queued_spans held), export_failed (the collector failed or refused).",
                "# TYPE chatqueue_spans_dropped_total counter",
                "chatqueue_spans_dropped_total{\(i),reason=\"queue_full\"} 3",
                "chatqueue_spans_dropped_total{\(i),reason=\"export_failed\"} 5",
            ]
        let text = PrometheusText.render(snapshot)
        #expect(text.hasSuffix("\n"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(lines.count == expected.count)
        for (actual, wanted) in zip(lines, expected) {
            #expect(actual == wanted)
        }
    }

    @Test("an empty snapshot still declares every family; no errors means no error samples")
    func emptySnapshot() {
        let text = PrometheusText.render(MetricsSnapshot(instance: "1"))
        let families = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map {
            $0.split(separator: " ")[2]
        }
        #expect(
            families == [
                "chatqueue_requests_total", "chatqueue_errors_total", "chatqueue_upstream_retries_total",
                "chatqueue_redeliveries_total", "chatqueue_chunks_published_total",
                "chatqueue_unroutable_replies_total", "chatqueue_final_republishes_total",
                "chatqueue_final_refused_total", "chatqueue_broker_reconnects_total",
                "chatqueue_publisher_replacements_total",
                "chatqueue_broker_connect_failures_total", "chatqueue_upstream_degradations_total",
                "chatqueue_requests_held_total", "chatqueue_upstream_probes_total",
                "chatqueue_requests_in_flight", "chatqueue_usage_tokens_total",
                "chatqueue_chunks_without_usage_total",
                "chatqueue_upstream_first_chunk_seconds", "chatqueue_upstream_duration_seconds",
                "chatqueue_upstream_tries_total", "chatqueue_upstream_failures_total",
                "chatqueue_upstream_breaker_state", "chatqueue_upstream_breaker_openings_total",
                "chatqueue_upstream_window", "chatqueue_upstream_window_decreases_total", "chatqueue_upstream_in_flight",
                "chatqueue_request_queue_wait_seconds", "chatqueue_request_first_chunk_seconds",
                "chatqueue_chunk_gap_seconds", "chatqueue_request_duration_seconds",
                "chatqueue_requests_cancelled_total", "chatqueue_requests_abandoned_total",
                "chatqueue_cancels_received_total", "chatqueue_cancels_malformed_total",
                "chatqueue_cancels_remembered_total", "chatqueue_spans_exported_total", "chatqueue_spans_dropped_total",
            ])
        #expect(!text.contains("chatqueue_errors_total{"))
        #expect(!text.contains("chatqueue_upstream_duration_seconds_bucket{"), "no upstreams, no samples")
    }

    @Test("label values and numbers are escaped and formatted as Prometheus reads them")
    func formatting() {
        #expect(PrometheusText.escapedLabelValue("a\\b\"c\nd") == #"a\\b\"c\nd"#)
        #expect(PrometheusText.number(1) == "1")
        #expect(PrometheusText.number(0.05) == "0.05")
        #expect(PrometheusText.number(.infinity) == "+Inf")
        #expect(PrometheusText.number(.nan) == "NaN")
    }

    @Test("error labels come from a fixed set: codes an upstream makes up are counted as other")
    func errorLabels() {
        var snapshot = MetricsSnapshot(instance: "1")
        snapshot.recordError(code: "invalid_field")
        snapshot.recordError(code: "rate_limit_error")
        snapshot.recordError(code: "made_up_by_upstream")
        snapshot.recordError(code: "x\"}\n# TYPE evil counter")
        snapshot.recordError(code: String(repeating: "a", count: 10_000))
        #expect(snapshot.errorsByCode == ["invalid_field": 1, "rate_limit_error": 1, "other": 3])
        #expect(MetricsSnapshot.errorLabels.allSatisfy { label in label.allSatisfy { $0 == "_" || $0.isLowercase } })
    }

    @Test("model labels in the text are bounded: hostile names cannot add label values or break the format")
    func hostileModelLabels() {
        var snapshot = MetricsSnapshot(instance: "1")
        for index in 0..<100 {
            snapshot.tokens.record(model: "m\(index)", usage: TokenUsage(prompt: 1, completion: 1), chunks: 0, ending: .completed)
        }
        snapshot.tokens.record(model: "x\"}\n# TYPE evil counter", usage: nil, chunks: 1, ending: .stopped)
        let text = PrometheusText.render(snapshot)
        let models = Set(
            text.split(separator: "\n").filter { $0.hasPrefix("chatqueue_usage_tokens_total{") }.compactMap { line in
                line.split(separator: ",").first { $0.hasPrefix("model=") }
            })
        #expect(models.count == ModelLabels.maxLabels + 1)
        #expect(models.contains(#"model="other""#))
        #expect(text.contains(#"chatqueue_usage_tokens_total{instance="1",upstream="default",model="other",kind="prompt"} 68"#))
        #expect(!text.contains("evil"))
    }
}
