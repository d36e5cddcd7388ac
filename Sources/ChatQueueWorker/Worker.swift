import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore
import ChatQueueHTTP
import ChatQueueSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The worker: one thread, one loop. It owns the broker connections and the
/// curl multi handle and waits in one epoll set holding the AMQP sockets, a
/// signal descriptor and libcurl's sockets (libcurl's event-driven API: it
/// says which sockets to watch, the loop says which are ready). Every request is a delivery that
/// becomes HTTP tries, chunks and exactly one final reply per attempt, and is
/// acked only once the broker confirmed that final reply.
public final class Worker: ChunkSink {
    /// What the process adds to the configuration.
    public struct Options: Sendable {
        /// Shown in connection names, logs, the status file and metrics.
        public var instanceName: String
        /// The process environment (NOTIFY_SOCKET, WATCHDOG_USEC, RUNTIME_DIRECTORY, ...).
        public var environment: [String: String]

        public init(instanceName: String = "worker", environment: [String: String] = [:]) {
            self.instanceName = instanceName
            self.environment = environment
        }
    }

    let settings: Settings
    let options: Options
    /// The rules a request's state machine follows until it is routed (the
    /// first upstream's; each upstream's own timeouts are in its client).
    let requestPolicy: RequestStateMachine.Policy
    /// Which upstreams serve which models (`routes`), looked up once per request.
    let routing: RoutingTable
    /// The upstreams, by `routing`'s upstream index.
    let upstreams: [UpstreamClient]
    /// Each route's upstreams as its requests' state machines take them
    /// (built once: a request shares its route's array, nothing is allocated per request).
    let routeUpstreams: [[RequestStateMachine.RouteUpstream]]
    /// Which reply_to values are served (`replies.allowed_queues`), built once.
    let replyQueuePolicy: ReplyQueuePolicy
    var logger: Logger
    let multi: CurlMulti
    let signals: SignalDescriptor
    /// Where the loop waits: the AMQP sockets, the signal pipe and libcurl's sockets.
    let poller: EventPoll
    /// The loop's time events: libcurl's timer, the requests' timers, heartbeats, the shutdown grace.
    var timers = LoopTimers()
    /// Requests whose upstream reads paused because replies backed up (see `resumePausedTransfers`).
    var pausedRequests: [InFlightRequest] = []

    var session: BrokerSession?
    /// Requests being handled, by delivery tag; enter and leave through `track` and `untrack`.
    var inFlight: [UInt64: InFlightRequest] = [:]
    /// The same requests by request id, for cancels and returned replies.
    var inFlightByRequestID = RequestIndex()
    /// Cancels of requests not (yet) here (`cancel.remember_seconds`, `cancel.remember_max`).
    var pendingCancels: PendingCancels
    /// When a malformed cancel was last logged, and how many were not logged since.
    var malformedCancelLoggedAt: Deadline?
    var malformedCancelsUnlogged = 0
    public internal(set) var counters = WorkerCounters()
    /// An unusable Retry-After hint was logged (once per process: upstreams repeat them).
    var loggedIgnoredRetryHint = false
    /// A broker error raised inside a libcurl callback, rethrown by the loop.
    var brokerFailure: AMQPError?

    /// Requests whose next try found no upstream of their route able to take
    /// it, oldest first (see `offerUpstreams`).
    var waitingForUpstream: [InFlightRequest] = []
    /// A try ended or a breaker's time came this turn: offer the waiting requests the upstreams again.
    var upstreamsChanged = false
    /// A breaker opened or closed: the worker may become degraded or running.
    var upstreamModeMayChange = false
    /// The broker refused a final: publish on a new connection (`replacePublisherIfWanted`).
    var publisherReplacementWanted = false
    /// The earliest time of the next publisher replacement (at most one a second).
    var nextPublisherReplacement = Deadline(nanoseconds: 0)
    /// Trace and span ids for traced requests.
    var traceIDs = TraceIDGenerator()
    /// `log.request_summary` as a level; nil: off.
    let requestSummaryLevel: Logger.Level?
    /// Degraded: the earliest time of the next probe subscription (at most one a second).
    var nextProbeSubscription = Deadline(nanoseconds: 0)
    /// What the worker is doing; the supervisor hears every change.
    public internal(set) var state: WorkerState = .starting {
        didSet {
            guard state != oldValue else { return }
            supervisor.stateChanged(self)
        }
    }
    /// Status file, systemd notifications and metrics.
    let supervisor: WorkerSupervisor
    /// Exports finished spans to an OTLP collector; nil when `tracing.otlp_endpoint` is not set.
    var spanExporter: SpanExporter?

    var inFlightCount: Int { inFlight.count }
    var isConnected: Bool { session != nil }
    var consumerTag: String? { session?.consumerTag }

    /// Shutdown: set on the first SIGTERM/SIGINT (its deadline is `timers.drain`).
    var draining = false

    /// Throws when the process can't have an epoll set or a signal pipe (out
    /// of descriptors or memory): it could not run.
    public init(settings: Settings, options: Options = Options(), logger: Logger) throws(SystemError) {
        signals = try SignalDescriptor()
        poller = try EventPoll()
        self.settings = settings
        self.options = options
        self.logger = logger
        replyQueuePolicy = settings.replies.replyQueuePolicy
        routing = settings.routing
        let shared = settings.upstream
        let breaker = CircuitBreaker.Policy(
            failureThreshold: shared.breakerFailures, cooldown: Deadline.nanoseconds(seconds: shared.breakerCooldown),
            maxCooldown: Deadline.nanoseconds(seconds: shared.breakerMaxCooldown),
            holdProbeInterval: Deadline.nanoseconds(seconds: shared.holdProbeInterval))
        upstreams = settings.upstreams.map {
            UpstreamClient($0, retry: settings.retry, breaker: breaker, maxIdle: settings.worker.concurrency)
        }
        requestPolicy = upstreams[0].policy
        requestSummaryLevel = Self.level(of: settings.log.requestSummary)
        routeUpstreams = settings.routing.routes.map { [upstreams] route in
            route.targets.map {
                RequestStateMachine.RouteUpstream(
                    name: upstreams[$0.upstream].name, index: $0.upstream, model: $0.model,
                    policy: upstreams[$0.upstream].policy, holdsOnAccountError: upstreams[$0.upstream].holdsOnAccountError)
            }
        }
        multi = CurlMulti(maxConnections: settings.worker.concurrency)
        pendingCancels = PendingCancels(
            lifetime: Deadline.nanoseconds(seconds: settings.cancel.rememberSeconds),
            capacity: settings.cancel.rememberMax)
        supervisor = WorkerSupervisor(
            settings: settings, instance: options.instanceName, logger: logger, environment: options.environment)
        if let exportOptions = SpanExporter.Options(settings: settings.tracing, instance: options.instanceName) {
            spanExporter = try SpanExporter(options: exportOptions)
        }
        multi.watcher = self
        try poller.watch(signals.descriptor, as: .signals, readable: true, writable: false)
    }

    /// Waits up to `seconds` for a signal while keeping the status file and
    /// the systemd watchdog fed (connection back-off can outlast the watchdog).
    /// Returns true when a signal arrived.
    private func pause(seconds: Double) -> Bool {
        let end = Deadline.now().adding(seconds: seconds)
        while true {
            let now = Deadline.now()
            supervisor.tick(self, now: now)
            guard now < end else { return false }
            let slice = min(end, supervisor.nextDeadline(), now + 1_000_000_000)
            if !signals.wait(seconds: Double(slice.nanoseconds(after: now)) / 1e9).isEmpty { return true }
        }
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
                // A refusal on the lost session's publisher says nothing about this one.
                publisherReplacementWanted = false
                connectedBefore = true
                backoff = 0.5
                if someRouteIsUp {
                    state = .running
                } else {
                    // Breakers outlive sessions: with no route up the new session
                    // starts degraded (deliveries already sent wait, none are handed back).
                    try session?.unsubscribe()
                    state = .degraded
                }
                logger.info(
                    "consuming",
                    metadata: [
                        "broker.url": "\(endpoint.redacted)", "queue.name": "\(settings.queue.name)",
                        "worker.concurrency": "\(settings.worker.concurrency)",
                        "upstream.url": "\(settings.upstreams.map(\.completionsURL).joined(separator: " "))",
                    ])
            } catch {
                counters.brokerConnectFailures += 1
                logger.error(
                    "cannot connect to the broker",
                    metadata: ["broker.url": "\(endpoint.redacted)", "error": "\(error)"])
                supervisor.brokerLastError = "\(endpoint.redacted): \(error)"
                endpointIndex += 1
                let wait = Double.random(in: backoff / 2...backoff)
                backoff = min(backoff * 2, 30)
                if pause(seconds: wait) { break }
                continue
            }
            do {
                try serve()
                closeSession()
                finishSpanExport()
                state = .stopped
                logger.info("stopped", metadata: ["requests.received": "\(counters.received)"])
                return 0
            } catch {
                logger.error("broker connection lost", metadata: ["error": "\(error)"])
                supervisor.brokerLastError = "\(error)"
                abandonInFlight()
                session = nil
                if !draining { state = .reconnecting }
                endpointIndex += 1
                if pause(seconds: Double.random(in: 0.1...0.5)) { break }
            }
        }
        finishSpanExport()
        state = .stopped
        logger.info("stopped")
        return 0
    }

    /// The event loop for one broker session, a turn as Redis's
    /// `aeProcessEvents`: before waiting, write what the last turn produced;
    /// wait for file events until the nearest timer and hand each ready
    /// descriptor to its handler; then the input no wait reports and the
    /// time events. Returns after a clean drain; throws when the session is lost.
    func serve() throws {
        guard let session else { return }
        var sockets = BrokerSockets(session)
        defer {
            // Before the session's sockets close (see EventPoll.forget).
            forget(sockets)
            if let retiring = session.retiring { poller.forget(retiring.replies.connection.socketDescriptor) }
        }
        try watch(sockets)
        var now = Deadline.now()
        timers.startHeartbeats(every: settings.broker.heartbeat, now: now)
        while true {
            try writeTurnOutput(session, sockets)
            // Right after the write: the old publisher's bytes are out, if they ever are.
            try replacePublisherIfWanted(session, &sockets)
            try poller.wait(timeoutMilliseconds: waitTimeout(session, now: now)) { try handle($0, session) }
            try readBufferedInput(session)
            try runUpstreamTimer()
            try completeFinishedTransfers()
            now = Deadline.now()
            try runTimers(now: now)
            try offerUpstreams(now: now)
            if draining {
                if try drainIsOver(session, now: now) { return }
            } else {
                try probeIfDegradedAndIdle(session, now: now)
            }
        }
    }
}
