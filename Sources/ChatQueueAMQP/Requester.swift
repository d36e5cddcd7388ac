import ChatQueueCore
import ChatQueueSystem

/// A reply as a requester receives it.
public struct ReceivedReply: Sendable {
    /// The AMQP `type`: chat.completion.chunk, chat.completion or error.
    public var type: String
    public var correlationID: String?
    public var contentType: String?
    /// delivery_mode 2 (persistent) or 1.
    public var deliveryMode: UInt8?
    public var headers: [String: AMQPFieldValue]
    public var body: [UInt8]

    public init(
        type: String, correlationID: String?, contentType: String?, deliveryMode: UInt8?,
        headers: [String: AMQPFieldValue], body: [UInt8]
    ) {
        self.type = type
        self.correlationID = correlationID
        self.contentType = contentType
        self.deliveryMode = deliveryMode
        self.headers = headers
        self.body = body
    }

    public var requestID: String? { headers["x-request-id"]?.stringValue }
    public var seq: Int64? { headers["x-seq"]?.saturatedInteger }
    public var attempt: Int64? { headers["x-attempt"]?.saturatedInteger }
    public var isFinal: Bool { type != "chat.completion.chunk" }
}

/// The requester's side of the wire contract over a plain AMQP connection:
/// a reply queue of its own (an exclusive server-named queue, or RabbitMQ's
/// direct reply-to), publishing requests and reading replies. Blocking;
/// used by `chatqueue send`, the benchmarks and the tests.
public final class Requester {
    public static let directReplyTo = "amq.rabbitmq.reply-to"

    public let connection: AMQPConnection
    /// What requests carry as reply_to.
    public let replyTo: String
    private var assembler = ContentAssembler(maxBodyBytes: 256 * 1024 * 1024)

    public init(options: AMQPConnectionOptions, directReplyTo: Bool = false) throws(AMQPError) {
        connection = try AMQPConnection(options: options)
        if directReplyTo {
            replyTo = Self.directReplyTo
        } else {
            replyTo = try connection.declareQueue("", durable: false, exclusive: true, autoDelete: true)
        }
        _ = try connection.consume(queue: replyTo, noAck: true, exclusive: true)
    }

    /// Publishes a request to `queue` through the default exchange, with reply_to set.
    public func send(
        to queue: String, body: [UInt8], correlationID: String? = nil, messageID: String? = nil,
        contentType: String? = "application/json", headers: [(String, AMQPFieldValue)] = [], replyTo: String? = nil,
        timestamp: UInt64? = nil
    ) throws(AMQPError) {
        let properties = AMQPOutgoingProperties(
            contentType: contentType, correlationID: correlationID, messageID: messageID,
            replyTo: replyTo ?? self.replyTo, persistent: true, timestamp: timestamp, headers: headers)
        // Mandatory: a request to a queue that does not exist comes back (see nextReply) instead of vanishing.
        try connection.publish(routingKey: queue, mandatory: true, properties: properties, body: body)
    }

    /// Cancels a request: publishes `{"request_id": "<id>"}` to the workers'
    /// cancel exchange (`queue.cancel_exchange`; docs/protocol.md). The id is
    /// the request's message_id (else its correlation_id).
    public func cancel(requestID: String, exchange: String) throws(AMQPError) {
        let body = CancelMessage.body(requestID: requestID)
        let properties = AMQPOutgoingProperties(contentType: "application/json", persistent: false)
        try connection.publish(exchange: exchange, routingKey: "", mandatory: false, properties: properties, body: body)
    }

    /// The next reply, or nil when none arrives within `timeout` seconds.
    /// Throws `.unroutable` when a request sent with `send` had no queue to go to.
    public func nextReply(timeout: Double) throws(AMQPError) -> ReceivedReply? {
        let start = MonotonicClock.now()
        while true {
            while let frame = try connection.readFrame() {
                guard let output = try assembler.handle(frame) else { continue }
                switch output {
                case .message(let message):
                    if case .returned(_, let text, _, let routingKey) = message.method {
                        throw AMQPError(
                            code: .unroutable, message: "\(text): no queue named \(routingKey) (is a worker running?)",
                            context: "requester")
                    }
                    return ReceivedReply(
                        type: message.properties.type ?? "", correlationID: message.properties.correlationID,
                        contentType: message.properties.contentType, deliveryMode: message.properties.deliveryMode,
                        headers: message.properties.headers, body: message.body)
                case .method(.channelClose(let code, let text), _), .method(.connectionClose(let code, let text), _):
                    throw AMQPError(code: .channelClosed(replyCode: code), message: text, context: "requester")
                case .method:
                    continue
                }
            }
            let left = timeout - Double(MonotonicClock.now() &- start) / 1e9
            if left <= 0 { return nil }
            // Wake at least every second so heartbeats are serviced by readFrame.
            try connection.waitForInput(timeout: min(left, 1))
        }
    }
}
