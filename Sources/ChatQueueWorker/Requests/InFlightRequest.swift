import ChatQueueCore
import ChatQueueHTTP
import ChatQueueSystem
import Logging

/// Where an in-flight request sends the chunks it receives (the worker).
protocol ChunkSink: AnyObject {
    /// Publishes one chunk as reply `seq`; returns false when it could not (the transfer is then aborted).
    func forward(chunk: [UInt8], seq: Int64, of request: InFlightRequest) -> Bool
    /// A timer of the request moved (the idle timer re-arms on every data event).
    func timerArmed(at deadline: Deadline)
    /// Replies are piling up for the broker: upstream reads should pause.
    var repliesBacklogged: Bool { get }
    /// The request's transfer paused itself; resume it when replies drained.
    func transferPaused(_ request: InFlightRequest)
}

/// One delivery being answered: the resources its state machine's actions
/// work on (the running transfer and its response parser, the reply
/// address, the body kept for retries). What the request is doing is
/// `machine`'s state alone; the worker feeds it events and carries out the
/// actions it returns. Owned by the worker's in-flight table and driven on
/// the event loop thread.
final class InFlightRequest: CurlTransferDelegate {
    let deliveryTag: UInt64
    let metadata: RequestMetadata
    /// Where replies go; a traced request's carry its trace context too.
    var address: ReplyAddress
    /// The body as received (a try to an upstream with a model rename sends a renamed copy).
    let body: [UInt8]
    var machine: RequestStateMachine
    /// The worker's logger with `request.id` and `correlation.id`, built at the
    /// first line logged for this request (most requests log none).
    lazy var logger: Logger = Self.requestLogger(workerLogger, metadata, trace)
    private let workerLogger: Logger
    /// Whether chunks are forwarded (the request's `stream`).
    var streams = false
    /// The upstream of the current (or last) try; the first configured until a try starts.
    var upstream: UpstreamClient
    /// The request's model, for token accounting (the ledger bounds it into a label).
    var model = ""
    /// Its route (index into the worker's `routeUpstreams`).
    var route = 0
    /// The running try holds a place in `upstream`'s window, taken in this round of it.
    var holdsWindowPlace = false
    /// The running try is its upstream's probe (its breaker was not closed when it started).
    var isProbe = false
    var windowRound: UInt64 = 0

    /// The running HTTP try's transfer and response, while `machine` is calling.
    var transfer: CurlTransfer?
    var response: UpstreamResponse?
    /// libcurl holds bytes of the paused transfer: its handle must not serve another request.
    var transferPaused = false

    /// When the current try started and when its first data arrived (for the latency metrics).
    var tryStartedAt: UInt64 = 0
    var firstProgressAt: UInt64?

    /// Monotonic time of the delivery (the request's latencies, the summary line).
    let receivedAt: UInt64
    /// When its first and its last chunk were published (monotonic).
    var firstChunkAt: UInt64?
    var lastChunkAt: UInt64 = 0
    var chunksPublished = 0
    /// The usage its tries reported, summed.
    var usage: TokenUsage?
    /// The final reply it published, for the summary line: its `type` and its error.
    var finalType = "none"
    var finalError: ChatError?
    /// Its place in a trace; nil when not traced (set before anything is logged).
    var trace: RequestTrace?

    weak var sink: ChunkSink?

    init(
        deliveryTag: UInt64, metadata: RequestMetadata, replyTo: String, body: [UInt8], machine: RequestStateMachine,
        upstream: UpstreamClient, logger: Logger, receivedAt: UInt64
    ) {
        self.receivedAt = receivedAt
        self.upstream = upstream
        self.deliveryTag = deliveryTag
        self.metadata = metadata
        self.address = ReplyAddress(
            replyTo: replyTo, requestID: metadata.requestID, correlationID: metadata.correlationID,
            attempt: metadata.attempt)
        self.body = body
        self.machine = machine
        self.workerLogger = logger
    }

    static func requestLogger(_ logger: Logger, _ metadata: RequestMetadata, _ trace: RequestTrace?) -> Logger {
        var requestLogger = logger
        requestLogger[metadataKey: "request.id"] = "\(metadata.requestID)"
        requestLogger[metadataKey: "correlation.id"] = "\(metadata.correlationID)"
        if let trace {
            requestLogger[metadataKey: "trace.id"] = "\(trace.incoming.traceID.hex)"
            requestLogger[metadataKey: "span.id"] = "\(trace.spanID.hex)"
        }
        return requestLogger
    }

    // MARK: CurlTransferDelegate

    func transfer(_ transfer: CurlTransfer, didReceiveHeaderLine line: UnsafeRawBufferPointer) {
        response?.headerLine(line)
    }

    func transfer(_ transfer: CurlTransfer, didReceive data: UnsafeRawBufferPointer) -> CurlWriteDecision {
        guard machine.isCalling, response != nil, let sink else { return .abort }
        if sink.repliesBacklogged {
            // libcurl keeps these bytes and stops reading; the upstream waits
            // (TCP flow control) instead of the worker's memory growing.
            machine.pause()
            transferPaused = true
            sink.transferPaused(self)
            return .pause
        }
        var forwarded = true
        let step = response!.receive(
            data, status: transfer.responseCode, contentType: transfer.contentType,
            publish: { chunk in
                guard forwarded else { return }
                switch machine.chunk() {
                case .publish(let seq): forwarded = sink.forward(chunk: chunk, seq: seq, of: self)
                case .drop: forwarded = false
                }
            })
        guard forwarded else { return .abort }
        switch step {
        case .abort:
            return .abort
        case .proceed(let progress):
            if progress {
                let now = MonotonicClock.now()
                if firstProgressAt == nil { firstProgressAt = now }
                machine.progress(now: Deadline(nanoseconds: now))
                sink.timerArmed(at: machine.nextTimer)
            }
            return .consumed
        }
    }
}
