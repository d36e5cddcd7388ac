import ChatQueueAMQP
import ChatQueueCore

/// The kinds of reply, sent as the AMQP `type` property.
enum ReplyKind: String, Sendable {
    case chunk = "chat.completion.chunk"
    case completion = "chat.completion"
    case error = "error"

    var isFinal: Bool { self != .chunk }

    /// The type of a final reply of the request state machine.
    init(_ final: RequestStateMachine.FinalKind) {
        self = final == .completion ? .completion : .error
    }
}

/// Where one reply goes and what identifies it on the wire.
struct ReplyAddress: Sendable {
    var replyTo: String
    var requestID: String
    var correlationID: String
    var attempt: Int
    /// W3C trace context on every reply of a traced request: the worker's span as the parent.
    var traceparent: String?
    var tracestate: String?
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

    /// The delivery tags of the finals still waiting for a confirm, in publish order.
    var waitingDeliveryTags: [UInt64] { entries[head...].map(\.deliveryTag) }

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
/// OpenSSL session.
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

    /// Publishes one reply, or queues it behind earlier ones. Final replies are
    /// persistent and remembered until confirmed; chunks are transient.
    func publish(
        _ kind: ReplyKind, body: [UInt8], to address: ReplyAddress, seq: Int64, settling deliveryTag: UInt64?
    ) throws(AMQPError) {
        let reply = Outgoing(kind: kind, body: body, address: address, seq: seq, deliveryTag: deliveryTag)
        if outboxHead < outbox.count || isBlocked || !hasRoom {
            outbox.append(reply)
            outboxBytes += body.count
            return
        }
        try write(reply)
    }

    /// Writes what is encoded and queued replies while the socket has room;
    /// call once per loop turn, and when the socket is writable or the broker unblocked.
    func flush() throws(AMQPError) {
        if connection.hasUnsentFrames, !(try connection.writeUnsent()) { return }
        while outboxHead < outbox.count, !isBlocked, hasRoom {
            try write(outbox[outboxHead])
            outboxBytes -= outbox[outboxHead].body.count
            outbox[outboxHead].body = []
            outboxHead += 1
        }
        if outboxHead == outbox.count {
            outbox.removeAll(keepingCapacity: true)
            outboxHead = 0
        }
        if connection.hasUnsentFrames { try connection.writeUnsent() }
    }

    /// Whether the write buffer takes another reply now.
    private var hasRoom: Bool { connection.unsentByteCount < Self.maxUnsentBytes }

    /// Encodes one reply into the connection's write buffer. Its properties
    /// are described here and nowhere else (docs/protocol.md "Replies").
    private func write(_ reply: Outgoing) throws(AMQPError) {
        // Mandatory: a reply to a queue that no longer exists comes back as basic.return.
        try connection.enqueuePublish(routingKey: reply.address.replyTo, mandatory: true, body: reply.body) {
            $0.contentType("application/json")
            $0.headers { headers in
                headers.string("x-request-id", reply.address.requestID)
                headers.int64("x-seq", reply.seq)
                headers.int64("x-attempt", Int64(reply.address.attempt))
                if let traceparent = reply.address.traceparent {
                    headers.string("traceparent", traceparent)
                    if let tracestate = reply.address.tracestate { headers.string("tracestate", tracestate) }
                }
            }
            $0.deliveryMode(reply.kind.isFinal ? 2 : 1)
            $0.correlationID(reply.address.correlationID)
            $0.type(reply.kind.rawValue)
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

    /// Takes over what an older publisher still held when it was replaced
    /// (after a refused final, `Worker.replacePublisher`): its replies not yet
    /// written, in order, ahead of any new one. Its written finals awaiting a
    /// confirm are not carried over: they are settled by the old connection's
    /// confirms while it closes, or published again if it closes without them.
    func adoptBacklog(of old: ReplyPublisher) throws(AMQPError) {
        precondition(!old.connection.hasUnsentFrames, "a publisher is replaced only once its encoded bytes are written")
        // Published here first, taken from the old one only then: a failure leaves the old one whole.
        for reply in old.outbox[old.outboxHead...] {
            try publish(reply.kind, body: reply.body, to: reply.address, seq: reply.seq, settling: reply.deliveryTag)
        }
        old.outbox.removeAll()
        old.outboxHead = 0
        old.outboxBytes = 0
    }

    /// The delivery tags of the finals written but not yet confirmed or refused.
    var unconfirmedDeliveryTags: [UInt64] { pending.waitingDeliveryTags }

    /// Applies a basic.ack or basic.nack from the broker.
    func handleConfirm(deliveryTag: UInt64, multiple: Bool, confirmed: Bool) -> [PendingConfirms.Settlement] {
        pending.confirm(deliveryTag, multiple: multiple, confirmed: confirmed)
    }
}
