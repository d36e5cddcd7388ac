import CCurl
import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP
import Logging

extension Worker {
    // MARK: - Requests

    func handleDelivery(_ message: AMQPMessage, session: BrokerSession) throws {
        guard case .deliver(_, let deliveryTag, let redelivered, _, _) = message.method else { return }
        counters.received += 1
        if draining {
            // Not started yet: hand it straight back for another worker.
            try session.consumer.nack(deliveryTag: deliveryTag, requeue: true)
            counters.requeued += 1
            return
        }
        let metadata = RequestMetadata(
            properties: message.properties, redelivered: redelivered,
            defaultReplyQueue: settings.replies.defaultQueue, makeID: { RequestID.generate() })
        if metadata.attempt > 1 { counters.redelivered += 1 }

        guard let replyTo = metadata.replyTo else {
            InFlightRequest.requestLogger(logger, metadata).warning(
                "request has no reply_to and no replies.default_queue is set; dead-lettering it")
            try session.consumer.reject(deliveryTag: deliveryTag, requeue: false)
            counters.rejected += 1
            return
        }
        guard settings.replies.replyQueuePolicy.allows(replyTo) else {
            InFlightRequest.requestLogger(logger, metadata).warning(
                "reply_to is not in replies.allowed_queues; dead-lettering the request unanswered",
                metadata: ["reply.to": "\(replyTo)"])
            try session.consumer.reject(deliveryTag: deliveryTag, requeue: false)
            counters.rejected += 1
            return
        }
        let now = MonotonicClock.now()
        let request = InFlightRequest(
            deliveryTag: deliveryTag, metadata: metadata, replyTo: replyTo, body: message.body,
            logger: logger, now: now)
        request.sink = self
        request.idleTimeout = MonotonicClock.nanoseconds(settings.upstream.idleTimeout)
        inFlight[deliveryTag] = request
        if logger.logLevel <= .debug {
            request.logger.debug(
                "request received",
                metadata: ["request.attempt": "\(metadata.attempt)", "request.bytes": "\(message.bodySize)"])
        }

        if metadata.attempt > settings.worker.maxDeliveries {
            try finish(request, error: .maxDeliveriesExceeded(attempt: metadata.attempt, limit: settings.worker.maxDeliveries))
            return
        }
        if message.truncated {
            try finish(
                request, error: .requestTooLarge(size: Int(message.bodySize), limit: settings.worker.maxRequestBytes))
            return
        }
        if metadata.invalidDeadline {
            try finish(request, error: .invalidField(param: "x-deadline-ms", message: "x-deadline-ms must be an integer (Unix milliseconds)"))
            return
        }
        request.deadline = now &+ MonotonicClock.nanoseconds(settings.worker.requestTimeout)
        if let deadlineMs = metadata.deadlineMilliseconds {
            let left = deadlineMs - MonotonicClock.wallMilliseconds()
            if left <= 0 {
                try finish(request, error: ChatError(upstream: .deadlineExceeded))
                return
            }
            let requesterDeadline = now &+ UInt64(left) * 1_000_000
            if requesterDeadline < request.deadline {
                request.deadline = requesterDeadline
                request.deadlineFailure = .deadlineExceeded
            }
        }
        switch RequestValidator.validate(
            body: message.body, contentType: message.properties.contentType, allowedModels: settings.upstream.models)
        {
        case .failure(let error):
            try finish(request, error: error)
        case .success(let validated):
            request.validated = validated
            try startTry(request, now: now)
        }
    }

    /// Starts an HTTP try.
    func startTry(_ request: InFlightRequest, now: UInt64) throws {
        guard let validated = request.validated else { return }
        request.httpTries += 1
        if request.httpTries > 1 { counters.retried += 1 }
        let transfer = idleTransfers.popLast() ?? CurlTransfer(options: upstreamOptions, headers: upstreamHeaders)
        request.body.withUnsafeBytes { transfer.prepare(body: $0) }
        transfer.delegate = request
        request.response = UpstreamResponse(
            forwardChunks: validated.stream, maxResponseBytes: settings.upstream.maxResponseBytes)
        request.transfer = transfer
        request.phase = .calling
        request.firstByteDeadline = now &+ MonotonicClock.nanoseconds(settings.upstream.firstByteTimeout)
        request.tryStartedAt = now
        request.firstProgressAt = nil
        request.idleDeadline = nil
        do {
            try multi.add(transfer)
        } catch {
            request.transfer = nil
            recycle(transfer)
            try finish(request, error: ChatError(upstream: .connectionFailed("\(error)")))
            return
        }
        nextTimerCheck = min(nextTimerCheck, request.nextTimer)
    }

    /// A transfer ended: publish the final reply, or retry.
    func complete(_ transfer: CurlTransfer, result: CURLcode) throws {
        guard let request = transfer.delegate as? InFlightRequest, request.transfer === transfer,
            let response = request.response
        else { return }
        request.transfer = nil
        defer { recycle(transfer) }
        let now = MonotonicClock.now()
        supervisor.metrics.upstreamDuration.observe(seconds: Double(now &- request.tryStartedAt) / 1e9)
        if let first = request.firstProgressAt {
            supervisor.metrics.upstreamFirstChunk.observe(seconds: Double(first &- request.tryStartedAt) / 1e9)
        }
        let outcome = response.outcome(
            Self.transportResult(result), status: transfer.responseCode, contentType: transfer.contentType)
        switch outcome {
        case .completion(let body):
            try recordTry(nil)
            try finish(request, kind: .completion, body: body)
        case .failure(let failure):
            try recordTry(failure)
            try fail(request, failure, retryAfter: response)
        }
    }

    /// Retries a failed try when the failure and the policy allow, else answers with the error.
    func fail(_ request: InFlightRequest, _ failure: UpstreamFailure, retryAfter response: UpstreamResponse?) throws {
        let publishedChunks = response?.publishedChunks ?? 0
        var worthRetrying = failure.isRetryable
        if case .streamInterrupted = failure { worthRetrying = true }
        if worthRetrying, publishedChunks == 0, !draining {
            let now = MonotonicClock.now()
            let hint = RetryPolicy.retryAfterSeconds(
                milliseconds: response?.retryAfterMilliseconds, header: response?.retryAfter,
                nowUnixSeconds: Double(MonotonicClock.wallMilliseconds()) / 1000)
            let secondsLeft = request.deadline == .max ? .infinity : Double(request.deadline &- min(request.deadline, now)) / 1e9
            if let wait = retryPolicy.delay(
                triesMade: request.httpTries, retryAfter: hint, secondsLeft: secondsLeft, random: Double.random(in: 0..<1))
            {
                request.logger.info(
                    "upstream try failed; retrying",
                    metadata: ["upstream.failure": "\(failure)", "retry.wait_s": "\(wait)", "request.tries": "\(request.httpTries)"])
                request.phase = .waitingToRetry(until: now &+ MonotonicClock.nanoseconds(wait))
                nextTimerCheck = min(nextTimerCheck, request.nextTimer)
                return
            }
        }
        var error = ChatError(upstream: failure)
        if publishedChunks > 0, failure.isRetryable {
            // Chunks already went out: never retried, reported as an interrupted stream.
            error = ChatError(upstream: .streamInterrupted("\(failure)"))
        }
        try finish(request, error: error)
    }

    /// Failures that say the upstream is unwell (not that the request was wrong).
    static func countsAsUpstreamTrouble(_ failure: UpstreamFailure) -> Bool {
        switch failure {
        case .streamInterrupted, .idleTimeout, .emptyStream: return true
        default: return failure.isRetryable
        }
    }

    private static func transportResult(_ code: CURLcode) -> UpstreamResponse.TransportResult {
        switch code {
        case CURLE_OK:
            return .ok
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SSL_CONNECT_ERROR,
            CURLE_PEER_FAILED_VERIFICATION:
            return .couldNotConnect(String(cString: curl_easy_strerror(code)))
        case CURLE_OPERATION_TIMEDOUT:
            return .connectTimedOut
        default:
            return .failed(String(cString: curl_easy_strerror(code)))
        }
    }

    /// Publishes an error as the final reply.
    func finish(_ request: InFlightRequest, error: ChatError) throws {
        request.rejectWhenSettled = error.disposition == .deadLetter
        request.logger.log(
            level: error.status >= 500 ? .warning : .info, "request failed",
            metadata: [
                "error.code": "\(error.code ?? "")", "error.status": "\(error.status)", "error.message": "\(error.message)",
                "request.tries": "\(request.httpTries)",
            ])
        supervisor.metrics.recordError(code: error.code ?? error.type)
        try finish(request, kind: .error, body: error.responseBody(requestID: request.metadata.requestID, attempts: request.httpTries))
    }

    /// Publishes the final reply; the delivery is settled when the broker confirms it.
    func finish(_ request: InFlightRequest, kind: ReplyKind, body: [UInt8]) throws {
        guard let session, request.phase != .finalPublished else { return }
        stopTransfer(of: request)
        request.phase = .finalPublished
        request.response = nil
        let seq = request.nextSeq
        request.nextSeq += 1
        try session.replies.publish(kind, body: body, to: request.address, seq: seq, settling: request.deliveryTag)
        if kind == .completion {
            counters.succeeded += 1
            supervisor.recordUsage(of: body)
        } else {
            counters.failed += 1
        }
    }

    /// Stops the request's running try, if any, and keeps its easy handle. Not from inside a callback.
    func stopTransfer(of request: InFlightRequest) {
        guard let transfer = request.transfer else { return }
        multi.remove(transfer)
        request.transfer = nil
        recycle(transfer)
    }

    /// Keeps a finished transfer's easy handle for the next request (up to the concurrency).
    func recycle(_ transfer: CurlTransfer) {
        transfer.delegate = nil
        if idleTransfers.count < settings.worker.concurrency { idleTransfers.append(transfer) }
    }

    /// ChunkSink: the idle timer moved; make sure the loop wakes for it.
    func timerArmed(at deadline: UInt64) {
        if deadline < nextTimerCheck { nextTimerCheck = deadline }
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
        let now = MonotonicClock.now()
        for request in paused {
            guard request.phase == .calling, let transfer = request.transfer else { continue }
            let idle = now &+ request.idleTimeout
            request.idleDeadline = idle
            timerArmed(at: idle)
            // May deliver the kept bytes (and forward chunks) before it returns.
            let result = transfer.resume()
            try throwPendingBrokerFailure()
            if result != CURLE_OK {
                // The kept bytes ended the try (an error event, bad JSON, ...):
                // finish it now with what the response recorded.
                multi.remove(transfer)
                try complete(transfer, result: result)
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
    func forward(chunk: [UInt8], of request: InFlightRequest) -> Bool {
        guard let session, brokerFailure == nil else { return false }
        let seq = request.nextSeq
        do {
            try session.replies.publish(
                .chunk, body: chunk, to: request.address, seq: seq, settling: nil,
                prepared: session.replies.writesInBatches ? nil : request.chunkProperties)
        } catch {
            brokerFailure = error
            return false
        }
        request.nextSeq += 1
        counters.chunksPublished += 1
        return true
    }

    /// Acks (or dead-letters) deliveries whose final reply the broker confirmed.
    func settle(_ settlements: [PendingConfirms.Settlement], _ session: BrokerSession) throws {
        for settlement in settlements {
            guard let request = inFlight.removeValue(forKey: settlement.deliveryTag) else { continue }
            if !settlement.confirmed {
                // The broker could not store the reply: let the request be tried again.
                request.logger.warning("broker refused the final reply; requeueing the request")
                try session.consumer.nack(deliveryTag: settlement.deliveryTag, requeue: true)
                counters.requeued += 1
            } else if request.rejectWhenSettled {
                try session.consumer.reject(deliveryTag: settlement.deliveryTag, requeue: false)
                counters.rejected += 1
            } else {
                try session.consumer.ack(deliveryTag: settlement.deliveryTag)
            }
        }
    }

    // MARK: - Timers

    func fireTimers(now: UInt64) throws {
        var next = UInt64.max
        for request in Array(inFlight.values) {
            switch request.phase {
            case .finalPublished:
                continue
            case .waitingToRetry(let until):
                if now >= request.deadline {
                    try finish(request, error: ChatError(upstream: request.deadlineFailure))
                } else if now >= until {
                    try startTry(request, now: now)
                }
            case .calling:
                if now >= request.deadline {
                    try abort(request, request.deadlineFailure)
                } else if let firstByte = request.firstByteDeadline, now >= firstByte {
                    try abort(request, .firstByteTimeout)
                } else if let idle = request.idleDeadline, now >= idle {
                    try abort(request, .idleTimeout)
                }
            }
            next = min(next, request.nextTimer)
        }
        nextTimerCheck = next
    }

    /// Stops a running try because a timer fired.
    func abort(_ request: InFlightRequest, _ failure: UpstreamFailure) throws {
        let response = request.response
        stopTransfer(of: request)
        switch failure {
        case .firstByteTimeout:
            try recordTry(failure)
            try fail(request, failure, retryAfter: response)
        case .idleTimeout:
            try recordTry(failure)
            try finish(request, error: ChatError(upstream: failure))
        default:
            // idle, request and deadline timeouts are final: the time is spent.
            try finish(request, error: ChatError(upstream: failure))
        }
    }
}
