import CRabbitMQ

/// The synchronous methods, for set-up: each waits for the broker's answer
/// up to the RPC timeout. Those the worker also calls at run time (qos,
/// consume, cancel; declare and bind when it consumes cancels again) write
/// what is queued first: their frames must not land inside ours.
extension AMQPConnection {
    public func declareExchange(_ name: String, type: String, durable: Bool = true) throws(AMQPError) {
        try writeAllUnsent()
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
        try writeAllUnsent()
        arena.reset()
        let nameRange = arena.append(name)
        let declared: String? = AMQPTable.with(arguments.map { ($0.0, .field($0.1)) }, in: &arena) { base, table in
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
        try writeAllUnsent()
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

    /// Drops the ready messages of a queue (queue.purge).
    public func purgeQueue(_ queue: String) throws(AMQPError) {
        arena.reset()
        let q = arena.append(queue)
        arena.withBytes { base in _ = amqp_queue_purge(state, Self.channel, base.amqpBytes(q)) }
        try checkReply(amqp_get_rpc_reply(state), "queue.purge \(queue)")
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

    /// Throws unless `reply` is a normal answer. A server exception (the
    /// broker closed the channel or the connection) is acknowledged with its
    /// close-ok; `code` replaces the error's code for set-up steps (login).
    func checkReply(_ reply: amqp_rpc_reply_t, _ what: @autoclosure () -> String, code: AMQPError.Code? = nil)
        throws(AMQPError)
    {
        let context = "\(self.context) \(what())"
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            var error = AMQPError.status(reply.library_error, context: context)
            if let code { error.code = code }
            isOpen = isOpen && !(error.code == .socket || error.code == .heartbeatTimeout)
            throw error
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            let method: AMQPMethod
            do {
                method = try AMQPMethod(decoding: reply.reply)
            } catch {
                throw AMQPError.unexpectedFrame(error.message, context: context)
            }
            acknowledgeClose(method, channel: Self.channel)
            switch method {
            case .channelClose(let replyCode, let text):
                throw AMQPError(code: .channelClosed(replyCode: replyCode), message: text, context: context)
            case .connectionClose(let replyCode, let text):
                throw AMQPError(code: code ?? .connectionClosed(replyCode: replyCode), message: text, context: context)
            default:
                throw AMQPError.unexpectedFrame("unexpected reply", context: context)
            }
        default:
            throw AMQPError.unexpectedFrame("no reply", context: context)
        }
    }
}
