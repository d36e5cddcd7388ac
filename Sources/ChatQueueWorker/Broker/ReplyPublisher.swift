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

/// Final replies waiting for their publisher confirm, in publish order. Pure.
/// The broker confirms by sequence number, one at a time or `multiple` (all up
/// to a number); a final reply's delivery is settled only then.
struct PendingConfirms {
    struct Entry: Equatable {
        var sequence: UInt64
        var deliveryTag: UInt64
    }

    /// A confirm (or nack) of a final reply.
    struct Settlement: Equatable {
        var deliveryTag: UInt64
        /// False when the broker nacked the publish (it was not stored).
        var confirmed: Bool
    }

    private var entries: [Entry] = []
    private var head = 0

    var count: Int { entries.count - head }

    mutating func append(sequence: UInt64, deliveryTag: UInt64) {
        entries.append(Entry(sequence: sequence, deliveryTag: deliveryTag))
    }

    /// Applies a basic.ack or basic.nack; returns what it settles, in publish order.
    mutating func confirm(_ sequence: UInt64, multiple: Bool, confirmed: Bool) -> [Settlement] {
        var settled: [Settlement] = []
        if multiple {
            while head < entries.count, entries[head].sequence <= sequence {
                settled.append(Settlement(deliveryTag: entries[head].deliveryTag, confirmed: confirmed))
                head += 1
            }
        } else if let index = entries[head...].firstIndex(where: { $0.sequence == sequence }) {
            settled.append(Settlement(deliveryTag: entries[index].deliveryTag, confirmed: confirmed))
            if index == head { head += 1 } else { entries.remove(at: index) }
        }
        // Compact now and then so the array does not grow without bound.
        if head > 1024, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return settled
    }
}

/// Publishes replies on the publishing connection, which is in confirm mode,
/// and tracks which final replies the broker has confirmed. Sequence numbers
/// count every publish on the channel from 1, as the broker does.
final class ReplyPublisher {
    let connection: AMQPConnection
    private var lastSequence: UInt64 = 0
    private var pending = PendingConfirms()

    init(connection: AMQPConnection) throws(AMQPError) {
        self.connection = connection
        try connection.enablePublisherConfirms()
    }

    var unconfirmedFinals: Int { pending.count }

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
        if let deliveryTag { pending.append(sequence: lastSequence, deliveryTag: deliveryTag) }
        return lastSequence
    }

    /// Applies a basic.ack or basic.nack from the broker.
    func handleConfirm(deliveryTag: UInt64, multiple: Bool, confirmed: Bool) -> [PendingConfirms.Settlement] {
        pending.confirm(deliveryTag, multiple: multiple, confirmed: confirmed)
    }
}
