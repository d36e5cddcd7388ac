import ChatQueueCore
import ChatQueueHTTP
import Logging

/// Where an in-flight request sends the chunks it receives (the worker).
protocol ChunkSink: AnyObject {
    /// Publishes one chunk; returns false when it could not (the transfer is then aborted).
    func forward(chunk: [UInt8], of request: InFlightRequest) -> Bool
    /// A timer of the request moved (the idle timer re-arms on every data event).
    func timerArmed(at deadline: UInt64)
    /// Replies are piling up for the broker: upstream reads should pause.
    var repliesBacklogged: Bool { get }
    /// The request's transfer paused itself; resume it when replies drained.
    func transferPaused(_ request: InFlightRequest)
}

/// One delivery being answered: its identity, its body (kept for retries),
/// the current HTTP try and its timers. Owned by the worker's in-flight table
/// and driven on the event loop thread.
final class InFlightRequest: CurlTransferDelegate {
    enum Phase: Equatable {
        /// An HTTP try is running.
        case calling
        /// Waiting before the next HTTP try.
        case waitingToRetry(until: UInt64)
        /// The final reply is published; waiting for the broker's confirm.
        case finalPublished
    }

    let deliveryTag: UInt64
    let metadata: RequestMetadata
    let address: ReplyAddress
    let body: [UInt8]
    /// The worker's logger with `request.id` and `correlation.id`, built at the
    /// first line logged for this request (most requests log none).
    lazy var logger: Logger = Self.requestLogger(workerLogger, metadata)
    private let workerLogger: Logger
    var validated: ValidatedRequest?
    var phase: Phase = .calling

    /// The running HTTP try, if any.
    var transfer: CurlTransfer?
    var response: UpstreamResponse?
    /// HTTP tries started for this delivery.
    var httpTries = 0
    /// x-seq of the next reply.
    var nextSeq: Int64 = 0
    /// This attempt's chunk properties, built at the first chunk.
    lazy var chunkProperties = ReplyPublisher.prepareProperties(.chunk, to: address)
    /// Reject (dead-letter) instead of ack once the final reply is confirmed.
    var rejectWhenSettled = false

    /// The whole request's deadline, and the failure reported when it passes.
    var deadline: UInt64 = .max
    var deadlineFailure: UpstreamFailure = .requestTimeout
    /// Per-try timers (monotonic ns), nil when not armed.
    var firstByteDeadline: UInt64?
    var idleDeadline: UInt64?
    var idleTimeout: UInt64 = 0
    /// When the current try started and when its first data arrived (for the latency metrics).
    var tryStartedAt: UInt64 = 0
    var firstProgressAt: UInt64?

    weak var sink: ChunkSink?

    init(deliveryTag: UInt64, metadata: RequestMetadata, replyTo: String, body: [UInt8], logger: Logger, now: UInt64) {
        self.deliveryTag = deliveryTag
        self.metadata = metadata
        self.address = ReplyAddress(
            replyTo: replyTo, requestID: metadata.requestID, correlationID: metadata.correlationID,
            attempt: metadata.attempt)
        self.body = body
        self.workerLogger = logger
    }

    static func requestLogger(_ logger: Logger, _ metadata: RequestMetadata) -> Logger {
        var requestLogger = logger
        requestLogger[metadataKey: "request.id"] = "\(metadata.requestID)"
        requestLogger[metadataKey: "correlation.id"] = "\(metadata.correlationID)"
        return requestLogger
    }

    /// The earliest timer that can fire for this request.
    var nextTimer: UInt64 {
        switch phase {
        case .calling: return min(deadline, firstByteDeadline ?? .max, idleDeadline ?? .max)
        case .waitingToRetry(let until): return min(deadline, until)
        case .finalPublished: return .max
        }
    }

    // MARK: CurlTransferDelegate

    func transfer(_ transfer: CurlTransfer, didReceiveHeaderLine line: UnsafeRawBufferPointer) {
        response?.headerLine(line)
    }

    func transfer(_ transfer: CurlTransfer, didReceive data: UnsafeRawBufferPointer) -> CurlWriteDecision {
        guard response != nil, let sink else { return .abort }
        if sink.repliesBacklogged {
            // libcurl keeps these bytes and stops reading; the upstream waits
            // (TCP flow control) instead of the worker's memory growing.
            idleDeadline = nil
            firstByteDeadline = nil  // bytes did arrive; the idle timer takes over on resume
            sink.transferPaused(self)
            return .pause
        }
        var forwarded = true
        let step = response!.receive(
            data, status: transfer.responseCode, contentType: transfer.contentType,
            publish: { chunk in
                if forwarded { forwarded = sink.forward(chunk: chunk, of: self) }
            })
        guard forwarded else { return .abort }
        switch step {
        case .abort:
            return .abort
        case .proceed(let progress):
            if progress {
                let now = MonotonicClock.now()
                if firstProgressAt == nil { firstProgressAt = now }
                firstByteDeadline = nil
                let idle = now &+ idleTimeout
                idleDeadline = idle
                sink.timerArmed(at: idle)
            }
            return .consumed
        }
    }
}
