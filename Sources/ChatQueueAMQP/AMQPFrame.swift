/// The methods the worker acts on, copied out of rabbitmq-c's pool memory so
/// they stay valid after the library's buffers are released.
public enum AMQPMethod: Sendable, Equatable {
    case deliver(consumerTag: String, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String)
    /// A mandatory publish the broker could not route; its content follows.
    case returned(replyCode: UInt16, replyText: String, exchange: String, routingKey: String)
    /// Publisher confirm: every tag up to `deliveryTag` when `multiple`.
    case ack(deliveryTag: UInt64, multiple: Bool)
    case nack(deliveryTag: UInt64, multiple: Bool, requeue: Bool)
    /// The broker cancelled our consumer (queue deleted, consumer_timeout, ...).
    case cancel(consumerTag: String)
    case cancelOK(consumerTag: String)
    case channelClose(replyCode: UInt16, replyText: String)
    case connectionClose(replyCode: UInt16, replyText: String)
    /// The broker's answer to our connection.close: it has handled everything we sent before.
    case connectionCloseOK
    /// The broker stopped reading from publishers (memory or disk alarm).
    case connectionBlocked(reason: String)
    case connectionUnblocked
    case other(id: UInt32)

    /// Whether a content header and body frames follow this method.
    var carriesContent: Bool {
        switch self {
        case .deliver, .returned: return true
        default: return false
        }
    }
}

/// The properties of a received message that the worker reads.
public struct AMQPMessageProperties: Sendable, Equatable {
    public var contentType: String?
    public var correlationID: String?
    public var replyTo: String?
    public var messageID: String?
    public var type: String?
    public var deliveryMode: UInt8?
    /// The `timestamp` property as sent: by AMQP 0-9-1, Unix seconds (some clients send milliseconds).
    public var timestamp: UInt64?
    public var headers: [String: AMQPFieldValue]

    public init(
        contentType: String? = nil, correlationID: String? = nil, replyTo: String? = nil,
        messageID: String? = nil, type: String? = nil, deliveryMode: UInt8? = nil, timestamp: UInt64? = nil,
        headers: [String: AMQPFieldValue] = [:]
    ) {
        self.timestamp = timestamp
        self.contentType = contentType
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.messageID = messageID
        self.type = type
        self.deliveryMode = deliveryMode
        self.headers = headers
    }
}

/// One frame, copied out of the library.
public enum AMQPFrame: Sendable, Equatable {
    case method(AMQPMethod, channel: UInt16)
    case header(bodySize: UInt64, properties: AMQPMessageProperties, channel: UInt16)
    case body([UInt8], channel: UInt16)
}

/// A complete message: a `deliver` or `returned` method with its properties and body.
public struct AMQPMessage: Sendable, Equatable {
    public var method: AMQPMethod
    public var channel: UInt16
    public var properties: AMQPMessageProperties
    /// The body, or its first `maxBodyBytes` bytes when `truncated`.
    public var body: [UInt8]
    /// The size the broker announced for the body.
    public var bodySize: UInt64
    /// The body exceeded the assembler's limit; the rest was read and discarded.
    public var truncated: Bool
}
