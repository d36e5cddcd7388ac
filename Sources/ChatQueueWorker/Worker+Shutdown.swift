import ChatQueueSystem
import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore
import Logging

extension Worker {
    // MARK: - Shutdown

    func handleSignals() {
        let received = signals.take()
        guard !received.isEmpty else { return }
        if draining {
            logger.notice("second signal: stopping now")
            timers.drain = .now()
            return
        }
        draining = true
        state = .draining
        timers.drain = Deadline.now().adding(seconds: settings.worker.shutdownGrace)
        for request in Array(inFlight.values) {
            do {
                try perform(request.machine.drainStarted(), for: request)
            } catch {
                brokerFailure = brokerFailure ?? (error as? AMQPError)
            }
        }
        logger.notice(
            "draining: no new requests",
            metadata: ["requests.in_flight": "\(inFlight.count)", "shutdown.grace_s": "\(settings.worker.shutdownGrace)"])
        if let session {
            do {
                try session.unsubscribe()
            } catch {
                brokerFailure = error
            }
        }
    }

    /// While draining: whether the loop is done. Every request settled and
    /// every final confirmed; or the grace is over, and everything unsettled
    /// goes back to the queue, whatever the broker does with our replies meanwhile.
    func drainIsOver(_ session: BrokerSession, now: Deadline) throws -> Bool {
        if now >= timers.drain {
            try abortForShutdown()
            return true
        }
        return inFlight.isEmpty && session.replies.unconfirmedFinals == 0
    }

    /// Grace is over: stop the transfers and hand every unsettled delivery back.
    func abortForShutdown() throws {
        for request in Array(inFlight.values) {
            try perform(request.machine.shutdownGraceOver(), for: request)
        }
        timers.drain = .never
    }

    /// Seconds each step of closing a connection at exit may take: the broker
    /// may be slow or gone, and systemd's stop timeout is near.
    static let closeTimeout = 2.0

    /// Ends the session. Queued acks and requeues go out on the consumer
    /// connection; a publisher that still holds replies, waits for confirms or
    /// is blocked by the broker is given up rather than closed, since a clean
    /// close would wait for a broker that is not answering it.
    func closeSession() {
        guard let session else { return }
        session.replies.close(timeout: Self.closeTimeout)
        session.consumer.close(timeout: Self.closeTimeout)
        self.session = nil
    }

    /// At exit: one last export of the spans held, bounded like the connection closes.
    func finishSpanExport() {
        guard let spanExporter else { return }
        if !spanExporter.shutdown(timeout: Self.closeTimeout) {
            logger.warning("span export did not finish in time; the spans left are dropped")
        }
        let figures = spanExporter.figures
        logger.info(
            "span export stopped",
            metadata: [
                "spans.exported": "\(figures.exported)",
                "spans.dropped": "\(figures.droppedQueueFull + figures.droppedExportFailed)",
            ])
    }

    /// The connection is gone: its deliveries return to the queue by themselves; drop our side.
    func abandonInFlight() {
        let count = inFlight.count
        for request in Array(inFlight.values) {
            let action = request.machine.connectionLost()
            if case .forget(let stopTransfer) = action, stopTransfer { self.stopTransfer(of: request) }
            untrack(request)
            requestEnded(request, settlement: nil, reason: nil)
        }
        if count > 0 {
            logger.warning("abandoned in-flight requests; the broker requeues them", metadata: ["requests.count": "\(count)"])
        }
        pausedRequests.removeAll()
        waitingForUpstream.removeAll()
        timers.requests = .never
        // A failure of the lost session's must not end the next one.
        brokerFailure = nil
    }
}
