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
            drainDeadline = 0
            return
        }
        draining = true
        state = .draining
        drainDeadline = RequestStateMachine.adding(
            MonotonicClock.now(), MonotonicClock.nanoseconds(settings.worker.shutdownGrace))
        for request in inFlight.values { request.machine.drainStarted() }
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

    /// Grace is over: stop the transfers and hand every unsettled delivery back.
    func abortForShutdown() throws {
        for request in Array(inFlight.values) {
            try perform(request.machine.shutdownGraceOver(), for: request)
        }
        drainDeadline = .max
    }

    /// Ends the session. Queued acks and requeues go out on the consumer
    /// connection; a publisher the broker blocks (or that still holds replies)
    /// is given up rather than closed, since a clean close would wait for a
    /// broker that is not reading from it.
    func closeSession() {
        guard let session else { return }
        if session.replies.isBlocked || session.replies.hasBacklog {
            session.publisher.abandon()
        } else {
            session.publisher.close()
        }
        session.consumer.close()
        self.session = nil
    }

    /// The connection is gone: its deliveries return to the queue by themselves; drop our side.
    func abandonInFlight() {
        let count = inFlight.count
        for request in Array(inFlight.values) {
            let action = request.machine.connectionLost()
            if case .forget(let stopTransfer) = action, stopTransfer { self.stopTransfer(of: request) }
            inFlight.removeValue(forKey: request.deliveryTag)
        }
        if count > 0 {
            logger.warning("abandoned in-flight requests; the broker requeues them", metadata: ["requests.count": "\(count)"])
        }
        pausedRequests.removeAll()
        nextTimerCheck = .max
    }
}
