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
    /// The rules every request's state machine follows.
    let requestPolicy: RequestStateMachine.Policy
    /// Which reply_to values are served (`replies.allowed_queues`), built once.
    let replyQueuePolicy: ReplyQueuePolicy
    var logger: Logger
    let upstreamOptions: CurlRequestOptions
    let upstreamHeaders: CurlHeaderList
    let multi: CurlMulti
    let signals: SignalDescriptor
    /// Where the loop waits: the AMQP sockets, the signal pipe and libcurl's sockets.
    let poller = EventPoll()
    /// When libcurl next wants `timeoutAction()` (new transfers, its own timeouts).
    var curlTimerDeadline: UInt64 = .max
    /// Requests whose upstream reads paused because replies backed up (see `resumePausedTransfers`).
    var pausedRequests: [InFlightRequest] = []

    var session: BrokerSession?
    var inFlight: [UInt64: InFlightRequest] = [:]
    /// Easy handles of finished transfers, reused by the next ones.
    var idleTransfers: [CurlTransfer] = []
    public internal(set) var counters = WorkerCounters()
    var nextTimerCheck: UInt64 = .max
    /// An unusable Retry-After hint was logged (once per process: upstreams repeat them).
    var loggedIgnoredRetryHint = false
    /// A broker error raised inside a libcurl callback, rethrown by the loop.
    var brokerFailure: AMQPError?

    /// Whether the upstream looks healthy (see `UpstreamHealth`).
    var health = UpstreamHealth()
    /// What the worker is doing; the supervisor hears every change.
    public internal(set) var state: WorkerState = .starting {
        didSet {
            guard state != oldValue else { return }
            supervisor.stateChanged(self)
        }
    }
    /// Status file, systemd notifications and metrics.
    let supervisor: WorkerSupervisor

    var inFlightCount: Int { inFlight.count }
    var isConnected: Bool { session != nil }
    var consumerTag: String? { session?.consumerTag }

    /// Shutdown: set on the first SIGTERM/SIGINT.
    var draining = false
    var drainDeadline: UInt64 = .max

    public init(settings: Settings, options: Options = Options(), logger: Logger) {
        signals = SignalDescriptor()
        self.settings = settings
        self.options = options
        self.logger = logger
        replyQueuePolicy = settings.replies.replyQueuePolicy
        requestPolicy = RequestStateMachine.Policy(
            retry: settings.retry,
            firstByteTimeout: SaturatingTime.nanoseconds(settings.upstream.firstByteTimeout),
            idleTimeout: SaturatingTime.nanoseconds(settings.upstream.idleTimeout),
            maxReplyBytes: settings.upstream.maxResponseBytes)
        upstreamOptions = CurlRequestOptions(
            url: settings.upstream.completionsURL, connectTimeout: settings.upstream.connectTimeout,
            caFile: settings.upstream.caFile, proxy: settings.upstream.proxy)
        var headers = ["Content-Type: application/json", "Expect:", "User-Agent: chatqueue/\(ChatQueueVersion.current)"]
        if let key = settings.upstream.apiKey { headers.append("Authorization: Bearer \(key.value)") }
        upstreamHeaders = CurlHeaderList(headers)
        multi = CurlMulti(maxConnections: settings.worker.concurrency)
        supervisor = WorkerSupervisor(
            settings: settings, instance: options.instanceName, logger: logger, environment: options.environment)
        multi.watcher = self
        poller.watch(signals.descriptor, readable: true, writable: false)
    }

    /// Waits up to `seconds` for a signal while keeping the status file and
    /// the systemd watchdog fed (connection back-off can outlast the watchdog).
    /// Returns true when a signal arrived.
    private func pause(seconds: Double) -> Bool {
        let end = MonotonicClock.now() &+ SaturatingTime.nanoseconds(seconds)
        while true {
            let now = MonotonicClock.now()
            supervisor.tick(self, now: now)
            guard now < end else { return false }
            let slice = min(end, supervisor.nextDeadline(), now &+ 1_000_000_000) &- now
            if !signals.wait(seconds: Double(slice) / 1e9).isEmpty { return true }
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
                connectedBefore = true
                backoff = 0.5
                health.reset()
                state = .running
                logger.info(
                    "consuming",
                    metadata: [
                        "broker.url": "\(endpoint.redacted)", "queue.name": "\(settings.queue.name)",
                        "worker.concurrency": "\(settings.worker.concurrency)",
                        "upstream.url": "\(settings.upstream.completionsURL)",
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
        state = .stopped
        logger.info("stopped")
        return 0
    }

    /// The event loop for one broker session. Returns after a clean drain; throws when the session is lost.
    func serve() throws {
        guard let session else { return }
        let consumerSocket = session.consumer.socketDescriptor
        let publisherSocket = session.publisher.socketDescriptor
        poller.watch(consumerSocket, readable: true, writable: false)
        poller.watch(publisherSocket, readable: true, writable: false)
        // Before the session's sockets close (see EventPoll.forget).
        defer {
            poller.forget(consumerSocket)
            poller.forget(publisherSocket)
        }
        // What each broker socket is watched for: readable, except while our
        // queued bytes wait for room (then only writable, see isWaitingForRoom).
        var publisherInterest = (readable: true, writable: false)
        var consumerInterest = (readable: true, writable: false)
        var consumerReadable = false
        var consumerWritable = false
        var publisherReadable = false
        var publisherWritable = false
        var signalled = false
        var upstreamEvents: [EventPoll.Event] = []
        upstreamEvents.reserveCapacity(256)
        let heartbeatService = settings.broker.heartbeat > 0
            ? SaturatingTime.nanoseconds(Double(settings.broker.heartbeat) / 4) : UInt64.max
        var lastHeartbeatService = MonotonicClock.now()

        while true {
            let now = MonotonicClock.now()
            supervisor.tick(self, now: now)
            let serviceHeartbeats = heartbeatService != .max && now &- lastHeartbeatService >= heartbeatService
            if serviceHeartbeats { lastHeartbeatService = now }

            // 1. Broker I/O: replies waiting for room, then input: what epoll reported,
            //    what the library already buffered, or a heartbeat due.
            if publisherWritable { try session.replies.flush() }
            if consumerWritable && session.consumer.hasUnsentFrames { try session.consumer.writeUnsent() }
            if publisherReadable || session.publisher.hasBufferedInput || serviceHeartbeats {
                try drainPublisher(session)
            }
            if consumerReadable || session.consumer.hasBufferedInput || serviceHeartbeats {
                try drainConsumer(session)
            }
            if signalled { handleSignals() }

            // 2. Upstream I/O, socket by socket; chunks are forwarded from inside these calls.
            for event in upstreamEvents {
                try multi.socketAction(
                    event.descriptor, readable: event.readable, writable: event.writable, failed: event.failed)
            }
            upstreamEvents.removeAll(keepingCapacity: true)
            if curlTimerDeadline != .max, MonotonicClock.now() >= curlTimerDeadline {
                curlTimerDeadline = .max
                try multi.timeoutAction()
            }
            try throwPendingBrokerFailure()
            for (transfer, result) in multi.takeCompleted() {
                try complete(transfer, result: result)
            }

            // 3. Timers.
            let afterIO = MonotonicClock.now()
            if afterIO >= nextTimerCheck { try fireTimers(now: afterIO) }
            if draining {
                // Grace over: everything unsettled goes back to the queue and the
                // loop ends, whatever the broker does with our replies meanwhile.
                if afterIO >= drainDeadline {
                    try abortForShutdown()
                    return
                }
                if inFlight.isEmpty && session.replies.unconfirmedFinals == 0 { return }
            } else if health.isDegraded, inFlight.isEmpty, !session.isConsuming {
                // Degraded and idle: take exactly one request, the probe.
                try session.subscribe(queue: settings.queue.name, prefetch: 1)
                counters.upstreamProbes += 1
                logger.notice("degraded: probing the upstream with one request")
            }

            // 4. Write this turn's acks and replies (one send each on plain TCP), then wait.
            //    Input the library already holds must not wait for the socket.
            try session.writeQueued()
            if !pausedRequests.isEmpty, session.replies.backlogBytes <= settings.replies.maxBacklogBytes / 4 {
                // Resumed transfers forward what libcurl kept: write that too before waiting.
                try resumePausedTransfers()
                try session.writeQueued()
            }
            let nextDeadline = min(
                nextTimerCheck, curlTimerDeadline, draining ? drainDeadline : .max, supervisor.nextDeadline())
            var timeout = min(1_000_000_000, nextDeadline &- min(nextDeadline, afterIO))
            if heartbeatService != .max { timeout = min(timeout, heartbeatService) }
            if session.consumer.hasBufferedInput || session.publisher.hasBufferedInput { timeout = 0 }
            let publisherWants = (readable: !session.publisher.isWaitingForRoom, writable: session.replies.waitsForWritable)
            if publisherWants != publisherInterest {
                publisherInterest = publisherWants
                poller.watch(publisherSocket, readable: publisherWants.readable, writable: publisherWants.writable)
            }
            let consumerWants = (readable: !session.consumer.isWaitingForRoom, writable: session.consumer.hasUnsentFrames)
            if consumerWants != consumerInterest {
                consumerInterest = consumerWants
                poller.watch(consumerSocket, readable: consumerWants.readable, writable: consumerWants.writable)
            }
            consumerReadable = false
            consumerWritable = false
            publisherReadable = false
            publisherWritable = false
            signalled = false
            poller.wait(timeoutMilliseconds: Int32((timeout + 999_999) / 1_000_000)) { event in
                switch event.descriptor {
                // A failed socket is tried both ways, so the read or the write reports the error.
                case consumerSocket:
                    consumerReadable = event.readable || event.failed
                    consumerWritable = event.writable || event.failed
                case publisherSocket:
                    publisherReadable = event.readable || event.failed
                    publisherWritable = event.writable || event.failed
                case signals.descriptor: signalled = true
                default: upstreamEvents.append(event)
                }
            }
        }
    }
}

extension Worker: CurlSocketWatcher {
    public func curlMulti(_ multi: CurlMulti, watch socket: Int32, readable: Bool, writable: Bool) {
        poller.watch(socket, readable: readable, writable: writable)
    }

    public func curlMulti(_ multi: CurlMulti, timerIn milliseconds: Int?) {
        guard let milliseconds else {
            curlTimerDeadline = .max
            return
        }
        // Saturating: a timeout libcurl derives from a huge setting can't trap.
        let (nanoseconds, overflow) = UInt64(clamping: milliseconds).multipliedReportingOverflow(by: 1_000_000)
        curlTimerDeadline = SaturatingTime.adding(MonotonicClock.now(), overflow ? .max : nanoseconds)
    }
}
