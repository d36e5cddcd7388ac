import CRabbitMQ

#if canImport(Glibc)
import Glibc
#endif

/// Where and how to connect.
public struct AMQPConnectionOptions: Sendable {
    public var host: String
    public var port: Int
    public var vhost: String
    public var user: String
    public var password: String
    public var tls: Bool
    /// CA bundle for verifying the broker's certificate (TLS only).
    public var caFile: String?
    /// Client certificate and key for mutual TLS.
    public var certFile: String?
    public var keyFile: String?
    /// Verify the broker's certificate and host name (TLS only).
    public var verifyPeer: Bool
    /// Seconds; 0 disables heartbeats.
    public var heartbeat: Int
    /// Seconds for TCP connect plus the AMQP handshake.
    public var connectTimeout: Double
    /// Seconds to wait for the answer to a synchronous method (declare, consume, ...).
    public var rpcTimeout: Double
    /// Shown as the connection's name in rabbitmqctl and the management UI.
    public var connectionName: String

    /// Debian's CA bundle; rabbitmq-c verifies against no CA at all unless given one.
    public static let systemCABundle = "/etc/ssl/certs/ca-certificates.crt"

    public init(
        host: String = "127.0.0.1", port: Int = 5672, vhost: String = "/", user: String = "guest",
        password: String = "guest", tls: Bool = false, caFile: String? = nil, certFile: String? = nil,
        keyFile: String? = nil, verifyPeer: Bool = true, heartbeat: Int = 30, connectTimeout: Double = 10,
        rpcTimeout: Double = 30, connectionName: String = "chatqueue"
    ) {
        self.host = host
        self.port = port
        self.vhost = vhost
        self.user = user
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.verifyPeer = verifyPeer
        self.heartbeat = heartbeat
        self.connectTimeout = connectTimeout
        self.rpcTimeout = rpcTimeout
        self.connectionName = connectionName
    }
}

/// The properties of a message the worker publishes.
public struct AMQPOutgoingProperties: Sendable {
    public var contentType: String?
    public var correlationID: String?
    public var messageID: String?
    public var replyTo: String?
    public var type: String?
    /// delivery_mode 2 (survives a broker restart) instead of 1.
    public var persistent: Bool
    public var expiration: String?
    public var headers: [(String, AMQPFieldValue)]

    public init(
        contentType: String? = nil, correlationID: String? = nil, messageID: String? = nil,
        replyTo: String? = nil, type: String? = nil, persistent: Bool = false, expiration: String? = nil,
        headers: [(String, AMQPFieldValue)] = []
    ) {
        self.contentType = contentType
        self.correlationID = correlationID
        self.messageID = messageID
        self.replyTo = replyTo
        self.type = type
        self.persistent = persistent
        self.expiration = expiration
        self.headers = headers
    }
}

/// One AMQP connection with one channel (number 1), owning its
/// `amqp_connection_state_t`. Not thread-safe: it belongs to the event loop
/// thread. Synchronous methods (declare, consume, ...) are for set-up; at run
/// time the loop reads frames with `readFrame()` only when the socket is
/// readable or the library holds buffered input, and never blocks on reads.
public final class AMQPConnection {
    public static let channel: amqp_channel_t = 1

    public let options: AMQPConnectionOptions
    let state: amqp_connection_state_t
    private var isOpen = false
    /// Reused scratch memory for building outgoing properties and tables.
    private var arena = ByteArena()
    /// Frames encoded here and not yet written (see AMQPConnection+BatchedWrites.swift).
    var unsent = OutgoingBytes()
    /// Set by the owner that calls `writeUnsent()` every loop turn (see `writesInBatches`).
    public var batchesWrites = false
    /// The TLS session rabbitmq-c opened (amqps:// only), for writing our
    /// encoded frames through it without blocking (AMQPConnection+BatchedWrites.swift).
    var tlsSession: UnsafeMutableRawPointer?

    /// Connects, logs in and opens channel 1.
    public init(options: AMQPConnectionOptions) throws(AMQPError) {
        guard let state = amqp_new_connection() else {
            fatalError("amqp_new_connection: out of memory")
        }
        self.options = options
        self.state = state
        try open()
    }

    deinit {
        // Best effort, never waiting for the socket: queued acks first, then a
        // clean close, which tells the broker to requeue at once. Not after a
        // partly written frame of ours, nor into a full socket.
        if hasUnsentFrames { _ = try? writeUnsent() }
        if isOpen && !hasUnsentFrames {
            _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
        amqp_destroy_connection(state)
    }

    private var context: String { "amqp \(options.tls ? "amqps" : "amqp")://\(options.host):\(options.port)" }

    private func open() throws(AMQPError) {
        let socket: OpaquePointer?
        if options.tls {
            socket = amqp_ssl_socket_new(state)
            guard let socket else { throw AMQPError(code: .connect, message: "cannot create TLS socket", context: context) }
            amqp_ssl_socket_set_verify_peer(socket, options.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, options.verifyPeer ? 1 : 0)
            if let caFile = options.caFile {
                try check(amqp_ssl_socket_set_cacert(socket, caFile), "TLS CA file \(caFile)", code: .connect)
            }
            if let certFile = options.certFile, let keyFile = options.keyFile {
                try check(amqp_ssl_socket_set_key(socket, certFile, keyFile), "TLS client certificate", code: .connect)
            }
            cq_amqp_ssl_prepare(socket)
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else { throw AMQPError(code: .connect, message: "cannot create socket", context: context) }

        var timeout = timeval(seconds: options.connectTimeout)
        try check(
            amqp_socket_open_noblock(socket, options.host, Int32(options.port), &timeout), "connect", code: .connect)
        if options.tls {
            tlsSession = cq_amqp_ssl_session(socket)
            // Our TLS writes rely on it; rabbitmq-c 0.11 leaves its sockets non-blocking and polls itself.
            let descriptor = amqp_get_sockfd(state)
            let flags = fcntl(descriptor, F_GETFL)
            if flags >= 0, flags & O_NONBLOCK == 0 { _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) }
        }
        try check(amqp_set_handshake_timeout(state, &timeout), "handshake timeout", code: .connect)
        var rpcTimeout = timeval(seconds: options.rpcTimeout)
        try check(amqp_set_rpc_timeout(state, &rpcTimeout), "rpc timeout", code: .connect)

        let login = withClientProperties { properties in
            cq_amqp_login_plain_with_properties(
                state, options.vhost, 1, 131_072, Int32(options.heartbeat), properties, options.user, options.password)
        }
        try checkReply(login, "login as \(options.user) to vhost \(options.vhost)", code: .login)
        isOpen = true

        _ = amqp_channel_open(state, Self.channel)
        try checkReply(amqp_get_rpc_reply(state), "channel.open")
    }

    /// The capabilities rabbitmq-c 0.11 does not announce by itself. Without
    /// them the broker sends neither connection.blocked (it just stops reading
    /// from a publisher under an alarm) nor basic.cancel when it drops a consumer.
    static let extraCapabilities = ["connection.blocked", "consumer_cancel_notify", "publisher_confirms", "basic.nack"]

    /// Builds the client-properties table for the login call: connection_name
    /// and the capabilities above (the library merges them with its own).
    private func withClientProperties<R>(_ body: (UnsafePointer<amqp_table_t>) -> R) -> R {
        arena.reset()
        let nameKey = arena.append("connection_name")
        let nameValue = arena.append(options.connectionName)
        let capabilitiesKey = arena.append("capabilities")
        let capabilityKeys = Self.extraCapabilities.map { arena.append($0) }
        return arena.withBytes { base in
            var capabilities = capabilityKeys.map { key -> amqp_table_entry_t in
                var entry = amqp_table_entry_t()
                entry.key = base.amqpBytes(key)
                entry.value.kind = UInt8(ascii: "t")
                entry.value.value.boolean = 1
                return entry
            }
            return capabilities.withUnsafeMutableBufferPointer { capabilityEntries in
                var entries = [amqp_table_entry_t](repeating: amqp_table_entry_t(), count: 2)
                entries[0].key = base.amqpBytes(nameKey)
                entries[0].value.kind = UInt8(ascii: "S")
                entries[0].value.value.bytes = base.amqpBytes(nameValue)
                entries[1].key = base.amqpBytes(capabilitiesKey)
                entries[1].value.kind = UInt8(ascii: "F")
                entries[1].value.value.table = amqp_table_t(
                    num_entries: Int32(capabilityEntries.count), entries: capabilityEntries.baseAddress)
                return entries.withUnsafeMutableBufferPointer { topLevel in
                    var table = amqp_table_t(num_entries: Int32(topLevel.count), entries: topLevel.baseAddress)
                    return body(&table)
                }
            }
        }
    }

    // MARK: - Set-up (synchronous)

    public func declareExchange(_ name: String, type: String, durable: Bool = true) throws(AMQPError) {
        arena.reset()
        let nameRange = arena.append(name)
        let typeRange = arena.append(type)
        arena.withBytes { base in
            _ = amqp_exchange_declare(
                state, Self.channel, base.amqpBytes(nameRange), base.amqpBytes(typeRange), 0, durable ? 1 : 0, 0, 0,
                amqp_empty_table)
        }
        try checkReply(amqp_get_rpc_reply(state), "exchange.declare \(name)")
    }

    /// Declares a queue; with an empty name the broker picks one, which is returned.
    @discardableResult
    public func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: [(String, AMQPFieldValue)] = []
    ) throws(AMQPError) -> String {
        arena.reset()
        let nameRange = arena.append(name)
        let declared: String? = withTable(arguments) { base, table in
            guard
                let ok = amqp_queue_declare(
                    state, Self.channel, base.amqpBytes(nameRange), 0, durable ? 1 : 0, exclusive ? 1 : 0,
                    autoDelete ? 1 : 0, table)
            else { return nil }
            return String(amqpBytes: ok.pointee.queue)
        }
        try checkReply(amqp_get_rpc_reply(state), "queue.declare \(name)")
        return declared ?? name
    }

    public func bindQueue(_ queue: String, exchange: String, routingKey: String = "") throws(AMQPError) {
        arena.reset()
        let q = arena.append(queue)
        let e = arena.append(exchange)
        let k = arena.append(routingKey)
        arena.withBytes { base in
            _ = amqp_queue_bind(
                state, Self.channel, base.amqpBytes(q), base.amqpBytes(e), base.amqpBytes(k), amqp_empty_table)
        }
        try checkReply(amqp_get_rpc_reply(state), "queue.bind \(queue) to \(exchange)")
    }

    public func deleteQueue(_ queue: String) throws(AMQPError) {
        arena.reset()
        let q = arena.append(queue)
        arena.withBytes { base in _ = amqp_queue_delete(state, Self.channel, base.amqpBytes(q), 0, 0) }
        try checkReply(amqp_get_rpc_reply(state), "queue.delete \(queue)")
    }

    /// Messages ready in an existing queue (a passive declare; fails if it does not exist).
    public func messageCount(queue: String) throws(AMQPError) -> Int {
        arena.reset()
        let q = arena.append(queue)
        let count: Int? = arena.withBytes { base in
            guard let ok = amqp_queue_declare(state, Self.channel, base.amqpBytes(q), 1, 0, 0, 0, amqp_empty_table) else {
                return nil
            }
            return Int(ok.pointee.message_count)
        }
        try checkReply(amqp_get_rpc_reply(state), "queue.declare passive \(queue)")
        return count ?? 0
    }

    public func deleteExchange(_ exchange: String) throws(AMQPError) {
        arena.reset()
        let e = arena.append(exchange)
        arena.withBytes { base in _ = amqp_exchange_delete(state, Self.channel, base.amqpBytes(e), 0) }
        try checkReply(amqp_get_rpc_reply(state), "exchange.delete \(exchange)")
    }

    public func setPrefetch(_ count: Int) throws(AMQPError) {
        try writeAllUnsent()
        _ = amqp_basic_qos(state, Self.channel, 0, UInt16(clamping: count), 0)
        try checkReply(amqp_get_rpc_reply(state), "basic.qos \(count)")
    }

    /// Starts a consumer and returns its tag. Deliveries then arrive through `readFrame()`.
    public func consume(queue: String, noAck: Bool = false, exclusive: Bool = false) throws(AMQPError) -> String {
        try writeAllUnsent()
        arena.reset()
        let q = arena.append(queue)
        let tag: String? = arena.withBytes { base in
            guard
                let ok = amqp_basic_consume(
                    state, Self.channel, base.amqpBytes(q), amqp_empty_bytes, 0, noAck ? 1 : 0, exclusive ? 1 : 0,
                    amqp_empty_table)
            else { return nil }
            return String(amqpBytes: ok.pointee.consumer_tag)
        }
        try checkReply(amqp_get_rpc_reply(state), "basic.consume \(queue)")
        return tag ?? ""
    }

    /// Asks the broker to stop delivering; sent without waiting for cancel-ok,
    /// which arrives through `readFrame()` after any deliveries still in flight.
    public func cancel(consumerTag: String) throws(AMQPError) {
        try writeAllUnsent()
        arena.reset()
        let t = arena.append(consumerTag)
        let status = arena.withBytes { base in
            var method = amqp_basic_cancel_t(consumer_tag: base.amqpBytes(t), nowait: 0)
            return amqp_send_method(state, Self.channel, CQ_BASIC_CANCEL, &method)
        }
        try check(status, "basic.cancel \(consumerTag)")
    }

    /// Puts the channel in confirm mode: the broker acks every publish by sequence number (from 1).
    public func enablePublisherConfirms() throws(AMQPError) {
        _ = amqp_confirm_select(state, Self.channel)
        try checkReply(amqp_get_rpc_reply(state), "confirm.select")
    }

    // MARK: - Run time

    /// The socket, for the event loop's poll set.
    public var socketDescriptor: Int32 { amqp_get_sockfd(state) }

    /// Input the library already read from the socket (whole frames queued by
    /// a synchronous call, or bytes in its buffer): poll would not report it,
    /// so the loop drains it before waiting.
    /// While our bytes wait for room nothing is read (see `readFrame`), so
    /// buffered input does not count then.
    public var hasBufferedInput: Bool {
        !isWaitingForRoom && (amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0)
    }

    /// Reads one frame if one is available now; never waits. Also sends a
    /// heartbeat when one is due and detects a silent broker.
    public func readFrame() throws(AMQPError) -> AMQPFrame? {
        // The library may write a heartbeat while reading: see `isWaitingForRoom`.
        if isWaitingForRoom { return nil }
        var frame = amqp_frame_t()
        let status = cq_amqp_read_frame_now(state, &frame)
        if status == Int32(AMQP_STATUS_TIMEOUT.rawValue) { return nil }
        try check(status, "read frame")
        defer { amqp_maybe_release_buffers(state) }
        return try copyFrame(frame)
    }

    private func copyFrame(_ frame: amqp_frame_t) throws(AMQPError) -> AMQPFrame? {
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            let method = copyMethod(frame.payload.method)
            switch method {
            case .channelClose:
                var ok = amqp_channel_close_ok_t(dummy: 0)
                _ = amqp_send_method(state, frame.channel, CQ_CHANNEL_CLOSE_OK, &ok)
            case .connectionClose:
                var ok = amqp_connection_close_ok_t(dummy: 0)
                _ = amqp_send_method(state, 0, CQ_CONNECTION_CLOSE_OK, &ok)
                isOpen = false
            default:
                break
            }
            return .method(method, channel: frame.channel)
        case AMQP_FRAME_HEADER:
            let decoded = frame.payload.properties.decoded.assumingMemoryBound(to: amqp_basic_properties_t.self)
            return .header(
                bodySize: frame.payload.properties.body_size, properties: AMQPMessageProperties(decoded.pointee),
                channel: frame.channel)
        case AMQP_FRAME_BODY:
            let fragment = frame.payload.body_fragment
            let bytes: [UInt8] =
                fragment.len > 0 && fragment.bytes != nil
                ? Array(UnsafeRawBufferPointer(start: fragment.bytes, count: fragment.len)) : []
            return .body(bytes, channel: frame.channel)
        default:
            return nil  // heartbeats are consumed by the library; nothing else is expected
        }
    }

    private func copyMethod(_ method: amqp_method_t) -> AMQPMethod {
        let decoded = method.decoded
        switch method.id {
        case CQ_BASIC_DELIVER:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            return .deliver(
                consumerTag: String(amqpBytes: m.consumer_tag), deliveryTag: m.delivery_tag,
                redelivered: m.redelivered != 0, exchange: String(amqpBytes: m.exchange),
                routingKey: String(amqpBytes: m.routing_key))
        case CQ_BASIC_RETURN:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            return .returned(
                replyCode: m.reply_code, replyText: String(amqpBytes: m.reply_text),
                exchange: String(amqpBytes: m.exchange), routingKey: String(amqpBytes: m.routing_key))
        case CQ_BASIC_ACK:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .ack(deliveryTag: m.delivery_tag, multiple: m.multiple != 0)
        case CQ_BASIC_NACK:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .nack(deliveryTag: m.delivery_tag, multiple: m.multiple != 0, requeue: m.requeue != 0)
        case CQ_BASIC_CANCEL:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            return .cancel(consumerTag: String(amqpBytes: m.consumer_tag))
        case CQ_BASIC_CANCEL_OK:
            let m = decoded!.assumingMemoryBound(to: amqp_basic_cancel_ok_t.self).pointee
            return .cancelOK(consumerTag: String(amqpBytes: m.consumer_tag))
        case CQ_CHANNEL_CLOSE:
            let m = decoded!.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            return .channelClose(replyCode: m.reply_code, replyText: String(amqpBytes: m.reply_text))
        case CQ_CONNECTION_CLOSE:
            let m = decoded!.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            return .connectionClose(replyCode: m.reply_code, replyText: String(amqpBytes: m.reply_text))
        case CQ_CONNECTION_BLOCKED:
            let m = decoded!.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            return .connectionBlocked(reason: String(amqpBytes: m.reason))
        case CQ_CONNECTION_UNBLOCKED:
            return .connectionUnblocked
        default:
            return .other(id: method.id)
        }
    }

    /// Publishes on channel 1 through the default exchange. With confirms
    /// enabled, the publish's sequence number is the count of publishes so far
    /// (the caller tracks it). The write blocks while the socket's send
    /// buffer is full: the worker publishes with `enqueuePublish` (never
    /// blocking) instead; this is for blocking clients (requester, bench).
    public func publish(
        routingKey: String, mandatory: Bool, properties: AMQPOutgoingProperties, body: [UInt8]
    ) throws(AMQPError) {
        try publish(prepared: AMQPPreparedProperties(routingKey: routingKey, properties), mandatory: mandatory, body: body)
    }

    /// Acks a delivery. With `writesInBatches` it is queued for `writeUnsent()`.
    public func ack(deliveryTag: UInt64, multiple: Bool = false) throws(AMQPError) {
        if writesInBatches {
            return enqueueSettlement(CQ_BASIC_ACK, deliveryTag: deliveryTag, bits: multiple ? 1 : 0)
        }
        try check(amqp_basic_ack(state, Self.channel, deliveryTag, multiple ? 1 : 0), "basic.ack \(deliveryTag)")
    }

    /// Rejects one delivery; without requeue it goes to the queue's dead-letter exchange.
    public func reject(deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        if writesInBatches {
            return enqueueSettlement(CQ_BASIC_REJECT, deliveryTag: deliveryTag, bits: requeue ? 1 : 0)
        }
        try check(amqp_basic_reject(state, Self.channel, deliveryTag, requeue ? 1 : 0), "basic.reject \(deliveryTag)")
    }

    public func nack(deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) throws(AMQPError) {
        if writesInBatches {
            return enqueueSettlement(CQ_BASIC_NACK, deliveryTag: deliveryTag, bits: (multiple ? 1 : 0) | (requeue ? 2 : 0))
        }
        try check(
            amqp_basic_nack(state, Self.channel, deliveryTag, multiple ? 1 : 0, requeue ? 1 : 0),
            "basic.nack \(deliveryTag)")
    }

    /// Gives the connection up without a handshake: queued frames are
    /// dropped and the socket is closed when the connection is released. For a
    /// broker that stopped reading from us (a resource alarm), where `close()`
    /// would wait for the RPC timeout; unacked deliveries return to the queue.
    public func abandon() {
        isOpen = false
        unsent = OutgoingBytes()
    }

    /// Closes channel and connection cleanly (waits for the broker's close-ok).
    /// `timeout` bounds the whole close (queued frames and the two RPCs) to
    /// about three times that many seconds; nil: the RPC timeout each.
    public func close(timeout: Double? = nil) {
        guard isOpen else { return }
        isOpen = false
        if let timeout {
            var limit = timeval(seconds: timeout)
            _ = amqp_set_rpc_timeout(state, &limit)
        }
        // Queued acks go out first; a close written after a partly written
        // frame of ours would be garbage to the broker.
        do { try writeAllUnsent(timeout: timeout) } catch { return }
        _ = amqp_channel_close(state, Self.channel, AMQP_REPLY_SUCCESS)
        _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
    }

    // MARK: - Helpers

    /// Builds an amqp_table_t from `entries` in the arena (after strings already appended).
    private func withTable<R>(
        _ entries: [(String, AMQPFieldValue)], _ body: (UnsafeMutableRawPointer, amqp_table_t) -> R
    ) -> R {
        let ranges = entries.map { (key, value) -> (Range<Int>, AMQPFieldValue, Range<Int>?) in
            let keyRange = arena.append(key)
            if case .string(let text) = value { return (keyRange, value, arena.append(text)) }
            return (keyRange, value, nil)
        }
        return arena.withBytes { base in
            var table = [amqp_table_entry_t](repeating: amqp_table_entry_t(), count: ranges.count)
            for (index, (keyRange, value, textRange)) in ranges.enumerated() {
                table[index].key = base.amqpBytes(keyRange)
                switch value {
                case .string:
                    table[index].value.kind = UInt8(ascii: "S")
                    table[index].value.value.bytes = base.amqpBytes(textRange!)
                case .int(let number):
                    table[index].value.kind = UInt8(ascii: "l")
                    table[index].value.value.i64 = number
                case .unsigned(let number):
                    table[index].value.kind = UInt8(ascii: "T")
                    table[index].value.value.u64 = number
                case .bool(let flag):
                    table[index].value.kind = UInt8(ascii: "t")
                    table[index].value.value.boolean = flag ? 1 : 0
                case .double(let number):
                    table[index].value.kind = UInt8(ascii: "d")
                    table[index].value.value.f64 = number
                case .other:
                    table[index].value.kind = UInt8(ascii: "V")  // void
                }
            }
            return table.withUnsafeMutableBufferPointer { buffer in
                body(base, amqp_table_t(num_entries: Int32(buffer.count), entries: buffer.baseAddress))
            }
        }
    }

    func check(_ status: Int32, _ what: @autoclosure () -> String, code: AMQPError.Code? = nil)
        throws(AMQPError)
    {
        guard status < 0 else { return }
        var error = AMQPError.status(status, context: "\(context) \(what())")
        if let code, case .library = error.code { error.code = code }
        if case .heartbeatTimeout = error.code { isOpen = false }
        if case .socket = error.code { isOpen = false }
        throw error
    }

    private func checkReply(_ reply: amqp_rpc_reply_t, _ what: @autoclosure () -> String, code: AMQPError.Code? = nil)
        throws(AMQPError)
    {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            var error = AMQPError.status(reply.library_error, context: "\(context) \(what())")
            if let code { error.code = code }
            isOpen = isOpen && !(error.code == .socket || error.code == .heartbeatTimeout)
            throw error
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch copyMethod(reply.reply) {
            case .channelClose(let replyCode, let text):
                var ok = amqp_channel_close_ok_t(dummy: 0)
                _ = amqp_send_method(state, Self.channel, CQ_CHANNEL_CLOSE_OK, &ok)
                throw AMQPError(code: .channelClosed(replyCode: replyCode), message: text, context: "\(context) \(what())")
            case .connectionClose(let replyCode, let text):
                var ok = amqp_connection_close_ok_t(dummy: 0)
                _ = amqp_send_method(state, 0, CQ_CONNECTION_CLOSE_OK, &ok)
                isOpen = false
                throw AMQPError(
                    code: code ?? .connectionClosed(replyCode: replyCode), message: text, context: "\(context) \(what())")
            default:
                throw AMQPError(code: .unexpectedFrame, message: "unexpected reply", context: "\(context) \(what())")
            }
        default:
            throw AMQPError(code: .unexpectedFrame, message: "no reply", context: "\(context) \(what())")
        }
    }
}

/// Scratch bytes that outlive one library call: Swift strings handed to C as
/// `amqp_bytes_t` must stay valid for the whole call (`amqp_cstring_bytes` of
/// a temporary would dangle), so they are copied here first.
struct ByteArena {
    private var storage: [UInt8] = []

    mutating func reset() { storage.removeAll(keepingCapacity: true) }

    mutating func append(_ string: String) -> Range<Int> {
        let start = storage.count
        storage.append(contentsOf: string.utf8)
        return start..<storage.count
    }

    mutating func withBytes<R>(_ body: (UnsafeMutableRawPointer) -> R) -> R {
        if storage.isEmpty { storage.reserveCapacity(1) }
        return storage.withUnsafeMutableBytes { raw in
            // An empty array may have no base address; a dangling-but-unused pointer is fine for zero lengths.
            body(raw.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!)
        }
    }
}

extension UnsafeMutableRawPointer {
    func amqpBytes(_ range: Range<Int>) -> amqp_bytes_t {
        amqp_bytes_t(len: range.count, bytes: self + range.lowerBound)
    }
}

extension timeval {
    init(seconds: Double) {
        let whole = seconds.rounded(.down)
        self.init(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
    }
}
