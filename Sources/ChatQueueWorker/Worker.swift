import CCurl
import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The worker: one thread, one loop. It owns the broker connections and the
/// curl multi handle and waits in `curl_multi_poll` with the AMQP sockets and
/// a signal descriptor as extra descriptors. Every request is a delivery that
/// becomes HTTP tries, chunks and exactly one final reply per attempt, and is
/// acked only once the broker confirmed that final reply.
public final class Worker: ChunkSink {
    /// What the process adds to the configuration.
    public struct Options: Sendable {
        /// Shown in connection names and logs.
        public var instanceName: String

        public init(instanceName: String = "worker") {
            self.instanceName = instanceName
        }
    }

    let settings: Settings
    let options: Options
    let retryPolicy: RetryPolicy
    var logger: Logger
    private let upstreamOptions: CurlRequestOptions
    private let upstreamHeaders: CurlHeaderList
    private let multi: CurlMulti
    private let signals: SignalDescriptor

    private var session: BrokerSession?
    private var inFlight: [UInt64: InFlightRequest] = [:]
    public private(set) var counters = WorkerCounters()
    private var nextTimerCheck: UInt64 = .max
    /// A broker error raised inside a libcurl callback, rethrown by the loop.
    private var brokerFailure: AMQPError?

    /// Shutdown: set on the first SIGTERM/SIGINT.
    private var draining = false
    private var drainDeadline: UInt64 = .max

    public init(settings: Settings, options: Options = Options(), logger: Logger) {
        signals = SignalDescriptor()
        self.settings = settings
        self.options = options
        self.logger = logger
        retryPolicy = RetryPolicy(
            maxAttempts: settings.retry.maxAttempts, baseDelay: settings.retry.baseDelay,
            maxDelay: settings.retry.maxDelay, maxRetryAfter: settings.retry.maxRetryAfter)
        upstreamOptions = CurlRequestOptions(
            url: settings.upstream.completionsURL, connectTimeout: settings.upstream.connectTimeout)
        var headers = ["Content-Type: application/json", "Expect:", "User-Agent: chatqueue/\(ChatQueueVersion.current)"]
        if let key = settings.upstream.apiKey { headers.append("Authorization: Bearer \(key.value)") }
        upstreamHeaders = CurlHeaderList(headers)
        multi = CurlMulti(maxConnections: settings.worker.concurrency)
    }

    // MARK: - Run

    /// Serves until SIGTERM/SIGINT and a clean drain. Connection losses are
    /// retried forever with jittered exponential backoff over every broker URL.
    /// Returns the process exit code.
    public func run() -> Int32 {
        let endpoints = settings.broker.endpoints
        var endpointIndex = 0
        var backoff = 0.5
        var connectedBefore = false
        while !draining {
            let endpoint = endpoints[endpointIndex % endpoints.count]
            do {
                session = try BrokerSession(endpoint: endpoint, settings: settings, instanceName: options.instanceName)
                if connectedBefore { counters.reconnects += 1 }
                connectedBefore = true
                backoff = 0.5
                logger.info(
                    "consuming",
                    metadata: [
                        "broker.url": "\(endpoint.redacted)", "queue.name": "\(settings.queue.name)",
                        "worker.concurrency": "\(settings.worker.concurrency)",
                        "upstream.url": "\(settings.upstream.completionsURL)",
                    ])
            } catch {
                logger.error(
                    "cannot connect to the broker",
                    metadata: ["broker.url": "\(endpoint.redacted)", "error": "\(error)"])
                endpointIndex += 1
                let wait = Double.random(in: backoff / 2...backoff)
                backoff = min(backoff * 2, 30)
                if !signals.wait(seconds: wait).isEmpty { break }
                continue
            }
            do {
                try serve()
                closeSession()
                logger.info("stopped", metadata: ["requests.received": "\(counters.received)"])
                return 0
            } catch {
                logger.error("broker connection lost", metadata: ["error": "\(error)"])
                abandonInFlight()
                session = nil
                endpointIndex += 1
                if !signals.wait(seconds: Double.random(in: 0.1...0.5)).isEmpty { break }
            }
        }
        logger.info("stopped")
        return 0
    }

    /// The event loop for one broker session. Returns after a clean drain; throws when the session is lost.
    private func serve() throws {
        guard let session else { return }
        var descriptors: [curl_waitfd] = [
            .readable(session.consumer.socketDescriptor),
            .readable(session.publisher.socketDescriptor),
            .readable(signals.descriptor),
        ]
        let heartbeatService = settings.broker.heartbeat > 0
            ? MonotonicClock.nanoseconds(Double(settings.broker.heartbeat) / 4) : UInt64.max
        var lastHeartbeatService = MonotonicClock.now()

        while true {
            let now = MonotonicClock.now()
            let serviceHeartbeats = heartbeatService != .max && now &- lastHeartbeatService >= heartbeatService
            if serviceHeartbeats { lastHeartbeatService = now }

            // 1. Broker input: what poll reported, what the library already buffered, or a heartbeat due.
            if descriptors[1].isReadable || session.publisher.hasBufferedInput || serviceHeartbeats {
                try drainPublisher(session)
            }
            if descriptors[0].isReadable || session.consumer.hasBufferedInput || serviceHeartbeats {
                try drainConsumer(session)
            }
            if descriptors[2].isReadable { handleSignals() }

            // 2. Upstream I/O; chunks are forwarded from inside perform().
            try multi.perform()
            if let failure = brokerFailure {
                brokerFailure = nil
                throw failure
            }
            for (transfer, result) in multi.takeCompleted() {
                try complete(transfer, result: result)
            }

            // 3. Timers.
            let afterIO = MonotonicClock.now()
            if afterIO >= nextTimerCheck { try fireTimers(now: afterIO) }
            if draining {
                if afterIO >= drainDeadline { try abortForShutdown(session) }
                if inFlight.isEmpty && session.replies.unconfirmedFinals == 0 { return }
            }

            // 4. Wait. Input the library already holds must not wait for the socket.
            var timeout: UInt64 = 1_000_000_000
            if nextTimerCheck != .max { timeout = min(timeout, nextTimerCheck &- min(nextTimerCheck, afterIO)) }
            if draining && drainDeadline != .max { timeout = min(timeout, drainDeadline &- min(drainDeadline, afterIO)) }
            if heartbeatService != .max { timeout = min(timeout, heartbeatService) }
            if session.consumer.hasBufferedInput || session.publisher.hasBufferedInput { timeout = 0 }
            for index in descriptors.indices { descriptors[index].revents = 0 }
            try multi.poll(extraDescriptors: &descriptors, timeoutMilliseconds: Int32((timeout + 999_999) / 1_000_000))
        }
    }

    // MARK: - Broker input

    private func drainConsumer(_ session: BrokerSession) throws {
        while let frame = try session.consumer.readFrame() {
            guard let output = try session.consumerAssembler.handle(frame) else { continue }
            switch output {
            case .message(let message):
                try handleDelivery(message, session: session)
            case .method(let method, _):
                try handleConsumerMethod(method, session: session)
            }
        }
    }

    private func drainPublisher(_ session: BrokerSession) throws {
        while let frame = try session.publisher.readFrame() {
            guard let output = try session.publisherAssembler.handle(frame) else { continue }
            switch output {
            case .message(let returned):
                // basic.return precedes the confirm of the same publish; the request is still acked then.
                counters.unroutableReplies += 1
                let requestID = returned.properties.headers["x-request-id"]?.stringValue ?? "?"
                logger.warning(
                    "reply unroutable: the requester's queue is gone",
                    metadata: [
                        "request.id": "\(requestID)",
                        "correlation.id": "\(returned.properties.correlationID ?? "")",
                        "reply.type": "\(returned.properties.type ?? "")",
                        "reply.routing_key": "\(routingKey(of: returned.method))",
                    ])
            case .method(.ack(let tag, let multiple), _):
                try settle(session.replies.handleConfirm(deliveryTag: tag, multiple: multiple, confirmed: true), session)
            case .method(.nack(let tag, let multiple, _), _):
                try settle(session.replies.handleConfirm(deliveryTag: tag, multiple: multiple, confirmed: false), session)
            case .method(.connectionBlocked(let reason), _):
                session.publisherBlocked = true
                logger.warning("broker blocked publishing", metadata: ["reason": "\(reason)"])
            case .method(.connectionUnblocked, _):
                session.publisherBlocked = false
                logger.info("broker unblocked publishing")
            case .method(.channelClose(let code, let text), _), .method(.connectionClose(let code, let text), _):
                throw AMQPError(code: .channelClosed(replyCode: code), message: text, context: "publisher")
            case .method:
                break
            }
        }
    }

    private func routingKey(of method: AMQPMethod) -> String {
        if case .returned(_, _, _, let key) = method { return key }
        return ""
    }

    private func handleConsumerMethod(_ method: AMQPMethod, session: BrokerSession) throws {
        switch method {
        case .cancel(let tag):
            guard !draining else { return }
            logger.warning("broker cancelled the consumer; subscribing again", metadata: ["consumer.tag": "\(tag)"])
            try session.resubscribe(queue: settings.queue.name)
        case .channelClose(let code, let text), .connectionClose(let code, let text):
            throw AMQPError(code: .channelClosed(replyCode: code), message: text, context: "consumer")
        default:
            break
        }
    }

    // MARK: - Requests

    private func handleDelivery(_ message: AMQPMessage, session: BrokerSession) throws {
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
        var requestLogger = logger
        requestLogger[metadataKey: "request.id"] = "\(metadata.requestID)"
        requestLogger[metadataKey: "correlation.id"] = "\(metadata.correlationID)"

        guard let replyTo = metadata.replyTo else {
            requestLogger.warning("request has no reply_to and no replies.default_queue is set; dead-lettering it")
            try session.consumer.reject(deliveryTag: deliveryTag, requeue: false)
            counters.rejected += 1
            return
        }
        let now = MonotonicClock.now()
        let request = InFlightRequest(
            deliveryTag: deliveryTag, metadata: metadata, replyTo: replyTo, body: message.body,
            logger: requestLogger, now: now)
        request.sink = self
        request.idleTimeout = MonotonicClock.nanoseconds(settings.upstream.idleTimeout)
        inFlight[deliveryTag] = request
        requestLogger.debug(
            "request received", metadata: ["request.attempt": "\(metadata.attempt)", "request.bytes": "\(message.bodySize)"])

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
    private func startTry(_ request: InFlightRequest, now: UInt64) throws {
        guard let validated = request.validated else { return }
        request.httpTries += 1
        if request.httpTries > 1 { counters.retried += 1 }
        let transfer = request.body.withUnsafeBytes { body in
            CurlTransfer(options: upstreamOptions, headers: upstreamHeaders, body: body)
        }
        transfer.delegate = request
        request.response = UpstreamResponse(
            forwardChunks: validated.stream, maxResponseBytes: settings.upstream.maxResponseBytes)
        request.transfer = transfer
        request.phase = .calling
        request.firstByteDeadline = now &+ MonotonicClock.nanoseconds(settings.upstream.firstByteTimeout)
        request.idleDeadline = nil
        do {
            try multi.add(transfer)
        } catch {
            request.transfer = nil
            try finish(request, error: ChatError(upstream: .connectionFailed("\(error)")))
            return
        }
        nextTimerCheck = min(nextTimerCheck, request.nextTimer)
    }

    /// A transfer ended: publish the final reply, or retry.
    private func complete(_ transfer: CurlTransfer, result: CURLcode) throws {
        guard let request = transfer.delegate as? InFlightRequest, request.transfer === transfer,
            let response = request.response
        else { return }
        request.transfer = nil
        let outcome = response.outcome(Self.transportResult(result))
        switch outcome {
        case .completion(let body):
            try finish(request, kind: .completion, body: body)
        case .failure(let failure):
            try fail(request, failure, retryAfter: response)
        }
    }

    /// Retries a failed try when the failure and the policy allow, else answers with the error.
    private func fail(_ request: InFlightRequest, _ failure: UpstreamFailure, retryAfter response: UpstreamResponse?) throws {
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
    private func finish(_ request: InFlightRequest, error: ChatError) throws {
        request.rejectWhenSettled = error.disposition == .deadLetter
        request.logger.log(
            level: error.status >= 500 ? .warning : .info, "request failed",
            metadata: [
                "error.code": "\(error.code ?? "")", "error.status": "\(error.status)", "error.message": "\(error.message)",
                "request.tries": "\(request.httpTries)",
            ])
        try finish(request, kind: .error, body: error.responseBody(requestID: request.metadata.requestID, attempts: request.httpTries))
    }

    /// Publishes the final reply; the delivery is settled when the broker confirms it.
    private func finish(_ request: InFlightRequest, kind: ReplyKind, body: [UInt8]) throws {
        guard let session, request.phase != .finalPublished else { return }
        if let transfer = request.transfer {
            multi.remove(transfer)
            request.transfer = nil
        }
        request.phase = .finalPublished
        request.response = nil
        let seq = request.nextSeq
        request.nextSeq += 1
        _ = try body.withUnsafeBytes { bytes in
            try session.replies.publish(kind, body: bytes, to: request.address, seq: seq, settling: request.deliveryTag)
        }
        if kind == .completion { counters.succeeded += 1 } else { counters.failed += 1 }
    }

    /// ChunkSink: called from inside `multi.perform()`.
    func forward(chunk: [UInt8], of request: InFlightRequest) -> Bool {
        guard let session, brokerFailure == nil else { return false }
        let seq = request.nextSeq
        do {
            _ = try chunk.withUnsafeBytes { bytes in
                try session.replies.publish(.chunk, body: bytes, to: request.address, seq: seq, settling: nil)
            }
        } catch let error as AMQPError {
            brokerFailure = error
            return false
        } catch {
            brokerFailure = AMQPError(code: .socket, message: "\(error)", context: "publish chunk")
            return false
        }
        request.nextSeq += 1
        counters.chunksPublished += 1
        return true
    }

    /// Acks (or dead-letters) deliveries whose final reply the broker confirmed.
    private func settle(_ settlements: [PendingConfirms.Settlement], _ session: BrokerSession) throws {
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

    private func fireTimers(now: UInt64) throws {
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
    private func abort(_ request: InFlightRequest, _ failure: UpstreamFailure) throws {
        let response = request.response
        if let transfer = request.transfer {
            multi.remove(transfer)
            request.transfer = nil
        }
        switch failure {
        case .firstByteTimeout:
            try fail(request, failure, retryAfter: response)
        default:
            // idle, request and deadline timeouts are final: the time is spent.
            try finish(request, error: ChatError(upstream: failure))
        }
    }

    // MARK: - Shutdown

    private func handleSignals() {
        let received = signals.take()
        guard !received.isEmpty else { return }
        if draining {
            logger.notice("second signal: stopping now")
            drainDeadline = 0
            return
        }
        draining = true
        drainDeadline = MonotonicClock.now() &+ MonotonicClock.nanoseconds(settings.worker.shutdownGrace)
        logger.notice(
            "draining: no new requests", metadata: ["requests.in_flight": "\(inFlight.count)", "shutdown.grace_s": "\(settings.worker.shutdownGrace)"])
        if let session {
            do {
                try session.consumer.cancel(consumerTag: session.consumerTag)
            } catch {
                brokerFailure = error
            }
        }
    }

    /// Grace is over: stop the transfers and hand their deliveries back.
    private func abortForShutdown(_ session: BrokerSession) throws {
        for request in Array(inFlight.values) where request.phase != .finalPublished {
            if let transfer = request.transfer { multi.remove(transfer) }
            request.transfer = nil
            inFlight.removeValue(forKey: request.deliveryTag)
            try session.consumer.nack(deliveryTag: request.deliveryTag, requeue: true)
            counters.requeued += 1
            request.logger.notice("shutdown grace over; request requeued")
        }
        drainDeadline = .max
    }

    private func closeSession() {
        session?.publisher.close()
        session?.consumer.close()
        session = nil
    }

    /// The connection is gone: its deliveries return to the queue by themselves; drop our side.
    private func abandonInFlight() {
        for request in inFlight.values {
            if let transfer = request.transfer { multi.remove(transfer) }
            request.transfer = nil
        }
        if !inFlight.isEmpty {
            logger.warning("abandoned in-flight requests; the broker requeues them", metadata: ["requests.count": "\(inFlight.count)"])
        }
        inFlight.removeAll()
        nextTimerCheck = .max
    }
}
