import CRabbitMQ

/// Copying frames out of rabbitmq-c's pool memory into our types. Pure (no
/// I/O), so it is tested with hand-made frames. rabbitmq-c hands decoded
/// payloads over as untyped, nullable pointers: a missing one, or a content
/// header of a class other than basic, is `AMQPError(.unexpectedFrame)`,
/// never a trap.
extension AMQPFrame {
    /// The frame as ours; nil for frames the reader has no use for
    /// (heartbeats are consumed by the library; nothing else is expected).
    static func decoded(from frame: amqp_frame_t) throws(AMQPError) -> AMQPFrame? {
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            return .method(try AMQPMethod(decoding: frame.payload.method), channel: frame.channel)
        case AMQP_FRAME_HEADER:
            let header = frame.payload.properties
            guard header.class_id == AMQPFrameEncoder.basicClass,
                let decoded = header.decoded
            else { throw AMQPError.unexpectedFrame("a content header of class \(header.class_id) without basic properties") }
            let properties = decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee
            return .header(
                bodySize: header.body_size, properties: AMQPMessageProperties(properties), channel: frame.channel)
        case AMQP_FRAME_BODY:
            let fragment = frame.payload.body_fragment
            guard fragment.len > 0, let bytes = fragment.bytes else { return .body([], channel: frame.channel) }
            return .body(Array(UnsafeRawBufferPointer(start: bytes, count: fragment.len)), channel: frame.channel)
        default:
            return nil
        }
    }
}

extension AMQPMethod {
    /// The methods the worker acts on, with their arguments; `.other` for the rest.
    init(decoding method: amqp_method_t) throws(AMQPError) {
        /// The decoded arguments as `T`: rabbitmq-c decodes every method it
        /// knows, so nil means a frame this code cannot trust.
        func arguments<T>(_ type: T.Type) throws(AMQPError) -> T {
            guard let decoded = method.decoded else {
                throw AMQPError.unexpectedFrame("method \(method.id) without arguments")
            }
            return decoded.assumingMemoryBound(to: type).pointee
        }
        switch method.id {
        case CQ_BASIC_DELIVER:
            let m = try arguments(amqp_basic_deliver_t.self)
            self = .deliver(
                consumerTag: String(amqpBytes: m.consumer_tag), deliveryTag: m.delivery_tag,
                redelivered: m.redelivered != 0, exchange: String(amqpBytes: m.exchange),
                routingKey: String(amqpBytes: m.routing_key))
        case CQ_BASIC_RETURN:
            let m = try arguments(amqp_basic_return_t.self)
            self = .returned(
                replyCode: m.reply_code, replyText: String(amqpBytes: m.reply_text),
                exchange: String(amqpBytes: m.exchange), routingKey: String(amqpBytes: m.routing_key))
        case CQ_BASIC_ACK:
            let m = try arguments(amqp_basic_ack_t.self)
            self = .ack(deliveryTag: m.delivery_tag, multiple: m.multiple != 0)
        case CQ_BASIC_NACK:
            let m = try arguments(amqp_basic_nack_t.self)
            self = .nack(deliveryTag: m.delivery_tag, multiple: m.multiple != 0, requeue: m.requeue != 0)
        case CQ_BASIC_CANCEL:
            self = .cancel(consumerTag: String(amqpBytes: try arguments(amqp_basic_cancel_t.self).consumer_tag))
        case CQ_BASIC_CANCEL_OK:
            self = .cancelOK(consumerTag: String(amqpBytes: try arguments(amqp_basic_cancel_ok_t.self).consumer_tag))
        case CQ_CHANNEL_CLOSE:
            let m = try arguments(amqp_channel_close_t.self)
            self = .channelClose(replyCode: m.reply_code, replyText: String(amqpBytes: m.reply_text))
        case CQ_CONNECTION_CLOSE:
            let m = try arguments(amqp_connection_close_t.self)
            self = .connectionClose(replyCode: m.reply_code, replyText: String(amqpBytes: m.reply_text))
        case CQ_CONNECTION_CLOSE_OK:
            self = .connectionCloseOK
        case CQ_CONNECTION_BLOCKED:
            self = .connectionBlocked(reason: String(amqpBytes: try arguments(amqp_connection_blocked_t.self).reason))
        case CQ_CONNECTION_UNBLOCKED:
            self = .connectionUnblocked
        default:
            self = .other(id: method.id)
        }
    }
}
