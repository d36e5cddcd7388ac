import ChatQueueAMQP
import ChatQueueCore
import Logging

/// Requesters in control (docs/operations.md "Cancellation"): cancel messages
/// from the cancel exchange and replies the broker returned because the
/// requester's queue is gone become the machine's `cancel` and
/// `requesterGone` events. The in-flight table and its request-id index
/// change together, here.
extension Worker {
    // MARK: - The in-flight table

    func track(_ request: InFlightRequest) {
        inFlight[request.deliveryTag] = request
        inFlightByRequestID.insert(request.metadata.requestID, deliveryTag: request.deliveryTag)
    }

    func untrack(_ request: InFlightRequest) {
        guard inFlight.removeValue(forKey: request.deliveryTag) != nil else { return }
        inFlightByRequestID.remove(request.metadata.requestID, deliveryTag: request.deliveryTag)
        if !waitingForUpstream.isEmpty { waitingForUpstream.removeAll { $0 === request } }
    }

    /// The requests in flight under `requestID` (usually one, often none).
    func requests(withID requestID: String) -> [InFlightRequest] {
        inFlightByRequestID.deliveryTags(of: requestID).compactMap { inFlight[$0] }
    }

    // MARK: - Cancel messages

    /// Seconds between two log lines about malformed cancels (the rest are counted).
    static let malformedCancelLogInterval: UInt64 = 10_000_000_000

    /// A message from the worker's cancel queue (consumed without acks).
    func handleCancel(_ message: AMQPMessage) throws {
        counters.cancelsReceived += 1
        let now = Deadline.now()
        switch CancelMessage.requestID(
            body: message.body, bodySize: message.bodySize, contentType: message.properties.contentType)
        {
        case .failure(let reason):
            counters.cancelsMalformed += 1
            logMalformedCancel(reason, now: now)
        case .success(let requestID):
            // Remembered even when held here: if this worker loses its
            // connection before the cancelled final is confirmed, the request
            // comes back (perhaps to this worker) and must still be cancelled.
            if pendingCancels.remember(requestID, now: now) { counters.cancelsRemembered += 1 }
            let held = requests(withID: requestID)
            guard !held.isEmpty else {
                if logger.logLevel <= .debug {
                    logger.debug("cancel of a request not held here; remembered", metadata: ["request.id": "\(requestID)"])
                }
                return
            }
            for request in held {
                let action = request.machine.cancel()
                if action != .none { request.logger.info("request cancelled by its requester") }
                try perform(action, for: request)
            }
        }
    }

    private func logMalformedCancel(_ reason: CancelMessage.Malformed, now: Deadline) {
        if let last = malformedCancelLoggedAt, now < last + Self.malformedCancelLogInterval {
            malformedCancelsUnlogged += 1
            return
        }
        logger.warning(
            "malformed cancel message dropped",
            metadata: ["cancel.problem": "\(reason)", "cancels.unlogged": "\(malformedCancelsUnlogged)"])
        malformedCancelLoggedAt = now
        malformedCancelsUnlogged = 0
    }

    /// Whether a request arriving now was cancelled before it came.
    func wasCancelledBeforeArrival(_ requestID: String, now: Deadline) -> Bool {
        !pendingCancels.isEmpty && pendingCancels.contains(requestID, now: now)
    }

    // MARK: - Returned replies

    /// The broker returned a reply as unroutable (basic.return, mandatory
    /// publish): the requester's queue is gone. The attempt it belongs to is
    /// told by its x-request-id and x-attempt headers.
    func handleReturnedReply(_ returned: AMQPMessage) throws {
        counters.unroutableReplies += 1
        let headers = returned.properties.headers
        let requestID = headers["x-request-id"]?.stringValue
        let attempt = headers["x-attempt"]?.saturatedInteger
        var abandoned = false
        // The queue it was published to is the one that is gone: a request
        // resent with the same id to a new reply queue is not abandoned.
        let replyQueue = routingKey(of: returned.method)
        if let requestID, let attempt {
            for request in requests(withID: requestID)
            where Int64(request.metadata.attempt) == attempt && request.address.replyTo == replyQueue {
                let action = request.machine.requesterGone()
                abandoned = abandoned || action != .none
                try perform(action, for: request)
            }
        }
        // The return that abandons a request, or a lost final, says it all; the
        // chunks that were on their way meanwhile are counted only.
        let lostFinal = returned.properties.type != ReplyKind.chunk.rawValue
        let level: Logger.Level = abandoned || lostFinal ? .warning : .debug
        guard logger.logLevel <= level else { return }
        var metadata: Logger.Metadata = [
            "request.id": "\(requestID ?? "?")",
            "correlation.id": "\(returned.properties.correlationID ?? "")",
            "reply.type": "\(returned.properties.type ?? "")",
            "reply.routing_key": "\(replyQueue)",
        ]
        // A traced request's reply carries its trace (the worker's span), like its other log lines.
        if case .string(let traceparent) = headers["traceparent"],
            let trace = TraceContext.parse(traceparent: traceparent.utf8, tracestate: nil as [UInt8]?)
        {
            metadata["trace.id"] = "\(trace.traceID.hex)"
            metadata["span.id"] = "\(trace.spanID.hex)"
        }
        logger.log(
            level: level,
            abandoned ? "reply unroutable: the requester's queue is gone; request abandoned" : "reply unroutable",
            metadata: metadata)
    }
}
