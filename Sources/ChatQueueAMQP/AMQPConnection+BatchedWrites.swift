import CRabbitMQ

#if canImport(Glibc)
import Glibc
#endif

/// Publishing in batches: `enqueuePublish` encodes a message's frames into a
/// buffer and `writeUnsent` writes everything queued with one non-blocking
/// send, so a loop turn that forwards many chunks makes one system call
/// instead of three per message, and a full socket never blocks the loop:
/// what the socket does not take waits for it to become writable.
///
/// Plain TCP only: on TLS the bytes must go through OpenSSL inside
/// rabbitmq-c, so TLS connections publish message by message.
extension AMQPConnection {
    /// Whether `enqueuePublish` can be used on this connection.
    public var writesInBatches: Bool { !options.tls }

    /// Encoded frames not yet written. While there are any, the connection
    /// reads nothing (rabbitmq-c may write a heartbeat inside `readFrame`,
    /// which must not land in the middle of a frame of ours).
    public var hasUnsentFrames: Bool { unsentHead < unsent.count }

    public var unsentByteCount: Int { unsent.count - unsentHead }

    /// Encodes a `basic.publish` through the default exchange on channel 1;
    /// `writeUnsent()` sends it. Confirm sequence numbers count it in
    /// enqueue order, like any publish.
    public func enqueuePublish(prepared: AMQPPreparedProperties, mandatory: Bool, body: [UInt8]) throws(AMQPError) {
        precondition(writesInBatches, "enqueuePublish on a TLS connection")
        let frameMax = Int(amqp_get_frame_max(state))
        let status = body.withUnsafeBytes { bytes in
            AMQPFrameEncoder.appendPublish(
                routingKey: prepared.routingKey, mandatory: mandatory, properties: prepared.properties, body: bytes,
                channel: Self.channel, frameMax: frameMax, to: &unsent)
        }
        guard status >= 0 else {
            throw AMQPError.status(status, context: "basic.publish to \(String(amqpBytes: prepared.routingKey))")
        }
    }

    /// Writes what the socket takes now. Returns true when nothing is left.
    @discardableResult
    public func writeUnsent() throws(AMQPError) -> Bool {
        let descriptor = socketDescriptor
        while unsentHead < unsent.count {
            let written = unsent.withUnsafeBytes { buffer in
                send(
                    descriptor, buffer.baseAddress! + unsentHead, buffer.count - unsentHead,
                    Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if written > 0 {
                unsentHead += written
                continue
            }
            let error = errno
            if written < 0 && error == EINTR { continue }
            if written < 0 && (error == EAGAIN || error == EWOULDBLOCK) { return false }
            throw AMQPError(
                code: .socket, message: written == 0 ? "connection closed" : String(cString: strerror(error)),
                context: "amqp write")
        }
        // A burst can grow the buffer a lot; don't keep a large one around.
        if unsent.capacity > 1 << 20 {
            unsent = []
        } else {
            unsent.removeAll(keepingCapacity: true)
        }
        unsentHead = 0
        return true
    }
}
