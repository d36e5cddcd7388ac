import CRabbitMQ
import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// One AMQP connection with one channel (number 1), owning its
/// `amqp_connection_state_t`. Not thread-safe: it belongs to the event loop
/// thread. Synchronous methods (declare, consume, ...) are for set-up; at run
/// time the loop reads frames with `readFrame()` only when the socket is
/// readable or the library holds buffered input, and never blocks on reads.
///
/// By concern: this file connects, reads and closes; +Login, +RPC (the
/// synchronous methods), +Publishing (library publishes and settlements),
/// +BatchedWrites (our own encoded frames, written without blocking) and
/// +Waiting (poll for blocking clients). rabbitmq-c's types stay inside
/// this module.
public final class AMQPConnection {
    static let channel: UInt16 = 1

    public let options: AMQPConnectionOptions
    let state: amqp_connection_state_t
    var isOpen = false
    /// Reused scratch memory for the strings and tables of library calls.
    var arena = ByteArena()
    /// Frames encoded here and not yet written (see AMQPConnection+BatchedWrites.swift).
    var unsent = OutgoingBytes()
    /// Acks, rejects and nacks are encoded into the write queue instead of
    /// written by rabbitmq-c at once; the owner then calls `writeUnsent()`
    /// every loop turn (AMQPConnection+BatchedWrites.swift).
    public var queuesSettlements = false
    /// The TLS session rabbitmq-c opened (amqps:// only), for writing our
    /// encoded frames through it without blocking (AMQPConnection+BatchedWrites.swift).
    var tlsSession: OpaquePointer?

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

    var context: String { "amqp \(options.tls ? "amqps" : "amqp")://\(options.host):\(options.port)" }

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
            // Our writes go through the session (never rabbitmq-c's blocking ones): without it, no connection.
            guard let session = cq_amqp_ssl_session(socket) else {
                throw AMQPError(code: .connect, message: "the TLS session was not found after the handshake", context: context)
            }
            tlsSession = session
            // Our TLS writes rely on it; rabbitmq-c 0.11 leaves its sockets non-blocking and polls itself.
            try makeNonBlocking(amqp_get_sockfd(state))
        }
        try check(amqp_set_handshake_timeout(state, &timeout), "handshake timeout", code: .connect)
        var rpcTimeout = timeval(seconds: options.rpcTimeout)
        try check(amqp_set_rpc_timeout(state, &rpcTimeout), "rpc timeout", code: .connect)

        try logIn()
        isOpen = true

        _ = amqp_channel_open(state, Self.channel)
        try checkReply(amqp_get_rpc_reply(state), "channel.open")
    }

    private func makeNonBlocking(_ descriptor: Int32) throws(AMQPError) {
        do {
            let flags = try systemCall("fcntl F_GETFL") { fcntl(descriptor, F_GETFL) }
            if flags & O_NONBLOCK == 0 { try systemCall("fcntl F_SETFL") { fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) } }
        } catch {
            throw AMQPError.socket(error, context: context)
        }
    }

    // MARK: - Reading

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
    /// heartbeat when one is due and detects a silent broker. Answers the
    /// broker's channel.close and connection.close with their close-ok.
    public func readFrame() throws(AMQPError) -> AMQPFrame? {
        // The library may write a heartbeat while reading: see `isWaitingForRoom`.
        if isWaitingForRoom { return nil }
        var frame = amqp_frame_t()
        let status = cq_amqp_read_frame_now(state, &frame)
        if status == Int32(AMQP_STATUS_TIMEOUT.rawValue) { return nil }
        try check(status, "read frame")
        defer { amqp_maybe_release_buffers(state) }
        let decoded: AMQPFrame?
        do {
            decoded = try AMQPFrame.decoded(from: frame)
        } catch {
            throw AMQPError.unexpectedFrame(error.message, context: "\(context) read frame")
        }
        if case .method(let method, let channel) = decoded { acknowledgeClose(method, channel: channel) }
        return decoded
    }

    /// The broker closed the channel or the connection: say close-ok, as the protocol asks.
    func acknowledgeClose(_ method: AMQPMethod, channel: UInt16) {
        switch method {
        case .channelClose:
            var ok = amqp_channel_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, channel, CQ_CHANNEL_CLOSE_OK, &ok)
        case .connectionClose:
            var ok = amqp_connection_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, 0, CQ_CONNECTION_CLOSE_OK, &ok)
            isOpen = false
        default:
            break
        }
    }

    // MARK: - Ending

    /// Starts a clean close without waiting for it: sends connection.close
    /// (a small frame, after everything written before it) and marks the
    /// connection closed. The broker handles what it received first, sends
    /// the confirms due, then connection.close-ok; keep reading until then
    /// (or give up), then release the connection. Returns false when the
    /// frame could not be sent (the socket failed).
    @discardableResult
    public func beginClose() -> Bool {
        guard isOpen else { return false }
        isOpen = false
        let status = "retired".withCString { text -> Int32 in
            var close = amqp_connection_close_t(
                reply_code: UInt16(AMQP_REPLY_SUCCESS), reply_text: amqp_cstring_bytes(text), class_id: 0, method_id: 0)
            return amqp_send_method(state, 0, CQ_CONNECTION_CLOSE, &close)
        }
        return status == Int32(AMQP_STATUS_OK.rawValue)
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

    // MARK: - Errors

    /// Throws for a negative rabbitmq-c status; `code` replaces a plain library error's.
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
}

extension timeval {
    init(seconds: Double) {
        let whole = seconds.rounded(.down)
        self.init(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
    }
}
