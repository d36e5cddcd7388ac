import ChatQueueCore
import Testing

@testable import ChatQueueWorker

@Suite("Supervision: the status file's JSON")
struct SupervisionStatusTests {
    static let sample = WorkerStatus(
        version: "0.1.0", pid: 4242, instance: "3", state: .degraded,
        startedAtUnixMilliseconds: 1_795_788_185_123, updatedAtUnixMilliseconds: 1_795_788_190_007,
        broker: WorkerStatus.Broker(
            connected: true, queue: "chat.requests", consumerTag: "ctag-1", publishingBlocked: true, reconnects: 2,
            connectFailures: 3, publisherReplacements: 4, lastError: "connection to amqps://app:s3cret@rabbit:5671/%2f lost"),
        upstream: WorkerStatus.Upstream(
            lastSuccessAtUnixMilliseconds: 951_868_799_999, lastError: "HTTP 503 (Authorization: Bearer sk-live-1)",
            consecutiveFailures: 5, degradations: 1, probes: 2),
        upstreams: {
            var figures = UpstreamFigures()
            figures.name = "deepseek"
            figures.tries = 9
            figures.recordFailure(.httpStatus(402, body: Array("Insufficient Balance".utf8)))
            figures.breakerState = "open"
            figures.breakerReason = "payment_required"
            figures.probeAtUnixMilliseconds = 1_795_788_220_007
            figures.breakerOpenings = 1
            figures.window = 12
            figures.windowDecreases = 3
            return [figures]
        }(),
        tokens: {
            var ledger = TokenLedger()
            ledger.record(model: "deepseek-chat", usage: TokenUsage(prompt: 12, completion: 30), chunks: 8, ending: .completed)
            ledger.record(model: "deepseek-chat", usage: nil, chunks: 3, ending: .stopped)
            ledger.record(model: "deepseek-reasoner", usage: nil, chunks: 2, ending: .failed)
            return ledger
        }(),
        requests: WorkerStatus.Requests(
            inFlight: 1, paused: 1, received: 10, succeeded: 6, failed: 2, rejected: 1, requeued: 1, retried: 4,
            redelivered: 3, unroutableReplies: 1, held: 2),
        chunksPublished: 99,
        cancels: WorkerStatus.Cancels(requestsCancelled: 2, requestsAbandoned: 1, received: 30, malformed: 7, remembered: 4),
        tracing: SpanExportFigures(
            enabled: true, exported: 40, droppedQueueFull: 3, droppedExportFailed: 5, exportFailures: 2,
            lastError: "HTTP 503"))

    @Test("the JSON has every field, in the documented order, secrets redacted")
    func exactJSON() {
        let json = String(decoding: Self.sample.json(), as: UTF8.self)
        let expected =
            #"{"service":"chatqueue-worker","version":"0.1.0","pid":4242,"instance":"3","state":"degraded","#
            + #""started_at":"2026-11-27T14:03:05.123Z","updated_at":"2026-11-27T14:03:10.007Z","#
            + #""broker":{"connected":true,"queue":"chat.requests","consumer_tag":"ctag-1","publishing_blocked":true,"#
            + #""reconnects":2,"connect_failures":3,"publisher_replacements":4,"#
            + #""last_error":"connection to amqps://app:***@rabbit:5671/%2f lost"},"#
            + #""upstream":{"last_success_at":"2000-02-29T23:59:59.999Z","#
            + #""last_error":"HTTP 503 (Authorization: Bearer ***)","consecutive_failures":5,"degradations":1,"probes":2},"#
            + #""upstreams":[{"name":"deepseek","breaker":"open","breaker_reason":"payment_required","#
            + #""probe_at":"2026-11-27T14:03:40.007Z","breaker_openings":1,"consecutive_failures":0,"window":12,"#
            + #""window_decreases":3,"in_flight":0,"tries":9,"failures":{"http_402":1}}],"#
            + #""usage":{"prompt_tokens":12,"completion_tokens":30,"chunks_without_usage":5,"by_model":["#
            + #"{"upstream":"default","model":"deepseek-chat","prompt_tokens":12,"completion_tokens":30,"chunks_without_usage":3},"#
            + #"{"upstream":"default","model":"deepseek-reasoner","prompt_tokens":0,"completion_tokens":0,"chunks_without_usage":2}]},"#
            + #""requests":{"in_flight":1,"paused":1,"received":10,"succeeded":6,"failed":2,"rejected":1,"requeued":1,"#
            + #""retried":4,"redelivered":3,"unroutable_replies":1,"held":2},"chunks_published":99,"#
            + #""cancels":{"requests_cancelled":2,"requests_abandoned":1,"received":30,"malformed":7,"remembered":4},"#
            + #""tracing":{"export":true,"spans_exported":40,"spans_dropped_queue_full":3,"spans_dropped_export_failed":5,"#
            + #""export_failures":2,"last_error":"HTTP 503"}}"#
        #expect(json == expected)
    }

    @Test("keys in order at every level; nullable fields are null")
    func keysAndNulls() throws {
        let fresh = WorkerStatus(
            pid: 7, instance: "pid7", state: .starting, startedAtUnixMilliseconds: 0, updatedAtUnixMilliseconds: 0,
            broker: WorkerStatus.Broker(queue: "q"))
        let document = try JSONValue(parsing: fresh.json())
        let object = try #require(document.objectValue)
        // Token accounting's `usage` comes right after `upstreams`.
        #expect(object.keys.firstIndex(of: "usage") == object.keys.firstIndex(of: "upstreams").map { $0 + 1 })
        #expect(
            object.keys.filter { $0 != "usage" } == [
                "service", "version", "pid", "instance", "state", "started_at", "updated_at", "broker", "upstream",
                "upstreams", "requests", "chunks_published", "cancels", "tracing",
            ])
        #expect(document["upstreams"] == [])
        // Export off: the object is there, all zero, no error.
        #expect(
            document["tracing"] == [
                "export": false, "spans_exported": 0, "spans_dropped_queue_full": 0, "spans_dropped_export_failed": 0,
                "export_failures": 0, "last_error": .null,
            ])
        #expect(
            document["cancels"]?.objectValue?.keys == [
                "requests_cancelled", "requests_abandoned", "received", "malformed", "remembered",
            ])
        #expect(
            document["usage"] == [
                "prompt_tokens": 0, "completion_tokens": 0, "chunks_without_usage": 0, "by_model": [],
            ])
        #expect(
            document["broker"]?.objectValue?.keys == [
                "connected", "queue", "consumer_tag", "publishing_blocked", "reconnects", "connect_failures",
                "publisher_replacements", "last_error",
            ])
        #expect(
            document["upstream"]?.objectValue?.keys == [
                "last_success_at", "last_error", "consecutive_failures", "degradations", "probes",
            ])
        #expect(
            document["requests"]?.objectValue?.keys == [
                "in_flight", "paused", "received", "succeeded", "failed", "rejected", "requeued", "retried",
                "redelivered", "unroutable_replies", "held",
            ])
        #expect(document["version"] == .string(ChatQueueVersion.current))
        #expect(document["service"] == "chatqueue-worker")
        #expect(document["started_at"] == "1970-01-01T00:00:00.000Z")
        #expect(document["broker"]?["consumer_tag"]?.isNull == true)
        #expect(document["broker"]?["last_error"]?.isNull == true)
        #expect(document["upstream"]?["last_success_at"]?.isNull == true)
        #expect(document["upstream"]?["last_error"]?.isNull == true)
    }

    @Test("the systemd STATUS= summary")
    func summaryLine() {
        #expect(
            Self.sample.summaryLine
                == "degraded: 1 in flight, 10 received, 6 succeeded, 2 failed; upstream: HTTP 503 (Authorization: Bearer ***)")
        var status = Self.sample
        status.state = .reconnecting
        #expect(status.summaryLine == "reconnecting: connection to amqps://app:***@rabbit:5671/%2f lost")
        status.state = .running
        #expect(status.summaryLine == "running: 1 in flight, 10 received, 6 succeeded, 2 failed")
    }

    @Test("requests come from WorkerCounters")
    func requestsFromCounters() {
        #expect(
            WorkerStatus.Requests(counters: .sample, inFlight: 2, paused: 1)
                == WorkerStatus.Requests(
                    inFlight: 2, paused: 1, received: 13, succeeded: 7, failed: 2, rejected: 1, requeued: 3, retried: 4,
                    redelivered: 5, unroutableReplies: 6, held: 18))
    }

    @Test("error texts in the status file and STATUS= are one bounded printable line, redacted before the cut")
    func boundedErrors() throws {
        let password = String(repeating: "p", count: 400)
        let body = "HTTP 503: " + String(repeating: "x\u{0}\n\u{1b}[31m", count: 5000)
        var status = Self.sample
        status.broker.lastError = "lost amqp://u:\(password)@rabbit/"
        status.upstream.lastError = body
        let document = try #require(try? JSONValue(parsing: status.json()))
        let upstreamError = try #require(document["upstream"]?["last_error"]?.stringValue)
        #expect(upstreamError.utf8.count <= 300)
        #expect(upstreamError.hasPrefix("HTTP 503: x [31mx [31mx"))
        #expect(!upstreamError.unicodeScalars.contains { $0.properties.generalCategory == .control })
        let brokerError = try #require(document["broker"]?["last_error"]?.stringValue)
        #expect(brokerError == "lost amqp://u:***@rabbit/")
        #expect(status.summaryLine.utf8.count < 400)
        #expect(!status.summaryLine.contains("\n"))
        status.state = .reconnecting
        #expect(status.summaryLine == "reconnecting: lost amqp://u:***@rabbit/")
    }
}
