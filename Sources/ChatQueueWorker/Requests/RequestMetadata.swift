import ChatQueueAMQP

/// What the wire contract derives from a delivery's properties before the
/// body is looked at: identity, where replies go, which attempt this is and
/// the requester's deadline. Pure; see docs/protocol.md "Request".
struct RequestMetadata: Sendable, Equatable {
    /// message_id, else correlation_id, else a generated UUID.
    var requestID: String
    /// correlation_id, else the request id; echoed on every reply.
    var correlationID: String
    /// reply_to, else `replies.default_queue`; nil means nowhere to answer.
    var replyTo: String?
    /// x-delivery-count + 1 when the broker sets it (quorum queues), else 2 if redelivered, else 1.
    var attempt: Int
    /// x-deadline-ms, absolute Unix milliseconds.
    var deadlineMilliseconds: Int64?
    /// x-deadline-ms was present but not an integer.
    var invalidDeadline: Bool

    init(
        properties: AMQPMessageProperties, redelivered: Bool, defaultReplyQueue: String?,
        makeID: () -> String
    ) {
        let messageID = properties.messageID.flatMap { $0.isEmpty ? nil : $0 }
        let correlationID = properties.correlationID.flatMap { $0.isEmpty ? nil : $0 }
        requestID = messageID ?? correlationID ?? makeID()
        self.correlationID = correlationID ?? requestID
        replyTo = properties.replyTo.flatMap { $0.isEmpty ? nil : $0 } ?? defaultReplyQueue
        if let count = properties.headers["x-delivery-count"]?.integerValue, count >= 0 {
            attempt = Int(count) + 1
        } else {
            attempt = redelivered ? 2 : 1
        }
        if let raw = properties.headers["x-deadline-ms"] {
            deadlineMilliseconds = raw.integerValue
            invalidDeadline = deadlineMilliseconds == nil
        } else {
            deadlineMilliseconds = nil
            invalidDeadline = false
        }
    }
}
