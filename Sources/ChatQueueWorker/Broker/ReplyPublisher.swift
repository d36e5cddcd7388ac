import ChatQueueAMQP

/// The kinds of reply, sent as the AMQP `type` property.
enum ReplyKind: String, Sendable {
    case chunk = "chat.completion.chunk"
    case completion = "chat.completion"
    case error = "error"

    var isFinal: Bool { self != .chunk }
}

/// Where one reply goes and what identifies it on the wire.
struct ReplyAddress: Sendable {
    var replyTo: String
    var requestID: String
    var correlationID: String
    var attempt: Int
}

/// Publishes replies on the publishing connection, which is in confirm mode,
/// and tracks which final replies the broker has confirmed. Sequence numbers
/// count every publish on the channel from 1, as the broker does.
final class ReplyPublisher {
    /// A final reply waiting for its confirm, and what it settles.
    struct PendingFinal {
        var sequence: UInt64
        var deliveryTag: UInt64
    }

    /// A confirm (or nack) of a final reply.
    struct Settlement {
        var deliveryTag: UInt64
        /// False when the broker nacked the publish (it was not stored).
        var confirmed: Bool
    }

    let connection: AMQPConnection
    private var lastSequence: UInt64 = 0
    /// Final replies in publish order; confirms arrive in that order too.
    private var pending: [PendingFinal] = []
    private var pendingHead = 0

    init(connection: AMQPConnection) throws(AMQPError) {
        self.connection = connection
        try connection.enablePublisherConfirms()
    }

    var unconfirmedFinals: Int { pending.count - pendingHead }

    /// Publishes one reply. Returns its sequence number. Final replies are
    /// persistent and remembered until confirmed; chunks are transient.
    @discardableResult
    func publish(
        _ kind: ReplyKind, body: UnsafeRawBufferPointer, to address: ReplyAddress, seq: Int64,
        settling deliveryTag: UInt64?
    ) throws(AMQPError) -> UInt64 {
        let properties = AMQPOutgoingProperties(
            contentType: "application/json", correlationID: address.correlationID, type: kind.rawValue,
            persistent: kind.isFinal,
            headers: [
                ("x-request-id", .string(address.requestID)),
                ("x-seq", .int(seq)),
                ("x-attempt", .int(Int64(address.attempt))),
            ])
        // Mandatory: a reply to a queue that no longer exists comes back as basic.return.
        try connection.publish(routingKey: address.replyTo, mandatory: true, properties: properties, body: body)
        lastSequence += 1
        if let deliveryTag {
            pending.append(PendingFinal(sequence: lastSequence, deliveryTag: deliveryTag))
        }
        return lastSequence
    }

    /// Applies a basic.ack or basic.nack from the broker; returns the final
    /// replies it settles, in publish order.
    func handleConfirm(deliveryTag: UInt64, multiple: Bool, confirmed: Bool) -> [Settlement] {
        var settled: [Settlement] = []
        if multiple {
            while pendingHead < pending.count, pending[pendingHead].sequence <= deliveryTag {
                settled.append(Settlement(deliveryTag: pending[pendingHead].deliveryTag, confirmed: confirmed))
                pendingHead += 1
            }
        } else if let index = pending[pendingHead...].firstIndex(where: { $0.sequence == deliveryTag }) {
            settled.append(Settlement(deliveryTag: pending[index].deliveryTag, confirmed: confirmed))
            pending.remove(at: index)
        }
        // Compact now and then so the array does not grow without bound.
        if pendingHead > 1024, pendingHead * 2 > pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
        return settled
    }
}
