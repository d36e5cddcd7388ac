import CCurl
import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP
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
        drainDeadline = MonotonicClock.now() &+ MonotonicClock.nanoseconds(settings.worker.shutdownGrace)
        logger.notice(
            "draining: no new requests", metadata: ["requests.in_flight": "\(inFlight.count)", "shutdown.grace_s": "\(settings.worker.shutdownGrace)"])
        if let session {
            do {
                try session.unsubscribe()
            } catch {
                brokerFailure = error
            }
        }
    }

    /// Grace is over: stop the transfers and hand their deliveries back.
    func abortForShutdown(_ session: BrokerSession) throws {
        for request in Array(inFlight.values) where request.phase != .finalPublished {
            stopTransfer(of: request)
            inFlight.removeValue(forKey: request.deliveryTag)
            try session.consumer.nack(deliveryTag: request.deliveryTag, requeue: true)
            counters.requeued += 1
            request.logger.notice("shutdown grace over; request requeued")
        }
        drainDeadline = .max
    }

    func closeSession() {
        session?.publisher.close()
        session?.consumer.close()
        session = nil
    }

    /// The connection is gone: its deliveries return to the queue by themselves; drop our side.
    func abandonInFlight() {
        for request in inFlight.values {
            stopTransfer(of: request)
        }
        if !inFlight.isEmpty {
            logger.warning("abandoned in-flight requests; the broker requeues them", metadata: ["requests.count": "\(inFlight.count)"])
        }
        inFlight.removeAll()
        pausedRequests.removeAll()
        nextTimerCheck = .max
    }
}
