import ChatQueueCore
import Testing

@testable import ChatQueueWorker

@Suite("Supervision: status JSON, timestamps, redaction")
struct SupervisionStatusTests {
    static let sample = WorkerStatus(
        version: "0.1.0", pid: 4242, instance: "3", state: .degraded,
        startedAtUnixMilliseconds: 1_795_788_185_123, updatedAtUnixMilliseconds: 1_795_788_190_007,
        broker: WorkerStatus.Broker(
            connected: true, queue: "chat.requests", consumerTag: "ctag-1", reconnects: 2,
            lastError: "connection to amqps://app:s3cret@rabbit:5671/%2f lost"),
        upstream: WorkerStatus.Upstream(
            lastSuccessAtUnixMilliseconds: 951_868_799_999, lastError: "HTTP 503 (Authorization: Bearer sk-live-1)",
            consecutiveFailures: 5),
        requests: WorkerStatus.Requests(
            inFlight: 1, received: 10, succeeded: 6, failed: 2, rejected: 1, retried: 4, redelivered: 3,
            unroutableReplies: 1),
        chunksPublished: 99)

    @Test("the JSON has every field, in the documented order, secrets redacted")
    func exactJSON() {
        let json = String(decoding: Self.sample.json(), as: UTF8.self)
        let expected =
            #"{"service":"chatqueue-worker","version":"0.1.0","pid":4242,"instance":"3","state":"degraded","#
            + #""started_at":"2026-11-27T14:03:05.123Z","updated_at":"2026-11-27T14:03:10.007Z","#
            + #""broker":{"connected":true,"queue":"chat.requests","consumer_tag":"ctag-1","reconnects":2,"#
            + #""last_error":"connection to amqps://app:***@rabbit:5671/%2f lost"},"#
            + #""upstream":{"last_success_at":"2000-02-29T23:59:59.999Z","#
            + #""last_error":"HTTP 503 (Authorization: Bearer ***)","consecutive_failures":5},"#
            + #""requests":{"in_flight":1,"received":10,"succeeded":6,"failed":2,"rejected":1,"retried":4,"#
            + #""redelivered":3,"unroutable_replies":1},"chunks_published":99}"#
        #expect(json == expected)
    }

    @Test("keys in order at every level; nullable fields are null")
    func keysAndNulls() throws {
        let fresh = WorkerStatus(
            pid: 7, instance: "pid7", state: .starting, startedAtUnixMilliseconds: 0, updatedAtUnixMilliseconds: 0,
            broker: WorkerStatus.Broker(queue: "q"))
        let document = try JSONValue(parsing: fresh.json())
        let object = try #require(document.objectValue)
        #expect(
            object.keys == [
                "service", "version", "pid", "instance", "state", "started_at", "updated_at", "broker", "upstream",
                "requests", "chunks_published",
            ])
        #expect(
            document["broker"]?.objectValue?.keys == ["connected", "queue", "consumer_tag", "reconnects", "last_error"])
        #expect(document["upstream"]?.objectValue?.keys == ["last_success_at", "last_error", "consecutive_failures"])
        #expect(
            document["requests"]?.objectValue?.keys == [
                "in_flight", "received", "succeeded", "failed", "rejected", "retried", "redelivered",
                "unroutable_replies",
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
        var counters = WorkerCounters()
        counters.received = 5
        counters.succeeded = 3
        counters.failed = 1
        counters.rejected = 1
        counters.retried = 2
        counters.redelivered = 1
        counters.unroutableReplies = 4
        #expect(
            WorkerStatus.Requests(counters: counters, inFlight: 2)
                == WorkerStatus.Requests(
                    inFlight: 2, received: 5, succeeded: 3, failed: 1, rejected: 1, retried: 2, redelivered: 1,
                    unroutableReplies: 4))
    }

    @Test(
        "RFC 3339 UTC with milliseconds",
        arguments: [
            (Int64(1_795_788_185_123), "2026-11-27T14:03:05.123Z"),
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_868_799_999, "2000-02-29T23:59:59.999Z"),
            (1_709_208_000_000, "2024-02-29T12:00:00.000Z"),
            (4_107_542_400_001, "2100-03-01T00:00:00.001Z"),
        ])
    func formatsTimestamps(milliseconds: Int64, text: String) {
        #expect(RFC3339.string(unixMilliseconds: milliseconds) == text)
        #expect(RFC3339.unixMilliseconds(parsing: text) == milliseconds)
    }

    @Test("every day of four centuries round-trips")
    func civilCalendarRoundTrip() {
        // 1900-01-01 to 2300-01-01, one sample per day at a varying time.
        var milliseconds: Int64 = -2_208_988_800_000
        while milliseconds < 10_413_792_000_000 {
            let text = RFC3339.string(unixMilliseconds: milliseconds)
            #expect(RFC3339.unixMilliseconds(parsing: text) == milliseconds, "\(text)")
            milliseconds += 86_400_000 + 3_723_001
        }
    }

    @Test("parsing accepts offsets and any fraction; rejects malformed text")
    func parsesVariants() {
        #expect(RFC3339.unixMilliseconds(parsing: "2026-11-27T15:03:05.123+01:00") == 1_795_788_185_123)
        #expect(RFC3339.unixMilliseconds(parsing: "2026-11-27t14:03:05z") == 1_795_788_185_000)
        #expect(RFC3339.unixMilliseconds(parsing: "2026-11-27T14:03:05.1Z") == 1_795_788_185_100)
        #expect(RFC3339.unixMilliseconds(parsing: "2026-11-27T14:03:05.123999Z") == 1_795_788_185_123)
        for bad in [
            "", "2026-11-27", "2026-11-27T14:03:05", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
            "2026-11-27T24:00:00Z", "2026-11-27T14:03:05.Z", "2026-11-27T14:03:05Zjunk", "26-11-27T14:03:05Z",
        ] {
            #expect(RFC3339.unixMilliseconds(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test(
        "redactingSecrets hides URL passwords and bearer tokens",
        arguments: [
            ("amqp://guest:guest@127.0.0.1:5672/%2f", "amqp://guest:***@127.0.0.1:5672/%2f"),
            ("cannot connect to amqps://app:p%40ss@rabbit:5671/prod: refused",
             "cannot connect to amqps://app:***@rabbit:5671/prod: refused"),
            ("AMQPS://u:x/y@z@host/v", "AMQPS://u:***@host/v"),
            ("a amqp://a:1@h1/ and amqp://b:2@h2/", "a amqp://a:***@h1/ and amqp://b:***@h2/"),
            ("\"https://user:token@api.example.com/v1\"", "\"https://user:***@api.example.com/v1\""),
            ("Authorization: Bearer sk-0123456789abcdef", "Authorization: Bearer ***"),
            ("{\"h\":\"bearer  abc.def-ghi\"}, next", "{\"h\":\"bearer  ***\"}, next"),
            ("BEARER x, then Bearer y", "BEARER ***, then Bearer ***"),
            // Passwords written raw with the characters that end other URL parts.
            ("amqp://u:p?w#x@host/v lost", "amqp://u:***@host/v lost"),
            ("amqp://u:a/b?c#d@e@rabbit:5672/%2f", "amqp://u:***@rabbit:5672/%2f"),
            ("amqps://u:%2F%3F%23%40@rabbit/", "amqps://u:***@rabbit/"),
            ("amqp://u:a://b@h/", "amqp://u:***@h/"),
        ])
    func redacts(input: String, output: String) {
        #expect(input.redactingSecrets() == output)
        #expect(output.redactingSecrets() == output)
    }

    @Test("text without credentials is unchanged")
    func redactionLeavesOrdinaryText() {
        for text in [
            "", "amqp://127.0.0.1:5672/%2f", "amqp://guest@host/", "unbearable Bearer", "Bearerish token",
            "connection refused (errno 111)", "://a:b@c", "already amqp://u:***@h/",
        ] {
            #expect(text.redactingSecrets() == text, "\(text)")
        }
        #expect("naïve amqp://u:pässwörd@höst/ ünïcode".redactingSecrets() == "naïve amqp://u:***@höst/ ünïcode")
        // In doubt it hides too much rather than too little: an @ in a path ends the user info.
        #expect("http://host:80/a@b".redactingSecrets() == "http://host:***@b")
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
