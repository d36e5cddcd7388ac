import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP
import ChatQueueSystem
import Logging

extension Worker {
    // MARK: - Broker input

    /// Reads the consumer connection's input: deliveries and cancel messages,
    /// at most `maxMessagesPerDrain` of them per call. Deliveries are capped by
    /// the prefetch, cancels (no-ack) are not: a flood of them must not keep the
    /// loop from writing acks, serving libcurl and its timers. The rest waits in
    /// rabbitmq-c's buffer, which makes the next wait return at once.
    func drainConsumer(_ session: BrokerSession) throws {
        var messages = 0
        while messages < Self.maxMessagesPerDrain, let frame = try session.consumer.readFrame() {
            guard let output = try session.consumerAssembler.handle(frame) else { continue }
            switch output {
            case .message(let message):
                messages += 1
                if let cancelTag = session.cancelConsumerTag, case .deliver(cancelTag, _, _, _, _) = message.method {
                    try handleCancel(message)
                } else {
                    try handleDelivery(message, session: session)
                }
            case .method(let method, _):
                try handleConsumerMethod(method, session: session)
            }
        }
    }

    static let maxMessagesPerDrain = 512

    func drainPublisher(_ session: BrokerSession) throws {
        while let frame = try session.publisher.readFrame() {
            guard let output = try session.publisherAssembler.handle(frame) else { continue }
            switch output {
            case .message(let returned):
                // basic.return precedes the confirm of the same publish.
                try handleReturnedReply(returned)
            case .method(.ack(let tag, let multiple), _):
                try settle(session.replies.handleConfirm(deliveryTag: tag, multiple: multiple, confirmed: true), session)
            case .method(.nack(let tag, let multiple, _), _):
                try settle(session.replies.handleConfirm(deliveryTag: tag, multiple: multiple, confirmed: false), session)
            case .method(.connectionBlocked(let reason), _):
                // A resource alarm: replies wait in the outbox; acks (other connection) go on.
                session.replies.isBlocked = true
                logger.warning("broker blocked publishing; replies wait", metadata: ["reason": "\(reason)"])
            case .method(.connectionUnblocked, _):
                session.replies.isBlocked = false
                logger.notice("broker unblocked publishing")
                try session.replies.flush()
            case .method(.channelClose(let code, let text), _), .method(.connectionClose(let code, let text), _):
                throw AMQPError(code: .channelClosed(replyCode: code), message: text, context: "publisher")
            case .method:
                break
            }
        }
    }

    /// After a refused final, the replies go on through a new publisher
    /// connection (`BrokerSession.replacePublisher`), at most once a second
    /// and once the old one's encoded bytes are written (called right after
    /// the turn's writes). The finals it had
    /// out unconfirmed are published again on the new one; the refused ones
    /// wait for their own republish time. When no broker URL takes a new
    /// connection the old one stays and the refused finals are tried there.
    func replacePublisherIfWanted(_ session: BrokerSession, _ sockets: inout BrokerSockets, now: Deadline) throws {
        guard publisherReplacementWanted, now >= nextPublisherReplacement, !session.publisher.hasUnsentFrames,
            !session.replies.isBlocked
        else { return }
        publisherReplacementWanted = false
        nextPublisherReplacement = now + 1_000_000_000
        let oldEndpoint = session.publisherEndpoint
        poller.forget(sockets.publisher)  // before the old socket closes (see EventPoll.forget)
        let unconfirmed: [UInt64]
        do {
            unconfirmed = try session.replacePublisher()
        } catch {
            try poller.watch(sockets.publisher, as: .publisher, readable: true, writable: false)
            logger.warning("cannot open a new publisher connection; keeping the old one", metadata: ["error": "\(error)"])
            return
        }
        sockets.publisher = session.publisher.socketDescriptor
        counters.publisherReplacements += 1
        logger.warning(
            "the broker refused a final reply; publishing on a new connection",
            metadata: [
                "broker.url": "\(session.publisherEndpoint.redacted)", "broker.previous_url": "\(oldEndpoint.redacted)",
                "replies.unconfirmed": "\(unconfirmed.count)",
            ])
        for deliveryTag in unconfirmed {
            guard let request = inFlight[deliveryTag] else { continue }
            if case .publishFinal(let reply, _) = request.machine.finalUnconfirmed() {
                let kind: ReplyKind = reply.kind == .completion ? .completion : .error
                try session.replies.publish(
                    kind, body: reply.body, to: request.address, seq: reply.seq, settling: request.deliveryTag)
            }
        }
        // What the new connection took over goes out now, not after the next wait.
        try session.replies.flush()
        try poller.watch(
            sockets.publisher, as: .publisher, readable: !session.publisher.isWaitingForRoom,
            writable: session.replies.waitsForWritable)
    }

    func routingKey(of method: AMQPMethod) -> String {
        if case .returned(_, _, _, let key) = method { return key }
        return ""
    }

    func handleConsumerMethod(_ method: AMQPMethod, session: BrokerSession) throws {
        switch method {
        case .cancel(let tag) where tag == session.cancelConsumerTag:
            // Our cancel queue was deleted: bind a new one (cancels sent meanwhile are lost).
            logger.warning("broker cancelled the cancel consumer; consuming cancels again", metadata: ["consumer.tag": "\(tag)"])
            try session.consumeCancels(settings.queue)
        case .cancel(let tag):
            session.consumerWasCancelled()
            // Draining: nothing more is wanted. Degraded: the probe logic subscribes when idle.
            guard !draining, state != .degraded else { return }
            logger.warning("broker cancelled the consumer; subscribing again", metadata: ["consumer.tag": "\(tag)"])
            try session.subscribe(queue: settings.queue.name, prefetch: settings.worker.concurrency)
        case .channelClose(let code, let text), .connectionClose(let code, let text):
            throw AMQPError(code: .channelClosed(replyCode: code), message: text, context: "consumer")
        default:
            break
        }
    }
}
