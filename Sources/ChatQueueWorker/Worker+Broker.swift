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
                // A refused chunk too (chunks are not published again): the
                // channel may be refusing everything, so move before a final is refused.
                publisherReplacementWanted = true
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

    /// How long a replaced publisher is read while it closes.
    static let publisherRetirement: UInt64 = 5_000_000_000

    /// After a refused final, the replies go on through a new publisher
    /// connection (`BrokerSession.replacePublisher`), at most once a second,
    /// once the old one's encoded bytes are written (called right after the
    /// turn's writes) and any earlier replaced one is closed. Refusals that
    /// come meanwhile wait for the loop to wake at `nextPublisherReplacement`,
    /// before their own republish time. When no new connection can be made
    /// the old one stays and the refused finals are tried there.
    func replacePublisherIfWanted(_ session: BrokerSession, _ sockets: inout BrokerSockets) throws {
        guard publisherReplacementWanted || session.retiring != nil else { return }  // nearly every turn
        let now = Deadline.now()
        if let retiring = session.retiring, now >= retiring.until {
            logger.warning("a replaced publisher did not close in time; giving it up")
            try finishRetiring(session, sockets)
        }
        guard publisherReplacementWanted, now >= nextPublisherReplacement, !session.publisher.hasUnsentFrames,
            !session.replies.isBlocked
        else { return }
        if session.retiring != nil { try finishRetiring(session, sockets) }
        publisherReplacementWanted = false
        nextPublisherReplacement = now + 1_000_000_000
        let old = sockets.publisher
        do {
            try session.replacePublisher(retireBy: now + Self.publisherRetirement)
        } catch {
            logger.warning("cannot open a new publisher connection; keeping the old one", metadata: ["error": "\(error)"])
            return
        }
        // The old socket is read as a retiring one until the broker closes it.
        poller.forget(old)
        try poller.watch(old, as: .retiringPublisher, readable: true, writable: false)
        sockets.publisher = session.publisher.socketDescriptor
        counters.publisherReplacements += 1
        logger.warning(
            "the broker refused a final reply; publishing on a new connection",
            metadata: ["broker.url": "\(session.endpoint.redacted)"])
        // What the new connection took over goes out now, not after the next wait.
        try flushReplies(session, sockets, newlyWatched: true)
    }

    /// Writes the publisher's replies now and (re)registers its socket for
    /// what is left, instead of waiting for the next turn's writes.
    private func flushReplies(_ session: BrokerSession, _ sockets: BrokerSockets, newlyWatched: Bool) throws {
        try session.replies.flush()
        let readable = !session.publisher.isWaitingForRoom
        let writable = session.replies.waitsForWritable
        if newlyWatched {
            try poller.watch(sockets.publisher, as: .publisher, readable: readable, writable: writable)
        } else {
            try poller.update(sockets.publisher, as: .publisher, readable: readable, writable: writable)
        }
    }

    /// Reads the retiring publisher: confirms and returns of what it carried,
    /// until the broker's close-ok (or the connection fails).
    func drainRetiring(_ session: BrokerSession, _ sockets: BrokerSockets) throws {
        guard let retiring = session.retiring else { return }
        while true {
            // Its own failures end it (what it did not confirm is published
            // again); those of the current publisher, while settling, end the session.
            let output: ContentAssembler.Output
            do {
                guard let frame = try retiring.replies.connection.readFrame() else { return }
                guard let assembled = try retiring.assembler.handle(frame) else { continue }
                output = assembled
            } catch {
                logger.notice("a replaced publisher closed", metadata: ["error": "\(error)"])
                try finishRetiring(session, sockets)
                return
            }
            switch output {
            case .message(let returned):
                try handleReturnedReply(returned)
            case .method(.ack(let tag, let multiple), _):
                try settle(
                    retiring.replies.handleConfirm(deliveryTag: tag, multiple: multiple, confirmed: true), session,
                    onRetiring: true)
            case .method(.nack(let tag, let multiple, _), _):
                try settle(
                    retiring.replies.handleConfirm(deliveryTag: tag, multiple: multiple, confirmed: false), session,
                    onRetiring: true)
            case .method(.connectionCloseOK, _), .method(.connectionClose, _), .method(.channelClose, _):
                try finishRetiring(session, sockets)
                return
            case .method:
                break
            }
        }
    }

    /// Drops the retiring publisher. Finals it wrote without a confirm or a
    /// refusal are published again on the current publisher (a duplicate is
    /// possible: at-least-once, docs/protocol.md).
    func finishRetiring(_ session: BrokerSession, _ sockets: BrokerSockets) throws {
        guard let retiring = session.retiring else { return }
        poller.forget(retiring.replies.connection.socketDescriptor)  // before the socket closes
        session.retiring = nil
        let unconfirmed = retiring.replies.unconfirmedDeliveryTags
        for deliveryTag in unconfirmed {
            guard let request = inFlight[deliveryTag] else { continue }
            if case .publishFinal(let reply, _) = request.machine.finalUnconfirmed() {
                try session.replies.publish(
                    ReplyKind(reply.kind), body: reply.body, to: request.address, seq: reply.seq, settling: request.deliveryTag)
            }
        }
        if !unconfirmed.isEmpty {
            logger.notice(
                "finals left unconfirmed by a replaced publisher published again",
                metadata: ["replies.count": "\(unconfirmed.count)"])
            try flushReplies(session, sockets, newlyWatched: false)
        }
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
