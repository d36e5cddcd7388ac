import ChatQueueAMQP
import ChatQueueCore
import ChatQueueHTTP
import Logging

/// The session's two broker sockets, as the loop watches them.
struct BrokerSockets {
    let consumer: Int32
    /// Changes when a refused final has the publisher replaced.
    var publisher: Int32

    init(_ session: BrokerSession) {
        consumer = session.consumer.socketDescriptor
        publisher = session.publisher.socketDescriptor
    }
}

/// The phases of a loop turn (`Worker.serve()`), in the order they run.
extension Worker {
    func watch(_ sockets: BrokerSockets) throws {
        try poller.watch(sockets.consumer, as: .consumer, readable: true, writable: false)
        try poller.watch(sockets.publisher, as: .publisher, readable: true, writable: false)
    }

    func forget(_ sockets: BrokerSockets) {
        poller.forget(sockets.consumer)
        poller.forget(sockets.publisher)
    }

    /// Before waiting (ae.c's `beforeSleep`): the turn's acks and replies, one
    /// send each on plain TCP; paused transfers resumed once replies drained
    /// to a quarter of the limit (what they kept is written too); each broker
    /// socket watched for room only while our bytes wait for it, and for
    /// input unless they do (see `isWaitingForRoom`).
    func writeTurnOutput(_ session: BrokerSession, _ sockets: BrokerSockets) throws {
        try session.writeQueued()
        if !pausedRequests.isEmpty, session.replies.backlogBytes <= settings.replies.maxBacklogBytes / 4 {
            try resumePausedTransfers()
            try session.writeQueued()
        }
        try poller.update(
            sockets.publisher, as: .publisher, readable: !session.publisher.isWaitingForRoom,
            writable: session.replies.waitsForWritable)
        try poller.update(
            sockets.consumer, as: .consumer, readable: !session.consumer.isWaitingForRoom,
            writable: session.consumer.hasUnsentFrames)
    }

    /// Until the nearest timer; not at all while rabbitmq-c holds input
    /// (no wait would report it).
    func waitTimeout(_ session: BrokerSession, now: Deadline) -> Int32 {
        if session.consumer.hasBufferedInput || session.publisher.hasBufferedInput
            || session.retiring?.replies.connection.hasBufferedInput == true
        {
            return 0
        }
        // A replacement waiting for its time, and a retiring publisher's deadline, wake the loop too.
        var publisherDeadline = session.retiring?.until ?? .never
        if publisherReplacementWanted { publisherDeadline = min(publisherDeadline, nextPublisherReplacement) }
        let others = min(supervisor.nextDeadline(), spanExporter?.nextDeadline ?? .never, publisherDeadline)
        return timers.waitTimeout(now: now, others: others)
    }

    /// The one handler of each watched descriptor. A failed or hung-up socket
    /// is readable and writable (`EventPoll.Event`): its read or write reports the error.
    func handle(_ event: EventPoll.Event, _ session: BrokerSession) throws {
        switch event.source {
        case .consumer:
            if event.writable, session.consumer.hasUnsentFrames { try session.consumer.writeUnsent() }
            if event.readable { try drainConsumer(session) }
        case .publisher:
            if event.writable { try session.replies.flush() }
            if event.readable { try drainPublisher(session) }
        case .retiringPublisher:
            try drainRetiring(session, BrokerSockets(session))
        case .signals:
            handleSignals()
            try throwPendingBrokerFailure()
        case .upstream:
            // Chunks are forwarded from inside; a broker error raised there is rethrown here.
            try multi.socketAction(
                event.descriptor, readable: event.reportedReadable, writable: event.reportedWritable,
                failed: event.failed)
            try throwPendingBrokerFailure()
        }
    }

    /// Input no wait reports: frames rabbitmq-c already read (by a synchronous
    /// call, or left while our bytes waited for room); and, when the heartbeat
    /// service is due, a read of each socket however idle, so that rabbitmq-c
    /// sends our heartbeats and notices a silent broker.
    func readBufferedInput(_ session: BrokerSession) throws {
        let heartbeatsDue = timers.heartbeatsDue(now: .now())
        if heartbeatsDue || session.publisher.hasBufferedInput { try drainPublisher(session) }
        if heartbeatsDue || session.consumer.hasBufferedInput { try drainConsumer(session) }
        if session.retiring?.replies.connection.hasBufferedInput == true { try drainRetiring(session, BrokerSockets(session)) }
    }

    /// libcurl's timer, when due: libcurl starts new transfers and handles its own timeouts.
    func runUpstreamTimer() throws {
        guard !timers.upstream.isNever, Deadline.now() >= timers.upstream else { return }
        timers.upstream = .never
        try multi.timeoutAction()
        try throwPendingBrokerFailure()
    }

    /// The transfers that ended this turn: each request's machine decides between its final reply and a retry.
    func completeFinishedTransfers() throws {
        for (transfer, result) in multi.takeCompleted() {
            try complete(transfer, result: result)
        }
    }

    /// Time events: the supervisor's (status file, watchdog), the span exporter's
    /// hand-over (at most once per `tracing.export_interval`) and the requests' timers.
    func runTimers(now: Deadline) throws {
        supervisor.tick(self, now: now)
        spanExporter?.handOver(now: now)
        if now >= timers.requests { try fireTimers(now: now) }
    }

}

extension Worker: CurlSocketWatcher {
    public func curlMulti(_ multi: CurlMulti, watch socket: Int32, readable: Bool, writable: Bool) {
        do {
            try poller.watch(socket, as: .upstream, readable: readable, writable: writable)
        } catch {
            // No room for another watch (ENOMEM, ENOSPC): the transfer hears
            // nothing, and its first-byte or idle timer ends the try.
            logger.error("cannot watch an upstream socket", metadata: ["error": "\(error)"])
        }
    }

    public func curlMulti(_ multi: CurlMulti, timerIn milliseconds: Int?) {
        guard let milliseconds else {
            timers.upstream = .never
            return
        }
        // Saturating: a timeout libcurl derives from a huge setting can't trap.
        let (nanoseconds, overflow) = UInt64(clamping: milliseconds).multipliedReportingOverflow(by: 1_000_000)
        timers.upstream = Deadline.now() + (overflow ? .max : nanoseconds)
    }
}
