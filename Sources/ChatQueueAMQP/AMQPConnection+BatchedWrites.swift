import CRabbitMQ
import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// Writing in batches: `enqueuePublish`, and `ack` / `reject` / `nack` with
/// `queuesSettlements`, encode frames into a buffer and `writeUnsent` writes
/// everything queued with one non-blocking send, so a loop turn that forwards
/// many chunks or settles many deliveries makes one system call instead of
/// one per frame (three per message), and a full socket never blocks the
/// loop: what the socket does not take waits for it to become writable. The
/// owner calls `writeUnsent()` every loop turn.
///
/// On TLS the bytes go through rabbitmq-c's OpenSSL session with
/// non-blocking `SSL_write`s (CRabbitMQ/shim.h): a record the socket did not
/// take stays inside OpenSSL, is retried with the same bytes once the socket
/// is writable, and meanwhile nothing else may write on the connection
/// (`isWaitingForRoom`), exactly as a partly written frame on plain TCP.
extension AMQPConnection {
    /// Encoded frames not yet written.
    public var hasUnsentFrames: Bool { !unsent.isEmpty }

    /// The socket refused queued bytes and they wait for room (the stream may
    /// also end inside a frame of ours). Until they are written the
    /// connection reads nothing and its owner should wait for the socket to
    /// become writable, not readable: rabbitmq-c may write a heartbeat inside
    /// `readFrame`, which would land inside our frame, or block on the full
    /// socket. (Queued bytes not yet tried are no obstacle: a heartbeat just
    /// goes first.)
    public var isWaitingForRoom: Bool { unsent.isWaitingForRoom }

    public var unsentByteCount: Int { unsent.count }

    /// Encodes a `basic.publish` through the default exchange on channel 1;
    /// `writeUnsent()` sends it. Confirm sequence numbers count it in
    /// enqueue order, like any publish.
    public func enqueuePublish(
        routingKey: String, mandatory: Bool, body: [UInt8], properties: (inout AMQPPropertiesWriter) -> Void
    ) throws(AMQPError) {
        let frameMax = Int(amqp_get_frame_max(state))
        let status = body.withUnsafeBytes { bytes in
            AMQPFrameEncoder.appendPublish(
                routingKey: routingKey, mandatory: mandatory, body: bytes, channel: Self.channel, frameMax: frameMax,
                to: &unsent.bytes, properties: properties)
        }
        guard status >= 0 else {
            throw AMQPError(
                code: .library(status: status), message: "a property or the routing key is longer than 255 bytes",
                context: "basic.publish to \(routingKey)")
        }
    }

    /// basic.ack (bits: multiple), basic.reject (requeue) or basic.nack
    /// (multiple, requeue): a delivery tag and one octet of flags.
    func enqueueSettlement(_ method: amqp_method_number_t, deliveryTag: UInt64, bits: UInt8) {
        AMQPFrameEncoder.appendSettlement(method, deliveryTag: deliveryTag, bits: bits, channel: Self.channel, to: &unsent.bytes)
    }

    /// Writes everything queued before rabbitmq-c writes on this connection
    /// itself (an RPC such as basic.consume), waiting for the socket up to the
    /// RPC timeout: its frames must not land inside ours.
    func writeAllUnsent(timeout: Double? = nil) throws(AMQPError) {
        guard hasUnsentFrames else { return }
        let limit = timeout ?? options.rpcTimeout
        let start = MonotonicClock.now()
        while !(try writeUnsent()) {
            let left = limit - Double(MonotonicClock.now() &- start) / 1e9
            guard left > 0 else {
                throw AMQPError(code: .socket, message: "socket not writable for \(limit) s", context: "amqp write")
            }
            _ = try pollSocket(events: POLLOUT, timeout: min(left, 1))
        }
    }

    /// Writes what the socket takes now. Returns true when nothing is left.
    @discardableResult
    public func writeUnsent() throws(AMQPError) -> Bool {
        let descriptor = socketDescriptor
        // rabbitmq-c closed the socket (heartbeat timeout), and a TLS session with it.
        guard descriptor >= 0 else {
            throw AMQPError(code: .socket, message: "connection closed", context: "\(context) write")
        }
        guard let session = tlsSession else { return try unsent.write(to: descriptor) }
        return try unsent.write { bytes, count in
            let written = cq_ssl_write(session, bytes, count)
            if written > 0 { return .wrote(written) }
            switch written {
            case CQ_TLS_WANT_WRITE: return .full
            // Renegotiation mid-write needs a read, which must wait for this write: RabbitMQ never asks for one.
            case CQ_TLS_WANT_READ: return .failed("TLS renegotiation during a write")
            case CQ_TLS_CLOSED: return .failed("connection closed")
            case CQ_TLS_SYSCALL:
                let code = errno
                return code == 0 ? .failed("connection closed") : .failedCall(SystemError(call: "SSL_write", errno: code))
            default: return .failed("TLS error")
            }
        }
    }
}

/// Bytes queued for a non-blocking socket, written from the front; what the
/// socket does not take stays for the next call, in order.
struct OutgoingBytes {
    var bytes: [UInt8] = []
    /// Bytes before this were written.
    private(set) var head = 0

    var isEmpty: Bool { head == bytes.count }
    var count: Int { bytes.count - head }
    /// The last write stopped because the socket was full; bytes are left.
    private(set) var isWaitingForRoom = false

    /// Writes as much as `descriptor` takes without blocking. Returns true when
    /// everything went out; false when the socket is full (call again once it
    /// is writable); throws when the connection failed.
    mutating func write(to descriptor: Int32) throws(AMQPError) -> Bool {
        try write { bytes, count in
            let result: IOResult<Int>
            do throws(SystemError) {
                // EBADF is the connection's failure, not our bug: rabbitmq-c may
                // have closed its socket (a heartbeat timeout) and still report it.
                result = try nonBlockingSystemCall("send", allowing: EBADF) {
                    send(descriptor, bytes, count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                }
            } catch {
                return .failedCall(error)
            }
            switch result {
            case .processed(let written): return written > 0 ? .wrote(written) : .failed("connection closed")
            case .wouldBlock: return .full
            }
        }
    }

    /// What one non-blocking write of the bytes from the head did.
    enum WriteResult {
        case wrote(Int)
        /// Nothing taken now; after a partial TLS record, the retry must pass the same bytes.
        case full
        /// The connection is unusable (closed, a TLS error).
        case failed(String)
        /// The write's system call failed (a reset, a broken pipe).
        case failedCall(SystemError)
    }

    /// Writes from the head with `write` (given the unwritten bytes) until all
    /// are out or it reports the socket full. Returns true when everything went out.
    mutating func write(_ write: (UnsafeRawPointer, Int) -> WriteResult) throws(AMQPError) -> Bool {
        while head < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in write(buffer.baseAddress! + head, buffer.count - head) }
            switch result {
            case .wrote(let count):
                head += count
            case .full:
                isWaitingForRoom = true
                return false
            case .failed(let reason):
                throw AMQPError(code: .socket, message: reason, context: "amqp write")
            case .failedCall(let error):
                throw AMQPError.socket(error, context: "amqp write")
            }
        }
        // A burst can grow the buffer a lot; don't keep a large one around.
        if bytes.capacity > 1 << 20 {
            bytes = []
        } else {
            bytes.removeAll(keepingCapacity: true)
        }
        head = 0
        isWaitingForRoom = false
        return true
    }
}
