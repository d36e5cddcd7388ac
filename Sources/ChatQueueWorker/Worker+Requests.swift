import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP
import ChatQueueSystem
import Logging

/// Requests: deliveries become state machines (`RequestStateMachine`), and
/// this file turns what happens (a delivery, a transfer's end, a timer, a
/// confirm) into the machine's events and carries out the actions it returns.
/// Nothing here decides what a request does next.
extension Worker {
    typealias Action = RequestStateMachine.Action

    // MARK: - Arrival

    func handleDelivery(_ message: AMQPMessage, session: BrokerSession) throws {
        guard case .deliver(_, let deliveryTag, let redelivered, _, let routingKey) = message.method else { return }
        counters.received += 1
        let metadata = RequestMetadata(
            properties: message.properties, redelivered: redelivered,
            defaultReplyQueue: settings.replies.defaultQueue, makeID: { RequestID.generate() })
        if metadata.attempt > 1 { counters.redelivered += 1 }
        // Degraded: one delivery per probe subscription.
        if state == .degraded, session.isConsuming { try session.unsubscribe() }
        let now = Deadline.now()
        let deadline = requestDeadline(metadata, now: now)
        let request = InFlightRequest(
            deliveryTag: deliveryTag, metadata: metadata, replyTo: metadata.replyTo ?? "", body: message.body,
            machine: RequestStateMachine(
                requestID: metadata.requestID, policy: requestPolicy, deadline: deadline.at,
                deadlineFailure: deadline.failure),
            upstream: upstreams[0], logger: logger, receivedAt: now.nanoseconds)
        request.sink = self
        beginTrace(of: request, headers: message.properties.headers, now: now)
        if exportsSpans { request.trace?.routingKey = routingKey }
        if let timestamp = message.properties.timestamp,
            let wait = QueueWait.seconds(timestamp: timestamp, nowUnixMilliseconds: WallClock.unixMilliseconds())
        {
            supervisor.metrics.latencies.queueWait.observe(seconds: wait)
        }
        track(request)
        if logger.logLevel <= .debug {
            request.logger.debug(
                "request received",
                metadata: ["request.attempt": "\(metadata.attempt)", "request.bytes": "\(message.bodySize)"])
        }
        try perform(arrivalAction(of: request, message: message, deadline: deadline, now: now), for: request)
    }

    /// The first event of a delivery's machine: what the contract says about it before any try.
    private func arrivalAction(
        of request: InFlightRequest, message: AMQPMessage, deadline: RequestDeadline, now: Deadline
    ) -> Action {
        let metadata = request.metadata
        if draining {
            // Not started yet: hand it straight back for another worker.
            return request.machine.handBack()
        }
        guard let replyTo = metadata.replyTo else {
            request.logger.warning("request has no reply_to and no replies.default_queue is set; dead-lettering it")
            return request.machine.refuse()
        }
        guard replyQueuePolicy.allows(replyTo) else {
            request.logger.warning(
                "reply_to is not in replies.allowed_queues; dead-lettering the request unanswered",
                metadata: ["reply.to": "\(replyTo)"])
            return request.machine.refuse()
        }
        if wasCancelledBeforeArrival(metadata.requestID, now: now) {
            request.logger.info("request cancelled before it arrived; answered without calling the upstream")
            return request.machine.cancel()
        }
        if metadata.attempt > settings.worker.maxDeliveries {
            return request.machine.answer(
                .maxDeliveriesExceeded(attempt: metadata.attempt, limit: settings.worker.maxDeliveries))
        }
        if message.truncated {
            let size = Int(clamping: message.bodySize)
            return request.machine.answer(.requestTooLarge(size: size, limit: settings.worker.maxRequestBytes))
        }
        if metadata.invalidDeadline {
            return request.machine.answer(
                .invalidField(
                    param: "x-deadline-ms",
                    message: "x-deadline-ms must be an integer of Unix milliseconds in 0...253402300799999"))
        }
        if deadline.passed {
            return request.machine.answer(ChatError(upstream: .deadlineExceeded))
        }
        switch RequestValidator.validate(
            body: message.body, contentType: message.properties.contentType, allowedModels: settings.upstream.models)
        {
        case .failure(let error):
            return request.machine.answer(error)
        case .success(let validated):
            request.streams = validated.stream
            request.model = validated.model  // token accounting (the ledger bounds it into a label)
            guard let route = routing.route(for: validated.model) else {
                return request.machine.answer(.modelNotFound(validated.model))
            }
            request.route = route
            return request.machine.call(
                now: now, route: routeUpstreams[route], availability: availability(of: request, now: now))
        }
    }

    /// When a request must be done: `worker.request_timeout` from now, or the
    /// requester's `x-deadline-ms` when that is earlier. Saturating: no value
    /// of the header can overflow.
    struct RequestDeadline {
        var at: Deadline
        var failure: UpstreamFailure
        /// x-deadline-ms is already past.
        var passed = false
    }

    func requestDeadline(_ metadata: RequestMetadata, now: Deadline) -> RequestDeadline {
        var deadline = RequestDeadline(at: now.adding(seconds: settings.worker.requestTimeout), failure: .requestTimeout)
        guard let deadlineMs = metadata.deadlineMilliseconds else { return deadline }
        guard
            let requesterDeadline = RequestMetadata.monotonicDeadline(
                unixMilliseconds: deadlineMs, nowUnixMilliseconds: WallClock.unixMilliseconds(), nowMonotonic: now)
        else {
            deadline.passed = true
            return deadline
        }
        if requesterDeadline < deadline.at {
            deadline.at = requesterDeadline
            deadline.failure = UpstreamFailure.deadlineExceeded
        }
        return deadline
    }

    // MARK: - Carrying out actions

    /// Does what the request's machine said. The only place requests start
    /// and stop transfers, publish finals and settle deliveries.
    func perform(_ action: Action, for request: InFlightRequest) throws {
        switch action {
        case .none:
            break
        case .startTransfer(let number):
            if number > 1 { counters.retried += 1 }
            try startTransfer(for: request, now: .now())
        case .awaitUpstream:
            try awaitUpstream(request)
        case .retryLater(let failure, let wait, let stopTransfer):
            // A try a timer stopped (first byte) tells about the upstream's health like any other.
            if stopTransfer { self.stopTransfer(of: request, failure: failure) }
            request.logger.info(
                "upstream try failed; retrying",
                metadata: [
                    "upstream.name": "\(request.upstream.name)", "upstream.failure": "\(failure)",
                    "retry.wait_s": "\(wait)", "request.tries": "\(request.machine.tries)",
                    "retry.upstream": "\(request.machine.nextUpstream?.name ?? request.upstream.name)",
                ])
        case .publishFinal(let reply, let stopTransfer):
            if stopTransfer { self.stopTransfer(of: request, failure: reply.stoppedTry) }
            try publishFinal(reply, of: request)
        case .settle(let settlement, let reason, let stopTransfer):
            if stopTransfer { self.stopTransfer(of: request) }
            untrack(request)
            try settle(request, settlement, reason: reason)
            requestEnded(request, settlement: settlement, reason: reason)
        case .forget(let stopTransfer):
            if stopTransfer { self.stopTransfer(of: request) }
            untrack(request)
            requestEnded(request, settlement: nil, reason: nil)
        }
        timerArmed(at: request.machine.nextTimer)
    }

    /// Starts an HTTP try; a transfer libcurl refuses ends the try at once.
    private func startTransfer(for request: InFlightRequest, now: Deadline) throws {
        // The try's upstream: the route's first, or the next one after a failure (fallback).
        let target = request.machine.upstream
        let upstream = target.map { upstreams[$0.index] } ?? upstreams[0]
        request.upstream = upstream
        tryStarted(request, now: now)
        let transfer = upstream.transfer()
        // A route may rename the model for this upstream (validated bodies are objects, so it applies).
        if let model = target?.model, let renamed = ModelRename.body(request.body, withModel: model) {
            renamed.withUnsafeBytes { transfer.prepare(body: $0) }
        } else {
            request.body.withUnsafeBytes { transfer.prepare(body: $0) }
        }
        if request.trace != nil {
            transfer.use(headers: upstream.headers(adding: traceTryStarted(request, upstream: upstream, now: now)))
        } else {
            transfer.use(headers: nil)
        }
        transfer.delegate = request
        request.response = UpstreamResponse(
            forwardChunks: request.streams, maxResponseBytes: request.machine.policy.maxReplyBytes)
        request.transfer = transfer
        request.transferPaused = false
        request.tryStartedAt = now.nanoseconds
        request.firstProgressAt = nil
        do {
            try multi.add(transfer)
        } catch {
            // Not recycled: the next try gets a fresh handle in case this one is at fault.
            transfer.delegate = nil
            request.transfer = nil
            request.response = nil
            let failure = UpstreamFailure.connectionFailed("\(error)")
            // libcurl refused it locally: nothing about the upstream's health.
            tryFinished(request, failure: nil, stopped: true)
            let ended = request.machine.tryEnded(
                .failure(failure, retryAfter: nil), now: now, random: Double.random(in: 0..<1))
            try perform(ended, for: request)
        }
    }

    /// Publishes the final reply; the delivery is settled when the broker confirms it.
    private func publishFinal(_ reply: RequestStateMachine.FinalReply, of request: InFlightRequest) throws {
        guard let session else { return }
        request.response = nil
        let kind = ReplyKind(reply.kind)
        try session.replies.publish(kind, body: reply.body, to: request.address, seq: reply.seq, settling: request.deliveryTag)
        guard reply.publishes == 1 else {
            counters.finalsRepublished += 1
            request.logger.warning(
                "publishing the final reply again after the broker refused it",
                metadata: ["reply.publishes": "\(reply.publishes)"])
            return
        }
        request.finalType = kind.rawValue
        request.finalError = reply.error
        if request.trace != nil { traceFinalPublished(request) }
        if let error = reply.error, error == .cancelled() {
            counters.cancelled += 1
            supervisor.metrics.recordError(code: "cancelled")
        } else if let error = reply.error {
            counters.failed += 1
            request.logger.log(
                level: error.status >= 500 ? .warning : .info, "request failed",
                metadata: [
                    "error.code": "\(error.code ?? "")", "error.status": "\(error.status)",
                    "error.message": "\(error.message)", "request.tries": "\(request.machine.tries)",
                    "upstream.name": "\(request.upstream.name)",
                ])
            supervisor.metrics.recordError(code: error.code ?? error.type)
        } else {
            counters.succeeded += 1
        }
    }

    /// Acks, dead-letters or requeues the delivery; the request is done.
    private func settle(_ request: InFlightRequest, _ settlement: RequestStateMachine.Settlement, reason: RequestStateMachine.SettleReason) throws {
        guard let session else { return }
        switch settlement {
        case .ack:
            try session.consumer.ack(deliveryTag: request.deliveryTag)
        case .deadLetter:
            try session.consumer.reject(deliveryTag: request.deliveryTag, requeue: false)
            counters.rejected += 1
        case .requeue:
            try session.consumer.nack(deliveryTag: request.deliveryTag, requeue: true)
            counters.requeued += 1
        }
        switch reason {
        case .answered, .unanswerable, .draining:
            break
        case .finalRefused:
            counters.finalsRefused += 1
            request.logger.error(
                "the broker refused the final reply every time; dead-lettering the request",
                metadata: ["reply.publishes": "\(requestPolicy.maxFinalPublishes)"])
        case .shutdown:
            request.logger.notice("shutdown grace over; request requeued")
        case .abandoned:
            counters.abandoned += 1
        case .held:
            counters.held += 1
        }
    }

    // MARK: - Transfers

    /// A transfer ended: the machine decides between the final reply and a retry.
    func complete(_ transfer: CurlTransfer, result: TransferResult) throws {
        guard let request = transfer.delegate as? InFlightRequest, request.transfer === transfer,
            let response = request.response
        else { return }
        request.transfer = nil
        let now = MonotonicClock.now()
        request.upstream.figures.duration.observe(seconds: Double(now &- request.tryStartedAt) / 1e9)
        if let first = request.firstProgressAt {
            request.upstream.figures.firstChunk.observe(seconds: Double(first &- request.tryStartedAt) / 1e9)
        }
        let (outcome, usage) = response.ended(
            Self.transportResult(result), status: transfer.responseCode, contentType: transfer.contentType)
        if let usage { request.addUsage(usage) }
        if request.trace != nil {
            if case .failure(let failure) = outcome {
                traceTryEnded(request, failure: UpstreamFigures.failureLabel(failure), now: now)
            } else {
                traceTryEnded(request, failure: nil, now: now)
            }
        }
        supervisor.accountTry(
            upstream: request.upstream.name, model: request.model, usage: usage, chunks: response.publishedChunks,
            ending: TryEnding(outcome))
        release(transfer, of: request)
        let result: RequestStateMachine.TryResult
        switch outcome {
        case .completion(let body):
            tryFinished(
                request, failure: nil, rateLimited: response.rateLimitExhausted, usage: usage,
                at: Deadline(nanoseconds: now))
            result = .completion(body)
        case .failure(let failure):
            var retryAfter: Double?
            switch RetryBackoff.retryAfterHint(
                milliseconds: response.retryAfterMilliseconds, header: response.retryAfter,
                nowUnixSeconds: WallClock.unixSeconds())
            {
            case .absent: break
            case .seconds(let seconds): retryAfter = seconds
            case .ignored(let value):
                if !loggedIgnoredRetryHint {
                    loggedIgnoredRetryHint = true
                    request.logger.notice(
                        "unusable Retry-After hint from the upstream ignored (logged once)",
                        metadata: ["upstream.retry_after": "\(value)"])
                }
            }
            tryFinished(
                request, failure: failure, retryAfter: retryAfter, rateLimited: response.rateLimitExhausted, usage: usage,
                at: Deadline(nanoseconds: now))
            result = .failure(failure, retryAfter: retryAfter)
        }
        try perform(
            request.machine.tryEnded(result, now: Deadline(nanoseconds: now), random: Double.random(in: 0..<1)),
            for: request)
    }

    private static func transportResult(_ result: TransferResult) -> UpstreamResponse.TransportResult {
        guard case .failed(let error) = result else { return .ok }
        switch error.kind {
        case .couldNotConnect: return .couldNotConnect(error.message)
        case .timedOut: return .connectTimedOut
        case .other: return .failed(error.message)
        }
    }

    /// Stops the request's running try, if any. Not from inside a callback.
    /// `failure`: a timer stopped it (it counts toward the upstream's health);
    /// nil: it was stopped for the request's sake (cancel, shutdown) and says nothing.
    func stopTransfer(of request: InFlightRequest, failure: UpstreamFailure? = nil) {
        guard let transfer = request.transfer else { return }
        if request.trace != nil {
            traceTryEnded(request, failure: failure.map(UpstreamFigures.failureLabel) ?? "stopped", now: MonotonicClock.now())
        }
        tryFinished(request, failure: failure, stopped: failure == nil)
        supervisor.accountTry(
            upstream: request.upstream.name, model: request.model, response: request.response, ending: .stopped)
        multi.remove(transfer)
        request.transfer = nil
        request.response = nil
        release(transfer, of: request)
    }

    /// After a transfer left libcurl: a paused one's handle may still hold
    /// bytes of its response, so it is dropped, never handed to the next
    /// request; any other is kept for reuse.
    private func release(_ transfer: CurlTransfer, of request: InFlightRequest) {
        if request.transferPaused {
            pausedRequests.removeAll { $0 === request }
            transfer.delegate = nil
        } else {
            transfer.delegate = nil
            request.upstream.recycle(transfer)
        }
        request.transferPaused = false
    }

    // MARK: - Chunks and backpressure

    /// ChunkSink: the idle timer moved; make sure the loop wakes for it.
    func timerArmed(at deadline: Deadline) {
        if deadline < timers.requests { timers.requests = deadline }
    }

    /// ChunkSink: more than `replies.max_backlog_bytes` of replies wait for
    /// the broker (an alarm blocks us, or it is slower than the upstream).
    var repliesBacklogged: Bool {
        guard let session else { return false }
        return session.replies.backlogBytes > settings.replies.maxBacklogBytes
    }

    /// ChunkSink: a transfer paused itself because replies are backlogged.
    func transferPaused(_ request: InFlightRequest) {
        if pausedRequests.isEmpty {
            logger.warning(
                "replies backlogged: pausing upstream reads",
                metadata: ["replies.backlog_bytes": "\(session?.replies.backlogBytes ?? 0)"])
        }
        pausedRequests.append(request)
    }

    /// Replies drained to a quarter of the limit: paused transfers continue,
    /// their idle timers re-armed (the pause was ours, not the upstream's).
    func resumePausedTransfers() throws {
        let paused = pausedRequests
        pausedRequests.removeAll()
        logger.notice("replies drained: resuming upstream reads", metadata: ["requests.count": "\(paused.count)"])
        let now = Deadline.now()
        for request in paused {
            guard request.machine.isPaused, let transfer = request.transfer else { continue }
            request.machine.resume(now: now)
            request.transferPaused = false
            timerArmed(at: request.machine.nextTimer)
            // May deliver the kept bytes (and forward chunks) before it returns.
            var refused: TransferError?
            do { try transfer.resume() } catch { refused = error }
            try throwPendingBrokerFailure()
            if let refused {
                // The kept bytes ended the try (an error event, bad JSON, ...):
                // finish it now with what the response recorded.
                multi.remove(transfer)
                try complete(transfer, result: .failed(refused))
            }
        }
    }

    /// A broker error raised inside a libcurl callback (which cannot throw), rethrown by the loop.
    func throwPendingBrokerFailure() throws(AMQPError) {
        guard let failure = brokerFailure else { return }
        brokerFailure = nil
        throw failure
    }

    /// ChunkSink: called from inside libcurl's socket actions.
    func forward(chunk: [UInt8], seq: Int64, of request: InFlightRequest) -> Bool {
        guard let session, brokerFailure == nil else { return false }
        do {
            try session.replies.publish(.chunk, body: chunk, to: request.address, seq: seq, settling: nil)
        } catch {
            brokerFailure = error
            return false
        }
        counters.chunksPublished += 1
        chunkPublished(request)
        return true
    }

    // MARK: - The broker's answers

    /// Confirms and nacks of final replies: the machine settles the delivery or publishes the final again.
    /// `onRetiring`: they came from a replaced publisher, whose refusals call for no new replacement.
    func settle(_ settlements: [PendingConfirms.Settlement], _ session: BrokerSession, onRetiring: Bool = false) throws {
        let now = Deadline.now()
        for settlement in settlements {
            guard let request = inFlight[settlement.deliveryTag] else { continue }
            let action = settlement.confirmed ? request.machine.finalConfirmed() : request.machine.finalRefused(now: now)
            if !settlement.confirmed {
                request.logger.warning("the broker refused the final reply (negative confirm)")
                if !onRetiring { publisherReplacementWanted = true }
            }
            try perform(action, for: request)
        }
    }

    // MARK: - Timers

    /// The requests whose timers are due; the others' re-arm `timers.requests`.
    func fireTimers(now: Deadline) throws {
        timers.requests = .never
        // A copy: performing an action may settle a request and remove it from the table.
        for request in Array(inFlight.values) {
            if request.machine.nextTimer <= now {
                try perform(
                    request.machine.timerFired(
                        now: now, random: Double.random(in: 0..<1), availability: availability(of: request, now: now)),
                    for: request)
            } else {
                timerArmed(at: request.machine.nextTimer)
            }
        }
    }
}
