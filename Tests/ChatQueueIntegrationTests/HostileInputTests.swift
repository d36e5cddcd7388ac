import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// Numbers from outside (message headers, upstream hints) that used to trap
/// a worker with an arithmetic overflow: each gets an answer, and the same
/// worker process serves a normal request afterwards.
@Suite("Hostile input", .serialized)
struct HostileInputTests {
    /// A normal request still gets a completion from the same process.
    private static func expectStillServing(_ harness: IntegrationHarness, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(harness.worker.process.isRunning, "worker log:\n\(harness.worker.log)", sourceLocation: sourceLocation)
        let replies = try harness.exchange(json: chatRequest(), correlationID: "corr-after", timeout: 15)
        #expect(replies.map(\.type) == ["chat.completion"], sourceLocation: sourceLocation)
    }

    @Test("x-deadline-ms out of range or not an integer is 400 invalid_field x-deadline-ms, never a trap")
    func hostileDeadlines() async throws {
        let harness = try await IntegrationHarness.start("hostiledeadline")
        let hostile: [(String, AMQPFieldValue)] = [
            ("17-digit string", .string("12345678901234567")),
            ("Int64.max", .int(.max)),
            ("Int64.min", .int(.min)),
            ("UInt64.max timestamp", .unsigned(.max)),
            ("past 9999", .int(253_402_300_800_000)),
            ("double with a fraction", .double(1_700_000_000_000.5)),
            ("huge double", .double(1e300)),
            ("bool", .bool(true)),
        ]
        for (index, (name, value)) in hostile.enumerated() {
            let correlationID = "corr-deadline-\(index)"
            let replies = try harness.exchange(
                Array(chatRequest().utf8), correlationID: correlationID, headers: [("x-deadline-ms", value)], timeout: 15)
            #expect(replies.count == 1, "\(name)")
            try expectErrorReply(
                try #require(replies.first, "\(name)"),
                ExpectedError(
                    status: 400, type: "invalid_request_error", code: "invalid_field", param: "x-deadline-ms",
                    retryable: false, attempts: 0, upstreamStatus: nil),
                correlationID: correlationID)
        }
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: hostile.count) == hostile.count)
        #expect(harness.mock.recordedRequests().isEmpty)

        // The last millisecond of 9999 is a valid deadline: served normally.
        let farFuture = try harness.exchange(
            Array(chatRequest().utf8), correlationID: "corr-9999", headers: [("x-deadline-ms", .int(253_402_300_799_999))],
            timeout: 15)
        #expect(farFuture.map(\.type) == ["chat.completion"])
        try Self.expectStillServing(harness)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a forged x-delivery-count (Int64.max, UInt64.max) is a max_deliveries_exceeded dead letter, never a trap")
    func forgedDeliveryCount() async throws {
        let harness = try await IntegrationHarness.start("hostilecount")
        let forged: [AMQPFieldValue] = [.int(.max), .unsigned(.max)]
        for (index, value) in forged.enumerated() {
            let replies = try harness.exchange(
                Array(chatRequest().utf8), correlationID: "corr-count-\(index)", headers: [("x-delivery-count", value)],
                timeout: 15)
            let reply = try #require(replies.first)
            #expect(replies.count == 1)
            #expect(reply.type == "error")
            #expect(reply.attempt == Int64(Int32.max), "the attempt saturates")
            #expect(reply.json?["error"]?["code"]?.stringValue == "max_deliveries_exceeded", "\(reply.text)")
        }
        #expect(try harness.waitForMessageCount(harness.deadLetterQueue, toBe: forged.count) == forged.count)
        #expect(harness.mock.recordedRequests().isEmpty)
        try Self.expectStillServing(harness)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("an absurd Retry-After date or retry-after-ms on a 503 is ignored: the backoff retries, then a 503 error")
    func absurdRetryHints() async throws {
        let statusFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("cq-hostile-status-\(UUID().uuidString.prefix(8)).json").path
        defer { try? FileManager.default.removeItem(atPath: statusFile) }
        let harness = try await IntegrationHarness.start(
            "hostileretry",
            settings: fastRetries.merging([
                "status.file": statusFile, "status.interval": "0.2",
                // 28 failures in a row: the breaker must not open and hold the later requests.
                "upstream.breaker_failures": "1000",
            ]) { $1 })
        let hints = [
            #""retry_after":"Sun, 06 Nov 99999999999 08:49:37 GMT""#,
            #""retry_after":"Sun, 06 Nov 999999999999 08:49:37 GMT""#,
            #""retry_after":"Sun, 06 Nov 9223372036854775807 08:49:37 GMT""#,
            #""retry_after":"Sun, 31 Feb 1994 99:99:99 GMT""#,
            #""retry_after_ms":"1e400","retry_after":"-5""#,
            #""retry_after_ms":"nan","retry_after":"inf""#,
            #""retry_after_ms":"-1""#,
        ]
        for (index, hint) in hints.enumerated() {
            let key = "hint-\(index)-\(UUID().uuidString)"
            let correlationID = "corr-hint-\(index)"
            let replies = try harness.exchange(
                json: chatRequest(mock: #"{"status":503,"key":"\#(key)",\#(hint)}"#), correlationID: correlationID,
                timeout: 15)
            #expect(replies.count == 1, "\(hint)")
            try expectErrorReply(
                try #require(replies.first, "\(hint)"),
                ExpectedError(
                    status: 503, type: "upstream_error", code: "service_unavailable", message: "Service Unavailable",
                    retryable: true, attempts: 4, upstreamStatus: 503),
                correlationID: correlationID)
            #expect(harness.mock.requestCount(key: key) == 4, "\(hint): retried as if there were no hint")
        }
        try Self.expectStillServing(harness)

        // The failure in the status file is short text, not the body's bytes.
        var lastError: String?
        let deadline = Date().addingTimeInterval(5)
        while lastError == nil, Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
            let status = try? JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: statusFile))))
            lastError = status?["upstream"]?["last_error"]?.stringValue
        }
        #expect(lastError == "HTTP 503 service_unavailable: Service Unavailable")
        #expect(try await harness.shutdown() == 0)
    }
}
