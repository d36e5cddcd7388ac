import ChatQueueCore
import ChatQueueAMQP
import Testing

@testable import ChatQueueWorker

@Suite("Request metadata")
struct RequestMetadataTests {
    private func metadata(_ properties: AMQPMessageProperties, redelivered: Bool = false, defaultQueue: String? = nil)
        -> RequestMetadata
    {
        RequestMetadata(properties: properties, redelivered: redelivered, defaultReplyQueue: defaultQueue) { "generated" }
    }

    @Test("request id: message_id, else correlation_id, else generated; correlation id falls back to it")
    func identity() {
        let both = metadata(AMQPMessageProperties(correlationID: "c", messageID: "m"))
        #expect(both.requestID == "m")
        #expect(both.correlationID == "c")
        let correlationOnly = metadata(AMQPMessageProperties(correlationID: "c"))
        #expect(correlationOnly.requestID == "c")
        let neither = metadata(AMQPMessageProperties())
        #expect(neither.requestID == "generated")
        #expect(neither.correlationID == "generated")
    }

    @Test("reply target: reply_to, else replies.default_queue, else none")
    func replyTarget() {
        #expect(metadata(AMQPMessageProperties(replyTo: "q"), defaultQueue: "d").replyTo == "q")
        #expect(metadata(AMQPMessageProperties(), defaultQueue: "d").replyTo == "d")
        #expect(metadata(AMQPMessageProperties()).replyTo == nil)
    }

    @Test("attempt: x-delivery-count + 1, else 2 when redelivered, else 1")
    func attempt() {
        #expect(metadata(AMQPMessageProperties(headers: ["x-delivery-count": .int(2)])).attempt == 3)
        #expect(metadata(AMQPMessageProperties(), redelivered: true).attempt == 2)
        #expect(metadata(AMQPMessageProperties()).attempt == 1)
    }

    @Test("x-deadline-ms: integers of any width or decimal strings; anything else is invalid")
    func deadline() {
        #expect(metadata(AMQPMessageProperties(headers: ["x-deadline-ms": .int(1_700_000_000_000)])).deadlineMilliseconds == 1_700_000_000_000)
        #expect(metadata(AMQPMessageProperties(headers: ["x-deadline-ms": .string("42")])).deadlineMilliseconds == 42)
        let invalid = metadata(AMQPMessageProperties(headers: ["x-deadline-ms": .string("tomorrow")]))
        #expect(invalid.invalidDeadline)
        #expect(invalid.deadlineMilliseconds == nil)
    }
}

/// Headers any publisher can set, with any AMQP type and value: nothing traps,
/// and what comes out is in range.
@Suite("Request metadata from hostile headers")
struct RequestMetadataHostileTests {
    private func metadata(_ headers: [String: AMQPFieldValue], redelivered: Bool = false) -> RequestMetadata {
        RequestMetadata(
            properties: AMQPMessageProperties(headers: headers), redelivered: redelivered, defaultReplyQueue: nil
        ) { "generated" }
    }

    @Test(
        "a forged x-delivery-count saturates at Int32.max; a negative or non-integer one is ignored",
        arguments: [
            (AMQPFieldValue.int(.max), Int(Int32.max)),
            (.unsigned(.max), Int(Int32.max)),
            (.int(Int64(Int32.max)), Int(Int32.max)),
            (.int(Int64(Int32.max) - 2), Int(Int32.max) - 1),
            (.string("99999999999999999999999"), Int(Int32.max)),
            (.double(1e300), Int(Int32.max)),
            (.double(.infinity), Int(Int32.max)),
            (.int(.min), 2),
            (.int(-1), 2),
            (.string("-99999999999999999999999"), 2),
            (.double(.nan), 2),
            (.double(1.5), 2),
            (.bool(true), 2),
            (.other, 2),
            (.string("3"), 4),
        ]
    )
    func forgedDeliveryCount(value: AMQPFieldValue, attempt: Int) {
        let result = metadata(["x-delivery-count": value], redelivered: true)
        #expect(result.attempt == attempt)
        #expect(RequestMetadata.attemptRange.contains(result.attempt))
    }

    @Test(
        "x-deadline-ms outside 0...253402300799999 or not an integer is invalid",
        arguments: [
            AMQPFieldValue.string("12345678901234567"),  // 17 digits: year 393 000
            .string("99999999999999999999999999"),
            .string("1.7e12"),
            .string(" 1700000000000"),
            .string(""),
            .string("-"),
            .int(.max),
            .int(.min),
            .int(-1),
            .int(253_402_300_800_000),
            .unsigned(.max),
            .unsigned(UInt64(Int64.max) + 1),
            .double(1_700_000_000_000.5),
            .double(.nan),
            .double(.infinity),
            .double(-.infinity),
            .double(1e300),
            .bool(true),
            .other,
        ]
    )
    func invalidDeadline(value: AMQPFieldValue) {
        let result = metadata(["x-deadline-ms": value])
        #expect(result.invalidDeadline)
        #expect(result.deadlineMilliseconds == nil)
    }

    @Test(
        "x-deadline-ms accepts any integer kind, a decimal string or a whole double within the range",
        arguments: [
            (AMQPFieldValue.int(0), Int64(0)),
            (.int(253_402_300_799_999), 253_402_300_799_999),
            (.string("253402300799999"), 253_402_300_799_999),
            (.string("+1700000000000"), 1_700_000_000_000),
            (.double(1_700_000_000_000), 1_700_000_000_000),
        ]
    )
    func validDeadline(value: AMQPFieldValue, expected: Int64) {
        let result = metadata(["x-deadline-ms": value])
        #expect(!result.invalidDeadline)
        #expect(result.deadlineMilliseconds == expected)
    }

    @Test("the monotonic deadline saturates instead of overflowing; nil once it has passed")
    func monotonicDeadline() {
        let now: Int64 = 1_700_000_000_000
        #expect(RequestMetadata.monotonicDeadline(unixMilliseconds: now + 1500, nowUnixMilliseconds: now, nowMonotonic: Deadline(nanoseconds: 10)) == Deadline(nanoseconds: 1_500_000_010))
        #expect(RequestMetadata.monotonicDeadline(unixMilliseconds: now, nowUnixMilliseconds: now, nowMonotonic: Deadline(nanoseconds: 10)) == nil)
        #expect(RequestMetadata.monotonicDeadline(unixMilliseconds: 0, nowUnixMilliseconds: now, nowMonotonic: Deadline(nanoseconds: 10)) == nil)
        // Year 9999: 2.5e20 ns does not fit UInt64.
        #expect(
            RequestMetadata.monotonicDeadline(
                unixMilliseconds: RequestMetadata.deadlineRange.upperBound, nowUnixMilliseconds: now, nowMonotonic: Deadline(nanoseconds: 10)) == .never)
        #expect(RequestMetadata.monotonicDeadline(unixMilliseconds: now + 1, nowUnixMilliseconds: now, nowMonotonic: Deadline(nanoseconds: .max - 5)) == .never)
        #expect(RequestMetadata.monotonicDeadline(unixMilliseconds: .max, nowUnixMilliseconds: .min, nowMonotonic: Deadline(nanoseconds: 0)) == .never)
        #expect(RequestMetadata.monotonicDeadline(unixMilliseconds: .min, nowUnixMilliseconds: .max, nowMonotonic: Deadline(nanoseconds: 0)) == nil)
        #expect(RequestMetadata.monotonicDeadline(unixMilliseconds: .max, nowUnixMilliseconds: .max, nowMonotonic: Deadline(nanoseconds: 0)) == nil)
    }
}
