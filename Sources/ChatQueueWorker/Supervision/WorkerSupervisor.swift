import ChatQueueSystem
import ChatQueueConfig
import ChatQueueCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What the worker tells the outside world, driven from the event loop: the
/// status file (every `status.interval` and on each state change), systemd
/// notifications (READY once consuming, STATUS on changes, WATCHDOG from the
/// loop itself so a stuck loop gets restarted, STOPPING on drain) and the
/// metrics textfile. Everything here is cheap enough to call every iteration.
final class WorkerSupervisor {
    private let statusWriter: StatusFileWriter
    private let notifier: SystemdNotifier?
    private let metricsWriter: MetricsTextfileWriter?
    private let interval: UInt64
    private let instance: String
    private let queue: String
    private let startedAt = WallClock.unixMilliseconds()
    private var logger: Logger

    private var nextStatusWrite = Deadline(nanoseconds: 0)
    private var nextWatchdog = Deadline(nanoseconds: 0)
    private var sentReady = false
    private var reportedWriteError = false

    /// Metrics that WorkerCounters does not keep.
    var metrics: MetricsSnapshot
    var brokerLastError: String?
    var upstreamLastError: String?
    var upstreamLastSuccess: Int64?

    init(settings: Settings, instance: String, logger: Logger, environment: [String: String]) {
        statusWriter = StatusFileWriter(
            path: StatusFileWriter.path(configured: settings.status.file, environment: environment))
        notifier = SystemdNotifier(environment: environment)
        if let path = settings.metrics.textfile {
            metricsWriter = try? MetricsTextfileWriter(path: path)
        } else {
            metricsWriter = nil
        }
        interval = Deadline.nanoseconds(seconds: settings.status.interval)
        self.instance = instance
        queue = settings.queue.name
        metrics = MetricsSnapshot(instance: instance)
        self.logger = logger
    }

    // MARK: Token accounting (issue 11)

    /// One HTTP try ended (`ending`): its usage, or the chunks it forwarded
    /// without one, go to the ledger under the request's model. A try stopped
    /// before its response began has nothing to count.
    func accountTry(upstream: String, model: String, response: UpstreamResponse?, ending: TryEnding) {
        guard let response else { return }
        accountTry(
            upstream: upstream, model: model, usage: response.tokenUsage, chunks: response.publishedChunks,
            ending: ending)
    }

    /// The same, for a try whose usage is known (`UpstreamResponse.ended`).
    func accountTry(upstream: String, model: String, usage: TokenUsage?, chunks: Int, ending: TryEnding) {
        metrics.tokens.record(upstream: upstream, model: model, usage: usage, chunks: chunks, ending: ending)
    }

    /// The longest the loop may sleep before `tick` needs to run again.
    func nextDeadline() -> Deadline {
        guard let watchdog = notifier?.watchdogInterval, watchdog > 0 else { return nextStatusWrite }
        return min(nextStatusWrite, nextWatchdog)
    }

    /// Writes what is due: the watchdog ping and the periodic status.
    func tick(_ worker: Worker, now: Deadline) {
        if let watchdog = notifier?.watchdogInterval, now >= nextWatchdog {
            notifier?.watchdog()
            nextWatchdog = now + watchdog
        }
        if now >= nextStatusWrite { report(worker, now: now) }
    }

    /// A state change: status file and systemd hear of it at once.
    func stateChanged(_ worker: Worker) {
        let status = snapshot(worker)
        switch worker.state {
        case .running where !sentReady:
            sentReady = true
            notifier?.ready(status: status.summaryLine)
        case .draining:
            notifier?.stopping(status: status.summaryLine)
        default:
            notifier?.status(status.summaryLine)
        }
        write(status, worker: worker)
        nextStatusWrite = Deadline.now() + interval
    }

    private func report(_ worker: Worker, now: Deadline) {
        write(snapshot(worker), worker: worker)
        nextStatusWrite = now + interval
    }

    private func write(_ status: WorkerStatus, worker: Worker) {
        do {
            try statusWriter.write(status)
            if let metricsWriter {
                metrics.update(counters: worker.counters, inFlight: worker.inFlightCount)
                metrics.upstreams = status.upstreams
                metrics.spans = status.tracing
                try metricsWriter.write(metrics)
            }
            reportedWriteError = false
        } catch {
            // Once per failure streak: a full disk must not flood the journal.
            if !reportedWriteError {
                logger.error("cannot write the status or metrics file", metadata: ["error": "\(error)"])
                reportedWriteError = true
            }
        }
    }

    func snapshot(_ worker: Worker) -> WorkerStatus {
        let now = Deadline.now()
        let nowUnix = WallClock.unixMilliseconds()
        let upstreams = worker.upstreams.map { upstream in
            var figures = upstream.figures
            figures.take(upstream.control, now: now, nowUnixMilliseconds: nowUnix)
            return figures
        }
        return WorkerStatus(
            pid: getpid(), instance: instance, state: worker.state, startedAtUnixMilliseconds: startedAt,
            updatedAtUnixMilliseconds: nowUnix,
            broker: WorkerStatus.Broker(
                connected: worker.isConnected, queue: queue, consumerTag: worker.consumerTag,
                publishingBlocked: worker.session?.replies.isBlocked ?? false, reconnects: worker.counters.reconnects,
                connectFailures: worker.counters.brokerConnectFailures,
                publisherReplacements: worker.counters.publisherReplacements, lastError: brokerLastError),
            upstream: WorkerStatus.Upstream(
                lastSuccessAtUnixMilliseconds: upstreamLastSuccess, lastError: upstreamLastError,
                consecutiveFailures: upstreams.map(\.consecutiveFailures).max() ?? 0,
                degradations: worker.counters.degradations, probes: worker.counters.upstreamProbes),
            upstreams: upstreams,
            tokens: metrics.tokens,
            requests: WorkerStatus.Requests(
                counters: worker.counters, inFlight: worker.inFlightCount, paused: worker.pausedRequests.count),
            chunksPublished: worker.counters.chunksPublished,
            cancels: WorkerStatus.Cancels(counters: worker.counters),
            tracing: worker.spanExporter?.figures ?? SpanExportFigures())
    }
}
