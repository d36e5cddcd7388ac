import CRabbitMQ

extension AMQPMessageProperties {
    /// Copies decoded basic properties out of rabbitmq-c's pool memory. Only
    /// the fields whose flag is set are read (the rest are uninitialized).
    init(_ p: amqp_basic_properties_t) {
        func string(_ flag: amqp_flags_t, _ bytes: amqp_bytes_t) -> String? {
            (p._flags & flag) != 0 ? String(amqpBytes: bytes) : nil
        }
        self.init(
            contentType: string(CQ_FLAG_CONTENT_TYPE, p.content_type),
            correlationID: string(CQ_FLAG_CORRELATION_ID, p.correlation_id),
            replyTo: string(CQ_FLAG_REPLY_TO, p.reply_to),
            messageID: string(CQ_FLAG_MESSAGE_ID, p.message_id),
            type: string(CQ_FLAG_TYPE, p.type),
            deliveryMode: (p._flags & CQ_FLAG_DELIVERY_MODE) != 0 ? p.delivery_mode : nil,
            timestamp: (p._flags & CQ_FLAG_TIMESTAMP) != 0 ? p.timestamp : nil,
            headers: (p._flags & CQ_FLAG_HEADERS) != 0 ? decodeTable(p.headers) : [:])
    }
}
