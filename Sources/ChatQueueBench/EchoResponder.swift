import ChatQueueAMQP
import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// The echo ceiling: a minimal worker on the same AMQP layer that answers
/// every request at once, with no HTTP call. It does the broker work the real
/// worker does for a non-stream request: consume with prefetch, publish one
/// persistent, mandatory `chat.completion` reply (headers x-request-id, x-seq,
/// x-attempt) on a second connection in confirm mode, and ack the delivery
/// only after the broker confirmed the reply, writing replies and acks in
/// batches once per loop turn as the worker does. What it sustains is what
/// the broker allows on the machine, so a benchmark can say how close the
/// real worker gets.
public final class EchoResponder {
    public struct Options: Sendable {
        public var connection: AMQPConnectionOptions
        public var queue: String
        /// Deliveries in flight (basic.qos prefetch), like worker.concurrency.
        public var prefetch: Int
        /// Declare the queue (durable, classic) when it does not exist.
        public var declareQueue: Bool

        public init(connection: AMQPConnectionOptions, queue: String, prefetch: Int, declareQueue: Bool = true) {
            self.connection = connection
            self.queue = queue
            self.prefetch = prefetch
            self.declareQueue = declareQueue
        }
    }

    /// The fixed reply body.
    public static let replyBody = Array(
        #"{"id":"echo","object":"chat.completion","created":0,"model":"echo","choices":[{"index":0,"message":{"role":"assistant","content":"echo"},"finish_reason":"stop"}]}"#
            .utf8)

    private let consumer: AMQPConnection
    private let publisher: AMQPConnection
    private var consumerAssembler = ContentAssembler(maxBodyBytes: 16 * 1024 * 1024)
    private var publisherAssembler = ContentAssembler(maxBodyBytes: 0)
    /// (publish sequence number, delivery tag) of replies awaiting their confirm, in order.
    private var unconfirmed: [(sequence: UInt64, deliveryTag: UInt64)] = []
    private var unconfirmedHead = 0
    private var lastSequence: UInt64 = 0
    public private(set) var answered = 0

    public init(options: Options) throws(AMQPError) {
        var consumerOptions = options.connection
        consumerOptions.connectionName = "chatqueue bench-echo consumer"
        var publisherOptions = options.connection
        publisherOptions.connectionName = "chatqueue bench-echo publisher"
        consumer = try AMQPConnection(options: consumerOptions)
        publisher = try AMQPConnection(options: publisherOptions)
        try publisher.enablePublisherConfirms()
        if options.declareQueue {
            try consumer.declareQueue(options.queue, durable: true, arguments: [("x-queue-type", .string("classic"))])
        }
        try consumer.setPrefetch(options.prefetch)
        _ = try consumer.consume(queue: options.queue)
        // Like the worker: replies and acks written once per loop turn.
        consumer.queuesSettlements = true
    }

    /// Answers until `shouldStop` returns true (checked at least every 200 ms).
    public func run(shouldStop: () -> Bool) throws(AMQPError) {
        var descriptors = [
            pollfd(fd: consumer.socketDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: publisher.socketDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        while !shouldStop() {
            try drainPublisher()
            try drainConsumer()
            if consumer.hasUnsentFrames { try consumer.writeUnsent() }
            if publisher.hasUnsentFrames { try publisher.writeUnsent() }
            if consumer.hasBufferedInput || publisher.hasBufferedInput { continue }
            descriptors[0].events = Int16(POLLIN) | (consumer.hasUnsentFrames ? Int16(POLLOUT) : 0)
            descriptors[1].events = Int16(POLLIN) | (publisher.hasUnsentFrames ? Int16(POLLOUT) : 0)
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            do {
                try systemCall("poll") { poll(&descriptors, 2, 200) }
            } catch {
                throw AMQPError(code: .socket, message: error.reason, context: "bench-echo poll", systemError: error)
            }
        }
        consumer.close()
        publisher.close()
    }

    private func drainConsumer() throws(AMQPError) {
        while let frame = try consumer.readFrame() {
            guard let output = try consumerAssembler.handle(frame) else { continue }
            switch output {
            case .message(let message):
                try answer(message)
            case .method(.channelClose(let code, let text), _), .method(.connectionClose(let code, let text), _):
                throw AMQPError(code: .channelClosed(replyCode: code), message: text, context: "bench-echo consumer")
            case .method:
                continue
            }
        }
    }

    private func answer(_ message: AMQPMessage) throws(AMQPError) {
        guard case .deliver(_, let deliveryTag, let redelivered, _, _) = message.method else { return }
        let properties = message.properties
        let requestID = properties.messageID ?? properties.correlationID ?? "echo-\(deliveryTag)"
        guard let replyTo = properties.replyTo else {
            try consumer.reject(deliveryTag: deliveryTag, requeue: false)
            return
        }
        let correlationID = properties.correlationID ?? requestID
        try publisher.enqueuePublish(routingKey: replyTo, mandatory: true, body: Self.replyBody) {
            $0.contentType("application/json")
            $0.headers { headers in
                headers.string("x-request-id", requestID)
                headers.int64("x-seq", 0)
                headers.int64("x-attempt", redelivered ? 2 : 1)
            }
            $0.deliveryMode(2)
            $0.correlationID(correlationID)
            $0.type("chat.completion")
        }
        lastSequence += 1
        unconfirmed.append((lastSequence, deliveryTag))
    }

    private func drainPublisher() throws(AMQPError) {
        while let frame = try publisher.readFrame() {
            guard let output = try publisherAssembler.handle(frame) else { continue }
            switch output {
            case .method(.ack(let sequence, let multiple), _), .method(.nack(let sequence, let multiple, _), _):
                try settle(upTo: sequence, multiple: multiple)
            case .method(.channelClose(let code, let text), _), .method(.connectionClose(let code, let text), _):
                throw AMQPError(code: .channelClosed(replyCode: code), message: text, context: "bench-echo publisher")
            case .message, .method:
                continue  // a returned reply (its requester left): acked with its confirm like the worker does
            }
        }
    }

    /// Acks, one by one as the worker does, the deliveries whose replies are confirmed.
    private func settle(upTo sequence: UInt64, multiple: Bool) throws(AMQPError) {
        while unconfirmedHead < unconfirmed.count {
            let entry = unconfirmed[unconfirmedHead]
            guard multiple ? entry.sequence <= sequence : entry.sequence == sequence else { break }
            try consumer.ack(deliveryTag: entry.deliveryTag)
            answered += 1
            unconfirmedHead += 1
        }
        if unconfirmedHead > 4096 && unconfirmedHead * 2 > unconfirmed.count {
            unconfirmed.removeFirst(unconfirmedHead)
            unconfirmedHead = 0
        }
    }
}
