import ChatQueueCore

/// What the status file says about a worker process: one JSON object, rewritten
/// every `status.interval` seconds and on each state change. Pure value; see
/// ``StatusFileWriter`` for the file and docs/operations.md for the fields.
public struct WorkerStatus: Sendable, Equatable {
    /// The `service` field: always this.
    public static let service = "chatqueue-worker"

    /// The consuming broker connection.
    public struct Broker: Sendable, Equatable {
        /// Whether a session (consumer and publisher connections) is up.
        public var connected: Bool
        /// The queue consumed from (`queue.name`).
        public var queue: String
        /// The consumer tag of the current session; nil when not consuming.
        public var consumerTag: String?
        /// Whether the broker has blocked our publishing (a resource alarm): replies wait.
        public var publishingBlocked: Bool
        /// Connections re-established after a loss, since the start.
        public var reconnects: Int
        /// Attempts to connect that failed, since the start.
        public var connectFailures: Int
        /// Publisher connections replaced after the broker refused a final, since the start.
        public var publisherReplacements: Int
        /// The last connection error, if any (redacted when serialized).
        public var lastError: String?

        public init(
            connected: Bool = false, queue: String, consumerTag: String? = nil, publishingBlocked: Bool = false,
            reconnects: Int = 0, connectFailures: Int = 0, publisherReplacements: Int = 0, lastError: String? = nil
        ) {
            self.connected = connected
            self.queue = queue
            self.consumerTag = consumerTag
            self.publishingBlocked = publishingBlocked
            self.reconnects = reconnects
            self.connectFailures = connectFailures
            self.publisherReplacements = publisherReplacements
            self.lastError = lastError
        }
    }

    /// The upstream API.
    public struct Upstream: Sendable, Equatable {
        /// When an HTTP try last succeeded (Unix ms); nil if none yet.
        public var lastSuccessAtUnixMilliseconds: Int64?
        /// The last failed try's error, if any (redacted when serialized).
        public var lastError: String?
        /// Retryable failures in a row, the most of any upstream (`upstream.breaker_failures` open its breaker).
        public var consecutiveFailures: Int
        /// Times the worker became degraded, since the start.
        public var degradations: Int
        /// Requests taken one at a time while degraded, to probe the upstream.
        public var probes: Int

        public init(
            lastSuccessAtUnixMilliseconds: Int64? = nil, lastError: String? = nil, consecutiveFailures: Int = 0,
            degradations: Int = 0, probes: Int = 0
        ) {
            self.lastSuccessAtUnixMilliseconds = lastSuccessAtUnixMilliseconds
            self.lastError = lastError
            self.consecutiveFailures = consecutiveFailures
            self.degradations = degradations
            self.probes = probes
        }
    }

    /// Request counts since the start (see ``WorkerCounters``), and the current load.
    public struct Requests: Sendable, Equatable {
        /// Requests being handled now.
        public var inFlight: Int
        /// Of those, the ones whose upstream reads are paused until their replies drain.
        public var paused: Int
        public var received: Int
        public var succeeded: Int
        public var failed: Int
        public var rejected: Int
        public var requeued: Int
        public var retried: Int
        public var redelivered: Int
        public var unroutableReplies: Int
        /// Handed back unanswered because no upstream of their route was up.
        public var held = 0

        public init(
            inFlight: Int = 0, paused: Int = 0, received: Int = 0, succeeded: Int = 0, failed: Int = 0,
            rejected: Int = 0, requeued: Int = 0, retried: Int = 0, redelivered: Int = 0, unroutableReplies: Int = 0,
            held: Int = 0
        ) {
            self.held = held
            self.inFlight = inFlight
            self.paused = paused
            self.received = received
            self.succeeded = succeeded
            self.failed = failed
            self.rejected = rejected
            self.requeued = requeued
            self.retried = retried
            self.redelivered = redelivered
            self.unroutableReplies = unroutableReplies
        }

        /// The counts from the worker's counters.
        public init(counters: WorkerCounters, inFlight: Int, paused: Int = 0) {
            self.init(
                inFlight: inFlight, paused: paused, received: counters.received, succeeded: counters.succeeded,
                failed: counters.failed, rejected: counters.rejected, requeued: counters.requeued,
                retried: counters.retried, redelivered: counters.redelivered,
                unroutableReplies: counters.unroutableReplies, held: counters.held)
        }
    }

    /// Cancellation and abandoned requests since the start (see ``WorkerCounters``).
    public struct Cancels: Sendable, Equatable {
        /// Requests answered `cancelled`.
        public var requestsCancelled: Int
        /// Requests acked unanswered because their requester was gone.
        public var requestsAbandoned: Int
        /// Cancel messages received, malformed among them, and remembered for later.
        public var received: Int
        public var malformed: Int
        public var remembered: Int

        public init(
            requestsCancelled: Int = 0, requestsAbandoned: Int = 0, received: Int = 0, malformed: Int = 0,
            remembered: Int = 0
        ) {
            self.requestsCancelled = requestsCancelled
            self.requestsAbandoned = requestsAbandoned
            self.received = received
            self.malformed = malformed
            self.remembered = remembered
        }

        public init(counters: WorkerCounters) {
            self.init(
                requestsCancelled: counters.cancelled, requestsAbandoned: counters.abandoned,
                received: counters.cancelsReceived, malformed: counters.cancelsMalformed,
                remembered: counters.cancelsRemembered)
        }
    }

    /// `ChatQueueVersion.current` unless told otherwise.
    public var version: String
    /// The worker's process id (what `chatqueue health` checks is alive).
    public var pid: Int32
    /// The instance name (`--instance`, the systemd instance, or `pid<N>`).
    public var instance: String
    public var state: WorkerState
    /// When the worker started (Unix ms).
    public var startedAtUnixMilliseconds: Int64
    /// When this status was taken (Unix ms); `chatqueue health` judges freshness by it.
    public var updatedAtUnixMilliseconds: Int64
    public var broker: Broker
    public var upstream: Upstream
    /// Each upstream: its breaker, window and tries (the `upstreams` array).
    public var upstreams: [UpstreamFigures]
    /// Token accounting since the start (the `usage` object).
    public var tokens: TokenLedger
    public var requests: Requests
    /// Chunks forwarded to requesters since the start.
    public var chunksPublished: Int
    /// Cancels and abandoned requests.
    public var cancels: Cancels
    /// Span export (the `tracing` object): all zero while `tracing.otlp_endpoint` is not set.
    public var tracing: SpanExportFigures

    public init(
        version: String = ChatQueueVersion.current,
        pid: Int32,
        instance: String,
        state: WorkerState,
        startedAtUnixMilliseconds: Int64,
        updatedAtUnixMilliseconds: Int64,
        broker: Broker,
        upstream: Upstream = Upstream(),
        upstreams: [UpstreamFigures] = [],
        tokens: TokenLedger = TokenLedger(),
        requests: Requests = Requests(),
        chunksPublished: Int = 0,
        cancels: Cancels = Cancels(),
        tracing: SpanExportFigures = SpanExportFigures()
    ) {
        self.cancels = cancels
        self.tracing = tracing
        self.version = version
        self.pid = pid
        self.instance = instance
        self.state = state
        self.startedAtUnixMilliseconds = startedAtUnixMilliseconds
        self.updatedAtUnixMilliseconds = updatedAtUnixMilliseconds
        self.broker = broker
        self.upstream = upstream
        self.upstreams = upstreams
        self.tokens = tokens
        self.requests = requests
        self.chunksPublished = chunksPublished
    }

    /// An error text as shown: secrets redacted first (so a cut can't leave
    /// half a password unrecognized), then one printable line of at most 300 bytes.
    static func shown(_ error: String) -> String {
        TextExcerpt.make(error.redactingSecrets())
    }

    /// The status as a JSON object, keys in the documented order. Error texts
    /// pass through ``shown(_:)``; no other field can hold a secret.
    public var jsonValue: JSONValue {
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        func count(_ value: Int) -> JSONValue { .integer(value) }
        func time(_ value: Int64?) -> JSONValue {
            value.map { .string(RFC3339.string(unixMilliseconds: $0)) } ?? .null
        }
        return .object(
            JSONObject([
                ("service", .string(Self.service)),
                ("version", .string(version)),
                ("pid", .integer(pid)),
                ("instance", .string(instance)),
                ("state", .string(state.rawValue)),
                ("started_at", time(startedAtUnixMilliseconds)),
                ("updated_at", time(updatedAtUnixMilliseconds)),
                (
                    "broker",
                    .object(
                        JSONObject([
                            ("connected", .bool(broker.connected)),
                            ("queue", .string(broker.queue)),
                            ("consumer_tag", text(broker.consumerTag)),
                            ("publishing_blocked", .bool(broker.publishingBlocked)),
                            ("reconnects", count(broker.reconnects)),
                            ("connect_failures", count(broker.connectFailures)),
                            ("publisher_replacements", count(broker.publisherReplacements)),
                            ("last_error", text(broker.lastError.map(Self.shown))),
                        ]))
                ),
                (
                    "upstream",
                    .object(
                        JSONObject([
                            ("last_success_at", time(upstream.lastSuccessAtUnixMilliseconds)),
                            ("last_error", text(upstream.lastError.map(Self.shown))),
                            ("consecutive_failures", count(upstream.consecutiveFailures)),
                            ("degradations", count(upstream.degradations)),
                            ("probes", count(upstream.probes)),
                        ]))
                ),
                ("upstreams", .array(upstreams.map(Self.upstreamJSON))),
                ("usage", usageJSON),
                (
                    "requests",
                    .object(
                        JSONObject([
                            ("in_flight", count(requests.inFlight)),
                            ("paused", count(requests.paused)),
                            ("received", count(requests.received)),
                            ("succeeded", count(requests.succeeded)),
                            ("failed", count(requests.failed)),
                            ("rejected", count(requests.rejected)),
                            ("requeued", count(requests.requeued)),
                            ("retried", count(requests.retried)),
                            ("redelivered", count(requests.redelivered)),
                            ("unroutable_replies", count(requests.unroutableReplies)),
                            ("held", count(requests.held)),
                        ]))
                ),
                ("chunks_published", count(chunksPublished)),
                (
                    "cancels",
                    .object(
                        JSONObject([
                            ("requests_cancelled", count(cancels.requestsCancelled)),
                            ("requests_abandoned", count(cancels.requestsAbandoned)),
                            ("received", count(cancels.received)),
                            ("malformed", count(cancels.malformed)),
                            ("remembered", count(cancels.remembered)),
                        ]))
                ),
                (
                    "tracing",
                    .object(
                        JSONObject([
                            ("export", .bool(tracing.enabled)),
                            ("spans_exported", count(tracing.exported)),
                            ("spans_dropped_queue_full", count(tracing.droppedQueueFull)),
                            ("spans_dropped_export_failed", count(tracing.droppedExportFailed)),
                            ("export_failures", count(tracing.exportFailures)),
                            ("last_error", text(tracing.lastError.map(Self.shown))),
                        ]))
                ),
            ]))
    }

    /// One upstream: its breaker (state, why, when the probe may go), its window and its tries.
    private static func upstreamJSON(_ figures: UpstreamFigures) -> JSONValue {
        let failures = figures.failures.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.integer($0.value)) }
        return .object(
            JSONObject([
                ("name", .string(figures.name)),
                ("breaker", .string(figures.breakerState)),
                ("breaker_reason", figures.breakerReason.map { .string($0) } ?? .null),
                ("probe_at", figures.probeAtUnixMilliseconds.map { .string(RFC3339.string(unixMilliseconds: $0)) } ?? .null),
                ("breaker_openings", .integer(figures.breakerOpenings)),
                ("consecutive_failures", .integer(figures.consecutiveFailures)),
                ("window", .integer(figures.window)),
                ("window_decreases", .integer(figures.windowDecreases)),
                ("in_flight", .integer(figures.inFlight)),
                ("tries", .integer(figures.tries)),
                ("failures", .object(JSONObject(failures))),
            ]))
    }

    /// Token accounting: the totals, then one entry per upstream and model
    /// (bounded, see ``ModelLabels``): tokens from the upstream's `usage`, and
    /// chunks forwarded by tries that reported none.
    private var usageJSON: JSONValue {
        func account(_ account: TokenLedger.Account) -> [(String, JSONValue)] {
            [
                ("prompt_tokens", .integer(account.promptTokens)),
                ("completion_tokens", .integer(account.completionTokens)),
                ("chunks_without_usage", .integer(account.totalChunksWithoutUsage)),
            ]
        }
        let models = tokens.sorted.map { entry -> JSONValue in
            .object(
                JSONObject(
                    [("upstream", .string(entry.key.upstream)), ("model", .string(entry.key.model))]
                        + account(entry.account)))
        }
        return .object(JSONObject(account(tokens.total) + [("by_model", .array(models))]))
    }

    /// A one-line summary for systemd's `STATUS=` (shown by `systemctl status`),
    /// e.g. `running: 3 in flight, 120 received, 114 succeeded, 2 failed`, or
    /// `reconnecting: <broker error>`.
    public var summaryLine: String {
        var line = state.rawValue + ": "
        if state == .reconnecting || state == .starting, let error = broker.lastError {
            return line + Self.shown(error)
        }
        line += "\(requests.inFlight) in flight, \(requests.received) received, "
        line += "\(requests.succeeded) succeeded, \(requests.failed) failed"
        if state == .degraded, let error = upstream.lastError { line += "; upstream: " + Self.shown(error) }
        return line
    }

    /// The compact JSON document (no trailing newline; the writer adds one).
    public func json() -> [UInt8] {
        jsonValue.serialized()
    }
}
