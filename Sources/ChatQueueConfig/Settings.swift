import ChatQueueCore

/// The kind of queue declared for requests.
public enum QueueType: String, Sendable, CaseIterable {
    /// A replicated, durable quorum queue (RabbitMQ's recommended default).
    case quorum
    /// A classic queue, for brokers or setups without quorum queues.
    case classic
}

/// What a 401, 402 or 403 from an upstream does (`upstream.on_account_error`).
public enum AccountErrorMode: String, Sendable, CaseIterable {
    /// Answer the request with the error (contract v1), unless another upstream of its route takes it.
    case reply
    /// Never answer it: the request waits for another upstream of its route,
    /// or goes back to the queue; the upstream's breaker opens and is probed.
    case hold
}

/// How log lines are written to standard error.
/// The level of the one summary line logged when a request settles (`log.request_summary`).
public enum RequestSummaryLevel: String, Sendable, CaseIterable {
    case off, trace, debug, info, notice, warning
}

public enum LogFormat: String, Sendable, CaseIterable {
    /// One human-readable line per message.
    case text
    /// One JSON object per line.
    case json
}

/// The minimum severity that gets logged; the names of swift-log's levels.
public enum LogLevel: String, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

/// The effective configuration of a worker.
///
/// Build it with ``SettingsLoader/load(configFile:environment:overrides:)``; each
/// field is documented by its dotted key in `SettingKeys` and in `config/chatqueue.yaml`.
public struct Settings: Sendable, Equatable {
    /// How to reach RabbitMQ.
    public struct Broker: Sendable, Equatable {
        /// `broker.url`: the brokers to try, in order.
        public var endpoints: [BrokerEndpoint]
        /// `broker.heartbeat`: AMQP heartbeat in seconds; 0 disables heartbeats.
        public var heartbeat: Int
        /// `broker.tls.*`: for amqps:// URLs.
        public var tls: TLS

        public init(endpoints: [BrokerEndpoint], heartbeat: Int, tls: TLS = TLS()) {
            self.endpoints = endpoints
            self.heartbeat = heartbeat
            self.tls = tls
        }
    }

    /// TLS to the broker (amqps://).
    public struct TLS: Sendable, Equatable {
        /// `broker.tls.ca_file`: nil means the system's CA bundle.
        public var caFile: String?
        /// `broker.tls.cert_file` and `broker.tls.key_file`: a client certificate, for mutual TLS.
        public var certFile: String?
        public var keyFile: String?
        /// `broker.tls.verify`: check the broker's certificate and host name.
        public var verify: Bool

        public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, verify: Bool = true) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
            self.verify = verify
        }
    }

    /// The queue requests are consumed from.
    public struct Queue: Sendable, Equatable {
        /// `queue.name`
        public var name: String
        /// `queue.declare`: whether the worker declares the queue and its dead-letter topology.
        public var declare: Bool
        /// `queue.type`
        public var type: QueueType
        /// `queue.dead_letter_exchange`, already resolved (`<queue.name>.dlx` unless set).
        public var deadLetterExchange: String
        /// `queue.dead_letter_queue`, already resolved (`<queue.name>.dead` unless set).
        public var deadLetterQueue: String
        /// `queue.cancel_exchange`: the fanout exchange of cancels; nil when cancellation is off.
        public var cancelExchange: String?

        public init(
            name: String, declare: Bool, type: QueueType, deadLetterExchange: String, deadLetterQueue: String,
            cancelExchange: String? = "chat.requests.cancel"
        ) {
            self.cancelExchange = cancelExchange
            self.name = name
            self.declare = declare
            self.type = type
            self.deadLetterExchange = deadLetterExchange
            self.deadLetterQueue = deadLetterQueue
        }
    }

    /// Where replies go.
    public struct Replies: Sendable, Equatable {
        /// `replies.default_queue`: used when a request has no `reply_to`; nil drops such replies.
        public var defaultQueue: String?
        /// `replies.allowed_queues`: where else replies may go (see ``replyQueuePolicy``).
        public var allowedQueues: [ReplyQueuePattern]
        /// `replies.max_backlog_bytes`: replies waiting for the broker beyond
        /// this pause the upstream reads until a quarter of it is left.
        public var maxBacklogBytes: Int

        public init(defaultQueue: String?, allowedQueues: [ReplyQueuePattern] = [], maxBacklogBytes: Int = 16_777_216) {
            self.defaultQueue = defaultQueue
            self.allowedQueues = allowedQueues
            self.maxBacklogBytes = maxBacklogBytes
        }

        /// The `reply_to` values replies are published to.
        public var replyQueuePolicy: ReplyQueuePolicy {
            ReplyQueuePolicy(allowed: allowedQueues, defaultQueue: defaultQueue)
        }
    }

    /// Limits of the worker itself.
    public struct Worker: Sendable, Equatable {
        /// `worker.concurrency`: requests in flight at once (the AMQP prefetch).
        public var concurrency: Int
        /// `worker.max_request_bytes`: larger request bodies are rejected.
        public var maxRequestBytes: Int
        /// `worker.request_timeout`: seconds a whole request may take.
        public var requestTimeout: Double
        /// `worker.max_deliveries`: deliveries of a request before it is set aside.
        public var maxDeliveries: Int
        /// `worker.shutdown_grace`: seconds in-flight requests get after SIGTERM.
        public var shutdownGrace: Double

        public init(
            concurrency: Int, maxRequestBytes: Int, requestTimeout: Double, maxDeliveries: Int = 5,
            shutdownGrace: Double = 30
        ) {
            self.concurrency = concurrency
            self.maxRequestBytes = maxRequestBytes
            self.requestTimeout = requestTimeout
            self.maxDeliveries = maxDeliveries
            self.shutdownGrace = shutdownGrace
        }
    }

    /// When and how often a failed upstream call is tried again (`retry.*`):
    /// the backoff the request state machine follows.
    public typealias Retry = RetryBackoff

    /// A DeepSeek-compatible API that answers requests: `upstream.*` (the
    /// one-upstream case, named `default`, and the defaults of named ones) or
    /// one of `upstreams.<name>.*`.
    public struct Upstream: Sendable, Equatable {
        /// `default`, or the name in `upstreams.names`.
        public var name = "default"
        /// `upstreams.<name>.headers`: extra `Name: value` lines, checked (`StaticHeader`).
        public var headers: [String] = []
        /// `upstream.max_concurrency` or `upstreams.<name>.max_concurrency`: the
        /// most tries at once to it (its window's top); nil: `worker.concurrency`.
        public var maxConcurrency: Int? = nil
        /// `upstream.adaptive_concurrency`: the window adapts (AIMD) between 1 and the maximum.
        public var adaptiveConcurrency = true
        /// `upstream.rpm`, `upstream.tpm` (or per upstream): requests and tokens a minute; nil: no limit.
        public var requestsPerMinute: Int? = nil
        public var tokensPerMinute: Int? = nil
        /// `upstream.on_account_error`: what 401/402/403 do.
        public var onAccountError: AccountErrorMode = .reply
        /// `upstream.breaker_*` and `upstream.hold_probe_interval` (the same for every upstream).
        public var breakerFailures = 5
        public var breakerCooldown: Double = 15
        public var breakerMaxCooldown: Double = 300
        public var holdProbeInterval: Double = 30
        /// `upstream.url`: the API base URL.
        public var url: String
        /// `upstream.api_key`, or from `upstream.api_key_file` or the credentials directory.
        public var apiKey: Secret?
        /// `upstream.ca_file`: nil means the system's CA bundle.
        public var caFile: String? = nil
        /// `upstream.proxy`: nil means no proxy at all (the environment's proxy variables are ignored).
        public var proxy: String? = nil
        /// `upstream.models`: the allowed models; nil allows any.
        public var models: Set<String>?
        /// `upstream.connect_timeout`, in seconds.
        public var connectTimeout: Double
        /// `upstream.first_byte_timeout`, in seconds.
        public var firstByteTimeout: Double
        /// `upstream.idle_timeout`, in seconds.
        public var idleTimeout: Double
        /// `upstream.max_response_bytes`
        public var maxResponseBytes: Int

        public init(
            url: String,
            apiKey: Secret?,
            models: Set<String>?,
            connectTimeout: Double,
            firstByteTimeout: Double,
            idleTimeout: Double,
            maxResponseBytes: Int
        ) {
            self.url = url
            self.apiKey = apiKey
            self.models = models
            self.connectTimeout = connectTimeout
            self.firstByteTimeout = firstByteTimeout
            self.idleTimeout = idleTimeout
            self.maxResponseBytes = maxResponseBytes
        }

        /// A proxy URL with any user:password@ shown as `***@`, for check-config and errors.
        public static func redactedProxy(_ proxy: String) -> String {
            redactedURL(proxy, hidingUser: true)
        }

        /// The chat completions endpoint: ``url`` without trailing slashes, plus `/chat/completions`.
        public var completionsURL: String {
            var base = Substring(url)
            while base.hasSuffix("/") { base = base.dropLast() }
            return base + "/chat/completions"
        }
    }

    /// Logging.
    public struct Log: Sendable, Equatable {
        /// `log.level`
        public var level: LogLevel
        /// `log.format`
        public var format: LogFormat
        /// `log.request_summary`: the level of the line logged when a request settles.
        public var requestSummary: RequestSummaryLevel

        public init(level: LogLevel, format: LogFormat, requestSummary: RequestSummaryLevel = .info) {
            self.level = level
            self.format = format
            self.requestSummary = requestSummary
        }
    }

    /// W3C trace context and the optional OTLP span export.
    public struct Tracing: Sendable, Equatable {
        /// `tracing.start_traces`: start a trace for a request that brings no valid traceparent.
        public var startTraces: Bool
        /// `tracing.otlp_endpoint`: the OTLP/HTTP base URL (spans go to `<it>/v1/traces`); nil: no export.
        public var otlpEndpoint: String?
        /// `tracing.service_name`: the `service.name` resource attribute of exported spans.
        public var serviceName: String
        /// `tracing.max_queued_spans`: spans held for export at most; more are dropped and counted.
        public var maxQueuedSpans: Int
        /// `tracing.max_batch_spans`: spans per export request at most.
        public var maxBatchSpans: Int
        /// `tracing.export_interval`: seconds between two exports.
        public var exportInterval: Double
        /// `tracing.export_timeout`: seconds one export request may take.
        public var exportTimeout: Double

        public init(
            startTraces: Bool = false, otlpEndpoint: String? = nil, serviceName: String = "chatqueue-worker",
            maxQueuedSpans: Int = 4096, maxBatchSpans: Int = 512, exportInterval: Double = 1, exportTimeout: Double = 5
        ) {
            self.startTraces = startTraces
            self.otlpEndpoint = otlpEndpoint
            self.serviceName = serviceName
            self.maxQueuedSpans = maxQueuedSpans
            self.maxBatchSpans = maxBatchSpans
            self.exportInterval = exportInterval
            self.exportTimeout = exportTimeout
        }
    }

    /// The status file (see `chatqueue health`).
    public struct Status: Sendable, Equatable {
        /// `status.file`; nil when empty (the worker then uses its default path).
        public var file: String?
        /// `status.interval`: seconds between two status file updates.
        public var interval: Double

        public init(file: String? = nil, interval: Double = 5) {
            self.file = file
            self.interval = interval
        }
    }

    /// Cancels of requests the worker does not hold (yet).
    public struct Cancel: Sendable, Equatable {
        /// `cancel.remember_seconds`: how long such a cancel is remembered.
        public var rememberSeconds: Double
        /// `cancel.remember_max`: how many are remembered at most (0: none).
        public var rememberMax: Int

        public init(rememberSeconds: Double = 300, rememberMax: Int = 10000) {
            self.rememberSeconds = rememberSeconds
            self.rememberMax = rememberMax
        }
    }

    /// The Prometheus metrics file.
    public struct Metrics: Sendable, Equatable {
        /// `metrics.textfile`: a `.prom` file for node_exporter; nil writes no metrics.
        public var textfile: String?

        public init(textfile: String? = nil) {
            self.textfile = textfile
        }
    }

    public var broker: Broker
    public var queue: Queue
    public var replies: Replies
    public var worker: Worker
    public var retry: Retry
    /// `upstream.*`: the single upstream, and what every named upstream shares
    /// (`proxy`, `models`, `maxResponseBytes`, default timeouts).
    public var upstream: Upstream
    /// The upstreams requests are sent to, in the order of `upstreams.names`
    /// (``routing``'s upstream indices); `[upstream]` when none are named.
    public var upstreams: [Upstream]
    /// `routes`: which upstreams serve which models.
    public var routing: RoutingTable
    public var log: Log
    public var status: Status
    public var metrics: Metrics
    public var cancel: Cancel
    public var tracing: Tracing

    public init(
        broker: Broker, queue: Queue, replies: Replies, worker: Worker, retry: Retry = Retry(), upstream: Upstream,
        log: Log, status: Status = Status(), metrics: Metrics = Metrics(), cancel: Cancel = Cancel(),
        tracing: Tracing = Tracing(), upstreams: [Upstream]? = nil, routing: RoutingTable? = nil
    ) {
        self.tracing = tracing
        self.upstreams = upstreams ?? [upstream]
        self.routing = routing ?? .single(upstream: upstream.name)
        self.cancel = cancel
        self.retry = retry
        self.broker = broker
        self.queue = queue
        self.replies = replies
        self.worker = worker
        self.upstream = upstream
        self.log = log
        self.status = status
        self.metrics = metrics
    }

    /// The settings with nothing configured: every key at its default from `SettingKeys`.
    ///
    /// Loaded rather than spelled out, so the key table stays the only place
    /// defaults are written and derived values (dead-letter names) resolve the same way.
    public static let defaults: Settings = {
        do {
            return try SettingsLoader.load(configFile: nil, environment: [:], overrides: [:])
        } catch {
            fatalError("chatqueue's built-in defaults are invalid: \(error)")
        }
    }()
}
