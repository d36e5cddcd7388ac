import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP
import ChatQueueSystem

/// What the span exporter did since the start: the status file's `tracing`
/// object and the `chatqueue_spans_*` metrics. Pure.
public struct SpanExportFigures: Sendable, Equatable {
    /// Whether spans are exported at all (`tracing.otlp_endpoint` is set).
    public var enabled: Bool
    /// Spans a collector accepted (HTTP 2xx).
    public var exported: Int
    /// Spans dropped because `tracing.max_queued_spans` were held already.
    public var droppedQueueFull: Int
    /// Spans dropped because their export failed or was refused (or shutdown's flush ran out of time).
    public var droppedExportFailed: Int
    /// Export requests that failed or were refused.
    public var exportFailures: Int
    /// The last failure ("HTTP 503", "Couldn't connect to server"); nil if none yet.
    public var lastError: String?

    public init(
        enabled: Bool = false, exported: Int = 0, droppedQueueFull: Int = 0, droppedExportFailed: Int = 0,
        exportFailures: Int = 0, lastError: String? = nil
    ) {
        self.enabled = enabled
        self.exported = exported
        self.droppedQueueFull = droppedQueueFull
        self.droppedExportFailed = droppedExportFailed
        self.exportFailures = exportFailures
        self.lastError = lastError
    }
}

/// Exports finished spans to an OTLP/HTTP collector (`POST <endpoint>/v1/traces`,
/// JSON) off the event loop. The loop thread records spans into a local batch
/// (no lock) and hands the batch over at most once per `export_interval` (one
/// lock); a thread of its own encodes and POSTs batches of at most
/// `max_batch_spans`, each given `export_timeout`. Memory is bounded: at most
/// `max_queued_spans` are held in all (local batch, handed over, being sent);
/// beyond that a span is dropped and counted. A failed or refused export drops
/// its spans (counted; no retry queue), so a collector that is down costs the
/// loop nothing and grows nothing.
public final class SpanExporter {
    public struct Options: Sendable {
        /// The collector's base URL; spans go to `<it>/v1/traces`.
        public var endpoint: String
        public var resource: OTLPResource
        public var maxQueuedSpans: Int
        public var maxBatchSpans: Int
        /// Seconds between hand-overs, at least `minimumInterval`.
        public var exportInterval: Double
        public var exportTimeout: Double

        public init(
            endpoint: String, resource: OTLPResource, maxQueuedSpans: Int = 4096, maxBatchSpans: Int = 512,
            exportInterval: Double = 1, exportTimeout: Double = 5
        ) {
            self.endpoint = endpoint
            self.resource = resource
            self.maxQueuedSpans = max(1, maxQueuedSpans)
            self.maxBatchSpans = max(1, maxBatchSpans)
            self.exportInterval = max(SpanExporter.minimumInterval, exportInterval)
            self.exportTimeout = exportTimeout
        }

        /// From `tracing.*`; nil when `tracing.otlp_endpoint` is not set.
        public init?(settings: Settings.Tracing, instance: String, version: String = ChatQueueVersion.current) {
            guard let endpoint = settings.otlpEndpoint else { return nil }
            self.init(
                endpoint: endpoint,
                resource: OTLPResource(serviceName: settings.serviceName, serviceVersion: version, serviceInstanceID: instance),
                maxQueuedSpans: settings.maxQueuedSpans, maxBatchSpans: settings.maxBatchSpans,
                exportInterval: settings.exportInterval, exportTimeout: settings.exportTimeout)
        }

        /// `<endpoint>/v1/traces` (the setting has no trailing slash).
        public var tracesURL: String { endpoint + "/v1/traces" }
    }

    /// A shorter `export_interval` is taken as this (10 ms): the loop must not hand over, nor the
    /// thread POST, on every turn.
    public static let minimumInterval = 0.01

    public let options: Options
    private let channel: ExportChannel
    private let intervalNanoseconds: UInt64

    // Loop-thread state: no lock.
    private var batch: [FinishedSpan] = []
    /// Spans handed over and not yet settled by the export thread, as of the last hand-over.
    /// Only the export thread lowers the real number, so this bound is conservative.
    private var heldByExportThread = 0
    private var droppedQueueFull = 0
    /// The export thread's figures, copied at the last hand-over.
    private var exportSide = ExportChannel.Figures()
    private var nextHandOver: Deadline
    private var isShutDown = false

    /// Starts the export thread. Throws when the system has no room for another thread.
    public init(options: Options) throws(SystemError) {
        self.options = options
        intervalNanoseconds = Deadline.nanoseconds(seconds: options.exportInterval)
        nextHandOver = Deadline.now() + intervalNanoseconds
        batch.reserveCapacity(min(options.maxQueuedSpans, 1024))
        let channel = ExportChannel()
        self.channel = channel
        let options = self.options
        try SystemThread.detach(name: "chatqueue-otlp") {
            ExportThread(options: options, channel: channel).run()
        }
    }

    deinit {
        // Without a shutdown (tests): the thread drops what it holds and ends.
        channel.lock.withLock {
            channel.stopping = true
            channel.pending.removeAll()
            channel.lock.broadcast()
        }
    }

    /// Loop thread, O(1): keeps `span` for the next hand-over, or drops and
    /// counts it when `max_queued_spans` are held already.
    public func record(_ span: FinishedSpan) {
        // After the exit flush nothing is sent any more: such a span counts as not taken (queue_full).
        guard !isShutDown, batch.count + heldByExportThread < options.maxQueuedSpans else {
            droppedQueueFull += 1
            return
        }
        batch.append(span)
    }

    /// When the loop should wake for the next hand-over: never while nothing waits.
    public var nextDeadline: Deadline { batch.isEmpty ? .never : nextHandOver }

    /// Loop thread, once per turn: when the interval is over, moves the batch
    /// to the export thread and takes its figures, under one lock; otherwise
    /// returns at once.
    public func handOver(now: Deadline) {
        guard now >= nextHandOver, !isShutDown else { return }
        nextHandOver = Deadline.now() + intervalNanoseconds
        handOverLocked()
    }

    private func handOverLocked() {
        channel.lock.withLock {
            if !batch.isEmpty {
                channel.held += batch.count
                if channel.pending.isEmpty {
                    swap(&batch, &channel.pending)  // O(1); the batch gets the empty buffer back
                } else {
                    channel.pending.append(contentsOf: batch)
                    batch.removeAll(keepingCapacity: true)
                }
                channel.lock.broadcast()
            }
            heldByExportThread = channel.held
            exportSide = channel.figures
        }
    }

    /// Loop thread, cheap: the figures as of the last hand-over (and this thread's drops).
    public var figures: SpanExportFigures {
        SpanExportFigures(
            enabled: true, exported: exportSide.exported, droppedQueueFull: droppedQueueFull,
            droppedExportFailed: exportSide.droppedExportFailed, exportFailures: exportSide.failures,
            lastError: exportSide.lastError)
    }

    /// Spans recorded and not yet handed over.
    public var batchCount: Int { batch.count }

    /// At worker exit: hands over what is left, lets the thread send it
    /// within `timeout` seconds (each POST's timeout is cut to what is left)
    /// and waits for that at most. Spans not sent by then are dropped and
    /// counted. Returns whether the thread finished in time. Later records are dropped.
    @discardableResult
    public func shutdown(timeout: Double) -> Bool {
        guard !isShutDown else { return channel.lock.withLock { channel.finished } }
        isShutDown = true
        let deadline = Deadline.now().adding(seconds: timeout)
        handOverLocked()
        channel.lock.lock()
        channel.flushDeadline = deadline
        channel.stopping = true
        channel.lock.broadcast()  // the thread may be waiting for spans
        while !channel.finished, Deadline.now() < deadline {
            channel.lock.wait(untilMonotonicNanoseconds: deadline.nanoseconds)
        }
        let finished = channel.finished
        exportSide = channel.figures
        heldByExportThread = channel.held
        channel.lock.unlock()
        // What the thread did not send in time is dropped, as the figures say.
        if !finished { exportSide.droppedExportFailed += heldByExportThread }
        return finished
    }
}

/// What the loop thread and the export thread share, under `lock`.
final class ExportChannel: @unchecked Sendable {
    struct Figures: Sendable, Equatable {
        var exported = 0
        var droppedExportFailed = 0
        var failures = 0
        var lastError: String?
    }

    let lock = ConditionLock()
    /// Handed over, not yet taken by the thread.
    var pending: [FinishedSpan] = []
    /// `pending` plus the batch being sent.
    var held = 0
    var figures = Figures()
    /// Shutdown: send what is pending until `flushDeadline`, then end.
    var stopping = false
    var flushDeadline = Deadline.never
    /// The thread ended.
    var finished = false
}

/// The export thread: waits for spans, encodes and POSTs them a batch at a time.
private struct ExportThread {
    let options: SpanExporter.Options
    let channel: ExportChannel

    func run() {
        let post = CurlBlockingPost(
            url: options.tracesURL, headers: ["Content-Type: application/json"],
            connectTimeout: options.exportTimeout)
        var body: [UInt8] = []
        let lock = channel.lock
        lock.lock()
        while true {
            while channel.pending.isEmpty, !channel.stopping { lock.wait() }
            if channel.stopping, Deadline.now() >= channel.flushDeadline {
                // Shutdown's time is over (or a deinit): what is left is not sent.
                channel.figures.droppedExportFailed += channel.pending.count
                channel.held -= channel.pending.count
                channel.pending.removeAll()
            }
            if channel.pending.isEmpty, channel.stopping { break }
            let count = min(options.maxBatchSpans, channel.pending.count)
            let spans = Array(channel.pending.prefix(count))
            channel.pending.removeFirst(count)
            var timeout = options.exportTimeout
            if channel.stopping {
                timeout = min(timeout, Double(channel.flushDeadline.nanoseconds(after: .now())) / 1e9)
            }
            lock.unlock()

            body.removeAll(keepingCapacity: true)
            OTLPTraceEncoding.appendExportRequest(spans, resource: options.resource, into: &body)
            let outcome = post.post(body, timeout: timeout)

            lock.lock()
            channel.held -= count
            switch outcome {
            case .status(let status) where (200...299).contains(status):
                channel.figures.exported += count
            case .status(let status):
                fail("HTTP \(status)", dropping: count)
            case .failed(let error):
                fail(error.message, dropping: count)
            }
        }
        channel.finished = true
        lock.broadcast()
        lock.unlock()
    }

    /// With the lock held.
    private func fail(_ error: String, dropping count: Int) {
        channel.figures.failures += 1
        channel.figures.droppedExportFailed += count
        channel.figures.lastError = error
    }
}
