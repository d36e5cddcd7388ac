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
    /// Entries kept in memory, settled ones not yet compacted away included.
    var storedCount: Int { entries.count }

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
///
/// Replies are encoded into the connection's write buffer and `flush()`
/// writes them with one non-blocking send per loop turn
/// (AMQPConnection+BatchedWrites.swift), on TLS through the connection's
/// OpenSSL session. Only if that session cannot be found is each reply a
/// library publish (a write to a full socket would then block the loop inside
/// rabbitmq-c), written only when the socket has room.
///
/// A broker under a memory or disk alarm stops reading from publishers:
/// after connection.blocked, and whenever the write buffer or the socket is
/// full, replies wait in the outbox, in order, and `flush()` sends them when
/// the loop sees the socket writable again.
final class ReplyPublisher {
    private struct Outgoing {
        var kind: ReplyKind
        var body: [UInt8]
        var address: ReplyAddress
        var seq: Int64
        var deliveryTag: UInt64?
        /// The request's chunk properties, built once (chunks only).
        var prepared: AMQPPreparedProperties?
    }

    let connection: AMQPConnection
    private var lastSequence: UInt64 = 0
    private var pending = PendingConfirms()
    private var outbox: [Outgoing] = []
    private var outboxHead = 0
    /// The broker said connection.blocked (an alarm); nothing is written until unblocked.
    var isBlocked = false

    init(connection: AMQPConnection) throws(AMQPError) {
        self.connection = connection
        try connection.enablePublisherConfirms()
        connection.batchesWrites = true  // flush() runs every loop turn
    }

    /// Final replies written but not yet confirmed, plus replies still waiting to be written.
    var unconfirmedFinals: Int { pending.count + (outbox.count - outboxHead) }

    /// Replies waiting for the socket or for the broker to unblock.
    var hasBacklog: Bool { outboxHead < outbox.count || connection.hasUnsentFrames }

    /// Bytes of replies not yet written: encoded ones plus the outbox's bodies.
    var backlogBytes: Int { connection.unsentByteCount + outboxBytes }
    private var outboxBytes = 0

    /// Whether the loop should wake when the socket becomes writable: bytes
    /// are waiting for it, or replies are and the broker is not blocking us
    /// (while blocked, a writable socket is no reason to wake).
    var waitsForWritable: Bool { connection.hasUnsentFrames || (outboxHead < outbox.count && !isBlocked) }

    /// Encoded replies beyond this wait in the outbox instead (as messages,
    /// not bytes), so a stalled socket doesn't pile up frames.
    private static let maxUnsentBytes = 256 * 1024

    /// Whether replies are encoded here and written in batches (plain TCP);
    /// prepared properties are only used otherwise.
    var writesInBatches: Bool { connection.writesInBatches }

    /// Publishes one reply, or queues it behind earlier ones. Final replies are
    /// persistent and remembered until confirmed; chunks are transient.
    func publish(
        _ kind: ReplyKind, body: [UInt8], to address: ReplyAddress, seq: Int64, settling deliveryTag: UInt64?,
        prepared: AMQPPreparedProperties? = nil
    ) throws(AMQPError) {
        let reply = Outgoing(
            kind: kind, body: body, address: address, seq: seq, deliveryTag: deliveryTag, prepared: prepared)
        if outboxHead < outbox.count || isBlocked || !hasRoom(for: body.count) {
            outbox.append(reply)
            outboxBytes += body.count
            return
        }
        try write(reply)
    }

    /// Writes what is encoded and queued replies while the socket has room;
    /// call once per loop turn, and when the socket is writable or the broker unblocked.
    func flush() throws(AMQPError) {
        let batched = connection.writesInBatches
        if batched, connection.hasUnsentFrames, !(try connection.writeUnsent()) { return }
        while outboxHead < outbox.count, !isBlocked, hasRoom(for: outbox[outboxHead].body.count) {
            try write(outbox[outboxHead])
            outboxBytes -= outbox[outboxHead].body.count
            outbox[outboxHead].body = []
            outboxHead += 1
        }
        if outboxHead == outbox.count {
            outbox.removeAll(keepingCapacity: true)
            outboxHead = 0
        }
        if batched, connection.hasUnsentFrames { try connection.writeUnsent() }
    }

    /// The properties of every reply of `kind` to `address`, built once; `x-seq` is set per publish.
    static func prepareProperties(_ kind: ReplyKind, to address: ReplyAddress) -> AMQPPreparedProperties {
        AMQPPreparedProperties(routingKey: address.replyTo, properties(kind, to: address, seq: 0))
    }

    private static func properties(_ kind: ReplyKind, to address: ReplyAddress, seq: Int64) -> AMQPOutgoingProperties {
        AMQPOutgoingProperties(
            contentType: "application/json", correlationID: address.correlationID, type: kind.rawValue,
            persistent: kind.isFinal,
            headers: [
                ("x-request-id", .string(address.requestID)),
                ("x-seq", .int(seq)),
                ("x-attempt", .int(Int64(address.attempt))),
            ])
    }

    /// Bytes written since the socket last reported room. A writable TCP socket
    /// has at least a third of its send buffer free (16 KiB at the least by
    /// default), so replies adding up to less than `assumedRoom` after a check
    /// cannot block: most chunks are written without a poll system call.
    private var writtenSinceCheck = Int.max
    private static let assumedRoom = 4096

    private func hasRoom(for bytes: Int) -> Bool {
        if connection.writesInBatches { return connection.unsentByteCount < Self.maxUnsentBytes }
        // Frame headers and properties add a few hundred bytes to the body.
        if writtenSinceCheck <= Self.assumedRoom - bytes - 512 { return true }
        guard connection.isWritable() else { return false }
        writtenSinceCheck = 0
        return true
    }

    private func write(_ reply: Outgoing) throws(AMQPError) {
        writtenSinceCheck &+= reply.body.count + 512
        // Mandatory: a reply to a queue that no longer exists comes back as basic.return.
        if connection.writesInBatches {
            // The same properties as `properties(_:to:seq:)`, written straight into the frame.
            try connection.enqueuePublish(routingKey: reply.address.replyTo, mandatory: true, body: reply.body) {
                $0.contentType("application/json")
                $0.headers { headers in
                    headers.string("x-request-id", reply.address.requestID)
                    headers.int64("x-seq", reply.seq)
                    headers.int64("x-attempt", Int64(reply.address.attempt))
                }
                $0.deliveryMode(reply.kind.isFinal ? 2 : 1)
                $0.correlationID(reply.address.correlationID)
                $0.type(reply.kind.rawValue)
            }
        } else if let prepared = reply.prepared {
            prepared.setInteger(reply.seq, forHeader: "x-seq")
            try connection.publish(prepared: prepared, mandatory: true, body: reply.body)
        } else {
            let properties = Self.properties(reply.kind, to: reply.address, seq: reply.seq)
            try connection.publish(
                routingKey: reply.address.replyTo, mandatory: true, properties: properties, body: reply.body)
        }
        lastSequence += 1
        if let deliveryTag = reply.deliveryTag { pending.append(sequence: lastSequence, deliveryTag: deliveryTag) }
    }

    /// Ends the connection at exit. One that still holds replies, waits for
    /// confirms or is blocked by the broker is given up rather than closed:
    /// a clean close would wait for a broker that is not answering it.
    func close(timeout: Double) {
        if isBlocked || unconfirmedFinals > 0 || hasBacklog {
            connection.abandon()
        } else {
            connection.close(timeout: timeout)
        }
    }

    /// Applies a basic.ack or basic.nack from the broker.
    func handleConfirm(deliveryTag: UInt64, multiple: Bool, confirmed: Bool) -> [PendingConfirms.Settlement] {
        pending.confirm(deliveryTag, multiple: multiple, confirmed: confirmed)
    }
}
