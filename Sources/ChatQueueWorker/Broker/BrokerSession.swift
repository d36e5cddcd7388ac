import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore

/// The worker's two connections to one broker: one consumes (deliveries,
/// acks), the other publishes replies and receives their confirms. Kept apart
/// so a publisher blocked by a broker alarm cannot hold up acks, and so that
/// replies never queue behind deliveries on one socket.
final class BrokerSession {
    let endpoint: BrokerEndpoint
    let consumer: AMQPConnection
    private(set) var replies: ReplyPublisher
    private let settings: Settings
    private let instanceName: String
    private(set) var consumerTag: String
    /// The consumer of this worker's cancel queue (nil: cancellation is off).
    private(set) var cancelConsumerTag: String?
    var consumerAssembler: ContentAssembler
    var publisherAssembler: ContentAssembler

    var publisher: AMQPConnection { replies.connection }

    /// Connects both, declares the topology when configured to, and starts consuming.
    init(endpoint: BrokerEndpoint, settings: Settings, instanceName: String) throws(AMQPError) {
        self.endpoint = endpoint
        self.settings = settings
        self.instanceName = instanceName
        consumer = try AMQPConnection(
            options: settings.amqpOptions(for: endpoint, connectionName: "chatqueue \(instanceName) consumer"))
        replies = try Self.connectPublisher(to: endpoint, settings: settings, instanceName: instanceName)
        consumerAssembler = ContentAssembler(maxBodyBytes: settings.worker.maxRequestBytes)
        // Returned replies are only read for their headers; their bodies need not be kept.
        publisherAssembler = ContentAssembler(maxBodyBytes: 0)

        let queue = settings.queue
        if queue.declare {
            try Self.declareTopology(on: consumer, queue: queue)
        }
        try consumer.setPrefetch(settings.worker.concurrency)
        // Cancels first: if their exchange can't be set up (permissions, a
        // different exchange of that name) the session fails before it took
        // any request, instead of taking and handing back requests at every
        // reconnect; and no cancel for a redelivered request is missed.
        cancelConsumerTag = try Self.consumeCancels(on: consumer, queue)
        consumerTag = try consumer.consume(queue: queue.name)
        // Acks are written once per loop turn (`writeQueued()`).
        consumer.queuesSettlements = true
    }

    private static func connectPublisher(
        to endpoint: BrokerEndpoint, settings: Settings, instanceName: String
    ) throws(AMQPError) -> ReplyPublisher {
        try ReplyPublisher(
            connection: AMQPConnection(
                options: settings.amqpOptions(for: endpoint, connectionName: "chatqueue \(instanceName) publisher")))
    }

    /// A publisher being closed after a replacement: still read until the
    /// broker's close-ok, so the confirms of the finals it carried settle
    /// them and nothing it wrote is cut off by a reset.
    final class RetiringPublisher {
        let replies: ReplyPublisher
        /// Its own assembler: a returned reply may be half read.
        var assembler: ContentAssembler
        /// It is given up at this time if the broker has not closed it.
        let until: Deadline

        init(replies: ReplyPublisher, assembler: ContentAssembler, until: Deadline) {
            self.replies = replies
            self.assembler = assembler
            self.until = until
        }
    }

    /// The publisher being closed, at most one.
    var retiring: RetiringPublisher?

    /// Replaces the publishing connection with a new one to the node the
    /// worker consumes from (known to be up): a channel opened while a
    /// quorum reply queue elected a leader can refuse every publish to that
    /// queue for good (docs/operations.md "Scaling out"), and only a new
    /// channel gets through. The old connection is closed cleanly but not
    /// waited for: it becomes `retiring` (read until the broker's close-ok
    /// or `retireBy`), so the finals it carried are still confirmed or
    /// refused there. The new one takes over the replies not yet written.
    /// Call only when no publisher is retiring and the old one has no encoded
    /// bytes left to write.
    func replacePublisher(retireBy: Deadline) throws(AMQPError) {
        precondition(retiring == nil, "one publisher retires at a time")
        let fresh = try Self.connectPublisher(to: endpoint, settings: settings, instanceName: instanceName)
        let old = replies
        try fresh.adoptBacklog(of: old)
        old.connection.beginClose()
        retiring = RetiringPublisher(replies: old, assembler: publisherAssembler, until: retireBy)
        replies = fresh
        publisherAssembler = ContentAssembler(maxBodyBytes: 0)
    }

    /// Writes this loop turn's acks and replies (one non-blocking write each).
    func writeQueued() throws(AMQPError) {
        if consumer.hasUnsentFrames { try consumer.writeUnsent() }
        if replies.hasBacklog { try replies.flush() }
    }


    /// The request queue with its dead-letter exchange and queue (docs/protocol.md "Topology").
    static func declareTopology(on connection: AMQPConnection, queue: Settings.Queue) throws(AMQPError) {
        let typeArgument: [(String, AMQPFieldValue)] = [("x-queue-type", .string(queue.type.rawValue))]
        try connection.declareExchange(queue.deadLetterExchange, type: "fanout", durable: true)
        try connection.declareQueue(queue.deadLetterQueue, durable: true, arguments: typeArgument)
        try connection.bindQueue(queue.deadLetterQueue, exchange: queue.deadLetterExchange)
        try connection.declareQueue(
            queue.name, durable: true,
            arguments: typeArgument + [("x-dead-letter-exchange", .string(queue.deadLetterExchange))])
    }

    /// Declares the cancel exchange (fanout, durable) and this worker's own
    /// queue on it (server-named, exclusive, auto-delete: it goes with the
    /// connection), consumed without acks. Unsubscribing from requests
    /// (degraded, draining) leaves it alone: cancels keep working.
    func consumeCancels(_ queue: Settings.Queue) throws(AMQPError) {
        cancelConsumerTag = try Self.consumeCancels(on: consumer, queue)
    }

    /// Declares the cancel exchange and this worker's queue bound to it, and
    /// consumes it; returns the consumer tag (nil: cancellation is off).
    private static func consumeCancels(on consumer: AMQPConnection, _ queue: Settings.Queue) throws(AMQPError) -> String? {
        guard let exchange = queue.cancelExchange else { return nil }
        try consumer.declareExchange(exchange, type: "fanout", durable: true)
        let cancelQueue = try consumer.declareQueue("", durable: false, exclusive: true, autoDelete: true)
        try consumer.bindQueue(cancelQueue, exchange: exchange)
        return try consumer.consume(queue: cancelQueue, noAck: true, exclusive: true)
    }

    /// Whether the consumer is subscribed (false after a cancel, ours or the broker's).
    private(set) var isConsuming = true

    /// Subscribes again with a new prefetch (after the broker cancelled the
    /// consumer, or to switch between normal and probing mode).
    func subscribe(queue: String, prefetch: Int) throws(AMQPError) {
        try consumer.setPrefetch(prefetch)
        consumerTag = try consumer.consume(queue: queue)
        isConsuming = true
    }

    /// Stops deliveries (basic.cancel; what is already delivered still arrives).
    func unsubscribe() throws(AMQPError) {
        guard isConsuming else { return }
        isConsuming = false
        try consumer.cancel(consumerTag: consumerTag)
    }

    /// The broker cancelled the consumer on its own (queue deleted, consumer_timeout).
    func consumerWasCancelled() {
        isConsuming = false
    }
}
