import CRabbitMQ

/// The properties of a message published through the library (`publish`).
public struct AMQPOutgoingProperties: Sendable {
    public var contentType: String?
    public var correlationID: String?
    public var messageID: String?
    public var replyTo: String?
    public var type: String?
    /// delivery_mode 2 (survives a broker restart) instead of 1.
    public var persistent: Bool
    public var expiration: String?
    /// The `timestamp` property (AMQP says Unix seconds; sent as given).
    public var timestamp: UInt64?
    public var headers: [(String, AMQPFieldValue)]

    public init(
        contentType: String? = nil, correlationID: String? = nil, messageID: String? = nil,
        replyTo: String? = nil, type: String? = nil, persistent: Bool = false, expiration: String? = nil,
        timestamp: UInt64? = nil, headers: [(String, AMQPFieldValue)] = []
    ) {
        self.timestamp = timestamp
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

/// Publishing and settling through rabbitmq-c: for blocking clients
/// (requester, bench, tests) and, for settlements, connections that do not
/// queue them (`queuesSettlements`). The worker's replies are encoded by us
/// instead (AMQPConnection+BatchedWrites.swift).
extension AMQPConnection {
    /// Publishes on channel 1 through `exchange` (default: the default
    /// exchange, which routes by queue name). With confirms
    /// enabled, the publish's sequence number is the count of publishes so far
    /// (the caller tracks it). The write blocks while the socket's send
    /// buffer is full.
    public func publish(
        exchange: String = "", routingKey: String, mandatory: Bool, properties: AMQPOutgoingProperties, body: [UInt8]
    ) throws(AMQPError) {
        try writeAllUnsent()
        arena.reset()
        let key = arena.append(routingKey)
        let exchangeRange = arena.append(exchange)
        // The optional string properties: each sets its flag bit and field when present.
        var strings: [(amqp_flags_t, WritableKeyPath<amqp_basic_properties_t, amqp_bytes_t>, Range<Int>)] = []
        for (text, flag, field) in [
            (properties.contentType, CQ_FLAG_CONTENT_TYPE, \amqp_basic_properties_t.content_type),
            (properties.correlationID, CQ_FLAG_CORRELATION_ID, \.correlation_id),
            (properties.messageID, CQ_FLAG_MESSAGE_ID, \.message_id),
            (properties.replyTo, CQ_FLAG_REPLY_TO, \.reply_to),
            (properties.type, CQ_FLAG_TYPE, \.type),
            (properties.expiration, CQ_FLAG_EXPIRATION, \.expiration),
        ] {
            if let text { strings.append((flag, field, arena.append(text))) }
        }
        let headers = properties.headers.map { ($0.0, AMQPTableValue.field($0.1)) }
        let status = AMQPTable.with(headers, in: &arena) { base, table in
            var basic = amqp_basic_properties_t()
            basic._flags = CQ_FLAG_DELIVERY_MODE
            basic.delivery_mode = properties.persistent ? 2 : 1
            for (flag, field, range) in strings {
                basic._flags |= flag
                basic[keyPath: field] = base.amqpBytes(range)
            }
            if !headers.isEmpty {
                basic._flags |= CQ_FLAG_HEADERS
                basic.headers = table
            }
            if let timestamp = properties.timestamp {
                basic._flags |= CQ_FLAG_TIMESTAMP
                basic.timestamp = timestamp
            }
            return body.withUnsafeBytes { bytes in
                amqp_basic_publish(
                    state, Self.channel, base.amqpBytes(exchangeRange), base.amqpBytes(key), mandatory ? 1 : 0, 0, &basic,
                    amqp_bytes_t(len: bytes.count, bytes: UnsafeMutableRawPointer(mutating: bytes.baseAddress)))
            }
        }
        try check(status, "basic.publish to \(routingKey)")
    }

    /// Acks a delivery. With `queuesSettlements` it is queued for `writeUnsent()`.
    public func ack(deliveryTag: UInt64, multiple: Bool = false) throws(AMQPError) {
        if queuesSettlements {
            return enqueueSettlement(CQ_BASIC_ACK, deliveryTag: deliveryTag, bits: multiple ? 1 : 0)
        }
        try check(amqp_basic_ack(state, Self.channel, deliveryTag, multiple ? 1 : 0), "basic.ack \(deliveryTag)")
    }

    /// Rejects one delivery; without requeue it goes to the queue's dead-letter exchange.
    public func reject(deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        if queuesSettlements {
            return enqueueSettlement(CQ_BASIC_REJECT, deliveryTag: deliveryTag, bits: requeue ? 1 : 0)
        }
        try check(amqp_basic_reject(state, Self.channel, deliveryTag, requeue ? 1 : 0), "basic.reject \(deliveryTag)")
    }

    public func nack(deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) throws(AMQPError) {
        if queuesSettlements {
            return enqueueSettlement(CQ_BASIC_NACK, deliveryTag: deliveryTag, bits: (multiple ? 1 : 0) | (requeue ? 2 : 0))
        }
        try check(
            amqp_basic_nack(state, Self.channel, deliveryTag, multiple ? 1 : 0, requeue ? 1 : 0),
            "basic.nack \(deliveryTag)")
    }
}
