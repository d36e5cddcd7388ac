import ChatQueueSystem
import ChatQueueCore
import ChatQueueAMQP

/// What the wire contract derives from a delivery's properties before the
/// body is looked at: identity, where replies go, which attempt this is and
/// the requester's deadline. Pure; see docs/protocol.md "Request".
///
/// Every header may come from any publisher, with any AMQP type and value:
/// the numbers here are range-checked so that no later arithmetic can overflow.
struct RequestMetadata: Sendable, Equatable {
    /// message_id, else correlation_id, else a generated UUID.
    var requestID: String
    /// correlation_id, else the request id; echoed on every reply.
    var correlationID: String
    /// reply_to, else `replies.default_queue`; nil means nowhere to answer.
    var replyTo: String?
    /// x-delivery-count + 1 when the header is set (quorum queues), else 2 if
    /// redelivered, else 1; always within ``attemptRange``.
    var attempt: Int
    /// x-deadline-ms, absolute Unix milliseconds, within ``deadlineRange``.
    var deadlineMilliseconds: Int64?
    /// x-deadline-ms was present but not an integer within ``deadlineRange``.
    var invalidDeadline: Bool

    /// Attempts a reply can report. A forged x-delivery-count saturates at the top.
    static let attemptRange: ClosedRange<Int> = 1...Int(Int32.max)
    /// Accepted x-deadline-ms values: the Unix epoch to 9999-12-31T23:59:59.999Z.
    static let deadlineRange: ClosedRange<Int64> = 0...253_402_300_799_999

    init(
        properties: AMQPMessageProperties, redelivered: Bool, defaultReplyQueue: String?,
        makeID: () -> String
    ) {
        let messageID = properties.messageID.flatMap { $0.isEmpty ? nil : $0 }
        let correlationID = properties.correlationID.flatMap { $0.isEmpty ? nil : $0 }
        requestID = messageID ?? correlationID ?? makeID()
        self.correlationID = correlationID ?? requestID
        replyTo = properties.replyTo.flatMap { $0.isEmpty ? nil : $0 } ?? defaultReplyQueue
        if let count = properties.headers["x-delivery-count"]?.saturatedInteger, count >= 0 {
            attempt = Int(min(count, Int64(Self.attemptRange.upperBound - 1))) + 1
        } else {
            attempt = redelivered ? 2 : 1
        }
        if let raw = properties.headers["x-deadline-ms"] {
            deadlineMilliseconds = raw.saturatedInteger.flatMap { Self.deadlineRange.contains($0) ? $0 : nil }
            invalidDeadline = deadlineMilliseconds == nil
        } else {
            deadlineMilliseconds = nil
            invalidDeadline = false
        }
    }

    /// The monotonic deadline of a Unix-milliseconds deadline, or nil when it
    /// is not in the future. Saturates at `.never` instead of overflowing.
    static func monotonicDeadline(unixMilliseconds: Int64, nowUnixMilliseconds: Int64, nowMonotonic: Deadline) -> Deadline? {
        let (left, overflow) = unixMilliseconds.subtractingReportingOverflow(nowUnixMilliseconds)
        if overflow { return unixMilliseconds > nowUnixMilliseconds ? .never : nil }
        guard left > 0 else { return nil }
        let (nanoseconds, tooLong) = UInt64(left).multipliedReportingOverflow(by: 1_000_000)
        guard !tooLong else { return .never }
        return nowMonotonic.adding(nanoseconds: nanoseconds)
    }
}
