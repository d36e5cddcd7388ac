import ChatQueueCore

// The configuration keys: the one place where names, defaults, allowed values and
// documentation are written. The loader reads through these, `config/chatqueue.yaml`
// is generated from them, and unknown-key detection checks against them.

/// What every key description provides, whatever the type of its value.
protocol DocumentedKey: Sendable {
    /// The dotted name, as in the YAML file and in command-line overrides.
    var name: String { get }
    /// One or two sentences for the annotated configuration file.
    var summary: String { get }
    /// The default, as written in the annotated configuration file.
    var defaultYAML: YAMLValue { get }
    /// Whether values of this key are secrets (never logged, redacted when shown).
    var isSecret: Bool { get }
}

/// An integer key accepting values in `range`.
struct IntKey: DocumentedKey {
    let name: String
    let defaultValue: Int
    let range: ClosedRange<Int>
    let summary: String
    var isSecret: Bool { false }
    var defaultYAML: YAMLValue { .int(defaultValue) }

    /// How the allowed values are described in error messages.
    var expectation: String {
        range.upperBound == Int.max
            ? "an integer >= \(range.lowerBound)" : "an integer in \(range.lowerBound)...\(range.upperBound)"
    }
}

/// A duration in seconds; fractions allowed, must be positive.
struct SecondsKey: DocumentedKey {
    let name: String
    let defaultValue: Double
    let summary: String
    var isSecret: Bool { false }
    var defaultYAML: YAMLValue { .number(defaultValue) }

    /// The longest accepted duration (a year): keeps later conversions to
    /// nanoseconds or timer ticks far from overflowing.
    static let maximum: Double = 365 * 24 * 3600

    var expectation: String { "a number of seconds > 0 and <= \(Int(Self.maximum))" }

    func allows(_ seconds: Double) -> Bool { seconds > 0 && seconds <= Self.maximum }
}

/// A yes/no key.
struct BoolKey: DocumentedKey {
    let name: String
    let defaultValue: Bool
    let summary: String
    var isSecret: Bool { false }
    var defaultYAML: YAMLValue { .bool(defaultValue) }
}

/// A string key; what an empty string means is up to the key (documented in `summary`).
struct TextKey: DocumentedKey {
    let name: String
    let defaultValue: String
    let summary: String
    var isSecret: Bool { false }
    var defaultYAML: YAMLValue { .string(defaultValue) }
}

/// A list of strings: a YAML list, or a comma-separated string (from any layer).
struct ListKey: DocumentedKey {
    let name: String
    let defaultValue: [String]
    let summary: String
    /// broker.url may embed a password, so the whole value is handled as a secret.
    let isSecret: Bool
    var defaultYAML: YAMLValue {
        defaultValue.count == 1 ? .string(defaultValue[0]) : .list(defaultValue)
    }
}

/// A key whose value is one of the cases of `Choice` (matched case-insensitively).
struct ChoiceKey<Choice: RawRepresentable<String> & CaseIterable & Sendable>: DocumentedKey {
    let name: String
    let defaultValue: Choice
    let summary: String
    var isSecret: Bool { false }
    var defaultYAML: YAMLValue { .string(defaultValue.rawValue) }

    var expectation: String { "one of " + Choice.allCases.map(\.rawValue).joined(separator: ", ") }
}

/// A secret with no default, which can also come from a file.
///
/// Precedence: the key itself (any layer) > the file named by `fileKey` >
/// `credentialName` in systemd's `$CREDENTIALS_DIRECTORY`.
struct SecretKey: DocumentedKey {
    let name: String
    let summary: String
    /// The key holding a path to a file containing the secret.
    let fileKey: TextKey
    /// The credential's file name in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
    var credentialName: String { name }
    var isSecret: Bool { true }
    var defaultYAML: YAMLValue { .string("") }
}

/// The keys chatqueue understands.
///
/// To add a key: declare it here, add it to ``all`` (in file order), read it in
/// `SettingsLoader`, show it in `Settings.effectiveValues`, then regenerate
/// `config/chatqueue.yaml` (see `ConfigDefaultsTests.templateIsGenerated`).
enum SettingKeys {
    // MARK: broker

    static let brokerURL = ListKey(
        name: "broker.url",
        defaultValue: ["amqp://guest:guest@127.0.0.1:5672/%2f"],
        summary: """
            RabbitMQ URL: amqp:// or amqps://user:password@host:port/vhost (vhost percent-encoded, \
            %2f is "/"). Several, comma-separated, are tried in order.
            """,
        isSecret: true
    )
    static let brokerPasswordFile = TextKey(
        name: "broker.password_file",
        defaultValue: "",
        summary: "File whose content (trailing newline trimmed) is broker.password. Empty: not used."
    )
    static let brokerPassword = SecretKey(
        name: "broker.password",
        summary: """
            Replaces the password of every broker URL. Empty: use broker.password_file, \
            else $CREDENTIALS_DIRECTORY/broker.password, else the URL's password (guest if none).
            """,
        fileKey: brokerPasswordFile
    )
    static let brokerHeartbeat = IntKey(
        name: "broker.heartbeat",
        defaultValue: 30,
        range: 0...3600,
        summary: "AMQP heartbeat in whole seconds (0...3600); 0 disables heartbeats."
    )

    static let brokerTLSCAFile = TextKey(
        name: "broker.tls.ca_file",
        defaultValue: "",
        summary: """
            CA bundle (PEM) that amqps:// broker certificates must chain to. Empty: the system's \
            (/etc/ssl/certs/ca-certificates.crt).
            """
    )
    static let brokerTLSCertFile = TextKey(
        name: "broker.tls.cert_file",
        defaultValue: "",
        summary: "Client certificate (PEM) for mutual TLS with the broker. Empty: none."
    )
    static let brokerTLSKeyFile = TextKey(
        name: "broker.tls.key_file",
        defaultValue: "",
        summary: "Private key (PEM) of broker.tls.cert_file. Empty: none."
    )
    static let brokerTLSVerify = BoolKey(
        name: "broker.tls.verify",
        defaultValue: true,
        summary: "Verify the broker's certificate and host name on amqps:// (turn off only for tests)."
    )

    // MARK: queue

    static let queueName = TextKey(
        name: "queue.name",
        defaultValue: "chat.requests",
        summary: "Queue the requests are consumed from (non-empty)."
    )
    static let queueDeclare = BoolKey(
        name: "queue.declare",
        defaultValue: true,
        summary: "Declare the queue and its dead-letter exchange and queue at startup."
    )
    static let queueType = ChoiceKey<QueueType>(
        name: "queue.type",
        defaultValue: .quorum,
        summary: "Type of the declared queue: quorum or classic."
    )
    static let queueDeadLetterExchange = TextKey(
        name: "queue.dead_letter_exchange",
        defaultValue: "",
        summary: "Exchange that rejected requests are dead-lettered to. Empty: \"<queue.name>.dlx\"."
    )
    static let queueDeadLetterQueue = TextKey(
        name: "queue.dead_letter_queue",
        defaultValue: "",
        summary: "Queue bound to the dead-letter exchange. Empty: \"<queue.name>.dead\"."
    )
    static let queueCancelExchange = TextKey(
        name: "queue.cancel_exchange",
        defaultValue: "chat.requests.cancel",
        summary: """
            Fanout exchange requesters publish cancels to ({"request_id": "..."}); each worker binds its own \
            exclusive, auto-delete queue to it. Empty: cancellation off.
            """
    )

    // MARK: replies

    static let repliesDefaultQueue = TextKey(
        name: "replies.default_queue",
        defaultValue: "",
        summary: "Queue for replies to requests that have no reply_to. Empty: none."
    )
    static let repliesAllowedQueues = ListKey(
        name: "replies.allowed_queues",
        defaultValue: [],
        summary: """
            Queues a request's reply_to may name besides the ones always allowed (RabbitMQ direct \
            reply-to amq.rabbitmq.reply-to*, server-named amq.gen-* queues, replies.default_queue): \
            exact names, or prefixes written with a trailing * (billing.replies.* matches \
            billing.replies.42, not billing.replies-x); "*" alone allows any queue. Other requests are \
            dead-lettered unanswered. Empty: only the always-allowed ones.
            """,
        isSecret: false
    )
    static let repliesMaxBacklogBytes = IntKey(
        name: "replies.max_backlog_bytes",
        defaultValue: 16_777_216,
        range: 4096...4_294_967_296,
        summary:
            "Replies waiting for the broker (under an alarm, or slower than the upstream) beyond this many bytes pause reading from the upstream until a quarter of it is left (4096...4294967296)."
    )

    // MARK: worker

    static let workerConcurrency = IntKey(
        name: "worker.concurrency",
        defaultValue: 32,
        range: 1...65535,
        summary: "Requests handled at once (1...65535)."
    )
    static let workerMaxRequestBytes = IntKey(
        name: "worker.max_request_bytes",
        defaultValue: 1_048_576,
        range: 1...134_217_728,
        summary: "Largest accepted request body in bytes (1...134217728); larger ones are rejected."
    )
    static let workerRequestTimeout = SecondsKey(
        name: "worker.request_timeout",
        defaultValue: 600,
        summary: """
            Seconds a request may take, from delivery to its final reply, retries included. \
            Keep it under RabbitMQ's consumer_timeout (30 minutes by default).
            """
    )
    static let workerMaxDeliveries = IntKey(
        name: "worker.max_deliveries",
        defaultValue: 5,
        range: 1...1000,
        summary: """
            Deliveries of one request before it is answered max_deliveries_exceeded and \
            dead-lettered as a poison message (1...1000). Counted exactly on quorum queues only.
            """
    )
    static let workerShutdownGrace = SecondsKey(
        name: "worker.shutdown_grace",
        defaultValue: 30,
        summary: """
            Seconds in-flight requests get to finish after SIGTERM; the rest are then \
            requeued. Keep systemd's TimeoutStopSec above it.
            """
    )

    // MARK: retry

    static let retryMaxAttempts = IntKey(
        name: "retry.max_attempts",
        defaultValue: 4,
        range: 1...100,
        summary: "HTTP tries per delivery, the first included (1...100); 1 disables retries."
    )
    static let retryBaseDelay = SecondsKey(
        name: "retry.base_delay",
        defaultValue: 0.5,
        summary: "Backoff base: the n-th retry waits a random time up to base_delay * 2^(n-1)."
    )
    static let retryMaxDelay = SecondsKey(
        name: "retry.max_delay",
        defaultValue: 30,
        summary: "Cap of the backoff wait between two tries."
    )
    static let retryMaxRetryAfter = SecondsKey(
        name: "retry.max_retry_after",
        defaultValue: 60,
        summary: """
            Longest Retry-After (or retry-after-ms) the worker waits for; a longer one ends \
            the request with a retryable error instead.
            """
    )

    // MARK: upstream

    static let upstreamURL = TextKey(
        name: "upstream.url",
        defaultValue: "https://api.deepseek.com",
        summary: "Base URL of the DeepSeek-compatible API (http:// or https://); /chat/completions is appended."
    )
    static let upstreamAPIKeyFile = TextKey(
        name: "upstream.api_key_file",
        defaultValue: "",
        summary: "File whose content (trailing newline trimmed) is upstream.api_key. Empty: not used."
    )
    static let upstreamAPIKey = SecretKey(
        name: "upstream.api_key",
        summary: """
            Bearer token for the API. Empty: use upstream.api_key_file, \
            else $CREDENTIALS_DIRECTORY/upstream.api_key, else send no Authorization header.
            """,
        fileKey: upstreamAPIKeyFile
    )
    static let upstreamCAFile = TextKey(
        name: "upstream.ca_file",
        defaultValue: "",
        summary: "CA bundle (PEM) for an https:// upstream with a private CA. Empty: the system's."
    )
    static let upstreamProxy = TextKey(
        name: "upstream.proxy",
        defaultValue: "",
        summary: """
            Proxy for upstream calls: http://, https://, socks5h:// (or socks4, socks4a, socks5) with \
            host and port; user:password@ is allowed and redacted by check-config. Empty: no proxy, and \
            http_proxy, https_proxy, ALL_PROXY and NO_PROXY in the environment are ignored.
            """
    )
    static let upstreamModels = ListKey(
        name: "upstream.models",
        defaultValue: [],
        summary: "Models requests may ask for (a list, or comma-separated). Empty: any model.",
        isSecret: false
    )
    static let upstreamConnectTimeout = SecondsKey(
        name: "upstream.connect_timeout",
        defaultValue: 10,
        summary: "Seconds to establish the connection (TCP and TLS) to the API."
    )
    static let upstreamFirstByteTimeout = SecondsKey(
        name: "upstream.first_byte_timeout",
        defaultValue: 120,
        summary: """
            Seconds from sending a request until the first data event (stream) or the first \
            non-blank byte (non-stream); keep-alive comments and blank lines do not count.
            """
    )
    static let upstreamIdleTimeout = SecondsKey(
        name: "upstream.idle_timeout",
        defaultValue: 60,
        summary: "Longest gap in seconds between two data events once a response has started."
    )
    static let upstreamMaxResponseBytes = IntKey(
        name: "upstream.max_response_bytes",
        defaultValue: 8_388_608,
        range: 1024...536_870_912,
        summary:
            "Largest upstream response in bytes: a document, or a stream's events together (502 response_too_large past it). It bounds every reply, so keep it under the broker's max_message_size (RabbitMQ 4: 16 MiB) (1024...536870912)."
    )

    static let upstreamMaxConcurrency = IntKey(
        name: "upstream.max_concurrency",
        defaultValue: 0,
        range: 0...65535,
        summary: """
            Most tries at once to the upstream (the top of its window; each named upstream's default). \
            0: worker.concurrency.
            """
    )
    static let upstreamAdaptiveConcurrency = BoolKey(
        name: "upstream.adaptive_concurrency",
        defaultValue: true,
        summary: """
            Adapt each upstream's window of tries at once (AIMD): +1 per window of answers, x0.7 on a 429 \
            or 503 or x-ratelimit-remaining-* at 0, between 1 and max_concurrency; tries beyond it wait in \
            the worker. false: the window stays at max_concurrency.
            """
    )
    static let upstreamRequestsPerMinute = IntKey(
        name: "upstream.rpm",
        defaultValue: 0,
        range: 0...100_000_000,
        summary: """
            Most tries a minute to the upstream (spread evenly: at most a second's worth at once); tries \
            beyond it wait in the worker. 0: no limit. Each named upstream's default.
            """
    )
    static let upstreamTokensPerMinute = IntKey(
        name: "upstream.tpm",
        defaultValue: 0,
        range: 0...1_000_000_000_000,
        summary: """
            Most tokens a minute (prompt plus completion, as the upstream reports them in usage): tries wait \
            while the tokens already used exceed it. 0: no limit. Each named upstream's default.
            """
    )
    static let upstreamOnAccountError = ChoiceKey<AccountErrorMode>(
        name: "upstream.on_account_error",
        defaultValue: .reply,
        summary: """
            What a 401, 402 or 403 (the account, not the request) does once no other upstream of the \
            route takes the request: reply (answer it with the error, contract v1) or hold (never answer \
            it: the request waits or goes back to the queue, the upstream's breaker opens with the reason \
            and is probed every upstream.hold_probe_interval; consuming stops while no route has an \
            upstream up). Each upstream may set its own (upstreams.<name>.on_account_error).
            """
    )
    static let upstreamBreakerFailures = IntKey(
        name: "upstream.breaker_failures",
        defaultValue: 5,
        range: 1...1000,
        summary: """
            Retryable failures in a row (connection errors, timeouts, 408, 429, 5xx, broken streams) that \
            open an upstream's circuit breaker: no tries go to it for upstream.breaker_cooldown, then one \
            probe (1...1000).
            """
    )
    static let upstreamBreakerCooldown = SecondsKey(
        name: "upstream.breaker_cooldown",
        defaultValue: 15,
        summary: "Seconds an open breaker waits before its probe; the upstream's Retry-After is a floor."
    )
    static let upstreamBreakerMaxCooldown = SecondsKey(
        name: "upstream.breaker_max_cooldown",
        defaultValue: 300,
        summary: "Longest a Retry-After may keep a breaker open (less than upstream.breaker_cooldown reads as it)."
    )
    static let upstreamHoldProbeInterval = SecondsKey(
        name: "upstream.hold_probe_interval",
        defaultValue: 30,
        summary: "Seconds between probes of an upstream held by an account error (on_account_error: hold)."
    )

    // MARK: upstreams and routes

    static let upstreamsNames = ListKey(
        name: "upstreams.names",
        defaultValue: [],
        summary: """
            Several upstreams: their names (lowercase letters, digits and _, starting with a letter; not \
            "names" or "routes"), each configured by upstreams.<name>.* keys (below); upstreams.routes says \
            which models go where. Empty: one upstream named "default", from the upstream.* keys, for every \
            model. With names, upstream.url, upstream.api_key(_file) and upstream.ca_file are not used; \
            upstream.proxy, upstream.models and upstream.max_response_bytes apply to every upstream, and the \
            upstream.*_timeout keys are the defaults of each upstream's own.
            """
            + "\n" + upstreamFields.map { "upstreams.<name>.\($0.field): \($0.summary)" }.joined(separator: "\n"),
        isSecret: false
    )
    static let routes = ListKey(
        name: "upstreams.routes",
        defaultValue: [],
        summary: """
            With upstreams.names: where each request's model goes, one entry per route, \
            "<model pattern> -> <upstream>[=<model>] <upstream>[=<model>] ...". The pattern is an exact \
            model name or a glob where * stands for any characters; the first route that matches, in the \
            order written, wins; a model no route matches is answered model_not_found without any call. \
            The upstreams are tried in order (the first one for now). =<model> sends that upstream the \
            request with its model member renamed (the only change ever made to a request body). \
            Example: ["deepseek-chat -> deepseek acedata=DeepSeek-V3", "* -> deepseek"]. In the \
            environment, entries are separated by commas. Empty (and no upstreams.names): "* -> default".
            """,
        isSecret: false
    )

    /// The keys of each named upstream, `upstreams.<name>.<field>`.
    struct UpstreamField: Sendable {
        let field: String
        let summary: String
        var isSecret: Bool { field == "api_key" }
    }

    static let upstreamFields: [UpstreamField] = [
        UpstreamField(field: "url", summary: "Base URL, http:// or https:// (required); /chat/completions is appended."),
        UpstreamField(
            field: "api_key",
            summary: "Bearer token. Empty: upstreams.<name>.api_key_file, else $CREDENTIALS_DIRECTORY/upstreams.<name>.api_key, else none."),
        UpstreamField(field: "api_key_file", summary: "File whose content is the api_key."),
        UpstreamField(field: "ca_file", summary: "CA bundle (PEM) for a private CA. Empty: the system's."),
        UpstreamField(field: "connect_timeout", summary: "Seconds; default upstream.connect_timeout."),
        UpstreamField(field: "first_byte_timeout", summary: "Seconds; default upstream.first_byte_timeout."),
        UpstreamField(field: "idle_timeout", summary: "Seconds; default upstream.idle_timeout."),
        UpstreamField(
            field: "max_concurrency",
            summary: "Most tries at once to this upstream (0...65535); default upstream.max_concurrency."),
        UpstreamField(
            field: "adaptive_concurrency", summary: "true or false; default upstream.adaptive_concurrency."),
        UpstreamField(field: "on_account_error", summary: "reply or hold; default upstream.on_account_error."),
        UpstreamField(field: "rpm", summary: "Tries a minute (0: none); default upstream.rpm."),
        UpstreamField(field: "tpm", summary: "Tokens a minute (0: none); default upstream.tpm."),
        UpstreamField(
            field: "headers",
            summary: """
                Extra headers, a list of "Name: value" (at most 32, 4096 bytes each; no CR, LF or other control \
                characters; not Authorization, Content-Type, Content-Length, Expect, Host, Transfer-Encoding or \
                Connection). Values with commas must be written as a YAML list.
                """),
    ]

    /// The dotted key of a named upstream's field.
    static func upstreamKey(_ name: String, _ field: String) -> String {
        "upstreams.\(name).\(field)"
    }

    /// The upstream name and field of a key `upstreams.<name>.<field>`, if it is one.
    static func upstreamField(of key: String) -> (name: String, field: String)? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "upstreams", RoutingTable.isValidName(String(parts[1])),
            upstreamFields.contains(where: { $0.field == parts[2] })
        else { return nil }
        return (String(parts[1]), String(parts[2]))
    }

    /// Whether values of `key` are secrets (a fixed key, or an upstream's api_key).
    static func isSecret(_ key: String) -> Bool {
        secretNames.contains(key) || upstreamField(of: key)?.field == "api_key"
    }

    // MARK: log

    static let logLevel = ChoiceKey<LogLevel>(
        name: "log.level",
        defaultValue: .info,
        summary: "Lowest level logged: trace, debug, info, notice, warning, error or critical."
    )
    static let logFormat = ChoiceKey<LogFormat>(
        name: "log.format",
        defaultValue: .text,
        summary: "Log line format on stderr: text or json (one object per line)."
    )

    static let logRequestSummary = ChoiceKey<RequestSummaryLevel>(
        name: "log.request_summary",
        defaultValue: .info,
        summary: """
            Level of the one line logged when a request settles (request id, trace id, model, \
            upstream, outcome, attempt, tries, time to first chunk, duration, chunks, tokens; no \
            message content): off, trace, debug, info, notice or warning. Logged only when \
            log.level lets that level through.
            """
    )

    // MARK: status

    static let statusFile = TextKey(
        name: "status.file",
        defaultValue: "",
        summary: """
            JSON status file the worker rewrites every status.interval seconds and on state changes \
            (read by `chatqueue health`). Empty: $RUNTIME_DIRECTORY/status.json under systemd, \
            else ./chatqueue-status.json.
            """
    )
    static let statusInterval = SecondsKey(
        name: "status.interval",
        defaultValue: 5,
        summary: """
            Seconds between two status file (and metrics file) updates. `chatqueue health` calls \
            a status older than three intervals stale.
            """
    )

    // MARK: cancel

    static let cancelRememberSeconds = SecondsKey(
        name: "cancel.remember_seconds",
        defaultValue: 300,
        summary: """
            Seconds a cancel of a request this worker does not hold is remembered, so that the request \
            is answered cancelled without calling the upstream if it arrives meanwhile.
            """
    )
    static let cancelRememberMax = IntKey(
        name: "cancel.remember_max",
        defaultValue: 10000,
        range: 0...100_000,
        summary: "Cancels remembered at most, the oldest forgotten first (0...100000; 0: none are). Each costs about 400 bytes: 4 MB at the default."
    )

    // MARK: metrics

    static let metricsTextfile = TextKey(
        name: "metrics.textfile",
        defaultValue: "",
        summary: """
            Prometheus metrics file for node_exporter's textfile collector, rewritten with the \
            status file; the name must end in .prom. Empty: no metrics.
            """
    )

    // MARK: tracing

    static let tracingStartTraces = BoolKey(
        name: "tracing.start_traces",
        defaultValue: false,
        summary: """
            Start a trace for a request that brings no valid traceparent header. Off: such a \
            request is not traced (no traceparent upstream or on replies, no span exported).
            """
    )
    static let tracingOTLPEndpoint = TextKey(
        name: "tracing.otlp_endpoint",
        defaultValue: "",
        summary: """
            OTLP/HTTP collector base URL (http:// or https://, e.g. http://127.0.0.1:4318): one \
            span per traced request, with a child span per upstream try, is POSTed as JSON to \
            <url>/v1/traces. Empty: no spans are exported (trace context is still propagated).
            """
    )
    static let tracingServiceName = TextKey(
        name: "tracing.service_name",
        defaultValue: "chatqueue-worker",
        summary: "The service.name resource attribute of exported spans."
    )
    static let tracingMaxQueuedSpans = IntKey(
        name: "tracing.max_queued_spans",
        defaultValue: 4096,
        range: 1...1_000_000,
        summary: """
            Spans held for export at most (1...1000000); further spans are dropped and counted \
            (chatqueue_spans_dropped_total) while the collector is slow or down.
            """
    )
    static let tracingMaxBatchSpans = IntKey(
        name: "tracing.max_batch_spans",
        defaultValue: 512,
        range: 1...100_000,
        summary: "Spans per export request at most (1...100000)."
    )
    static let tracingExportInterval = SecondsKey(
        name: "tracing.export_interval",
        defaultValue: 1,
        summary: "Seconds between two span exports (a shorter interval is taken as 0.01)."
    )
    static let tracingExportTimeout = SecondsKey(
        name: "tracing.export_timeout",
        defaultValue: 5,
        summary: "Seconds an export request may take before it is given up (its spans are dropped and counted)."
    )

    /// Every key, in the order of the annotated configuration file.
    static let all: [any DocumentedKey] = [
        brokerURL, brokerPassword, brokerPasswordFile, brokerHeartbeat,
        brokerTLSCAFile, brokerTLSCertFile, brokerTLSKeyFile, brokerTLSVerify,
        queueName, queueDeclare, queueType, queueDeadLetterExchange, queueDeadLetterQueue,
        queueCancelExchange,
        repliesDefaultQueue, repliesAllowedQueues, repliesMaxBacklogBytes,
        workerConcurrency, workerMaxRequestBytes, workerRequestTimeout, workerMaxDeliveries, workerShutdownGrace,
        retryMaxAttempts, retryBaseDelay, retryMaxDelay, retryMaxRetryAfter,
        upstreamURL, upstreamAPIKey, upstreamAPIKeyFile, upstreamCAFile, upstreamProxy, upstreamModels,
        upstreamConnectTimeout, upstreamFirstByteTimeout, upstreamIdleTimeout, upstreamMaxResponseBytes,
        upstreamMaxConcurrency, upstreamAdaptiveConcurrency, upstreamRequestsPerMinute, upstreamTokensPerMinute,
        upstreamOnAccountError,
        upstreamBreakerFailures, upstreamBreakerCooldown, upstreamBreakerMaxCooldown, upstreamHoldProbeInterval,
        upstreamsNames, routes,
        logLevel, logFormat, logRequestSummary,
        statusFile, statusInterval,
        cancelRememberSeconds, cancelRememberMax,
        metricsTextfile,
        tracingStartTraces, tracingOTLPEndpoint, tracingServiceName, tracingMaxQueuedSpans, tracingMaxBatchSpans,
        tracingExportInterval, tracingExportTimeout,
    ]

    /// The dotted names of ``all``.
    static let names: Set<String> = Set(all.map(\.name))

    /// The dotted names of keys whose values are secrets.
    static let secretNames: Set<String> = Set(all.filter(\.isSecret).map(\.name))

    /// Whether `name` is a key chatqueue understands: one of ``all``, or a
    /// named upstream's `upstreams.<name>.<field>` (whether the name is
    /// declared in `upstreams.names` is checked by the loader).
    static func isKnown(_ name: String) -> Bool {
        names.contains(name) || upstreamField(of: name) != nil
    }

    /// Whether `name` is a section holding keys, such as `worker` or `upstreams.<name>`.
    static func isSection(_ name: String) -> Bool {
        if names.contains(where: { $0.hasPrefix(name + ".") }) { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2 && parts[0] == "upstreams" && RoutingTable.isValidName(String(parts[1]))
    }

    /// The known key closest to a misspelled one, if any is close enough to suggest.
    static func suggestion(for unknown: String) -> String? {
        let candidates = names.map { (name: $0, distance: editDistance($0, unknown)) }
        guard let best = candidates.min(by: { ($0.distance, $0.name) < ($1.distance, $1.name) }),
            best.distance <= max(2, unknown.count / 4)
        else { return nil }
        return best.name
    }
}

/// The Levenshtein distance between two strings, by Unicode scalars.
private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars)
    let b = Array(b.unicodeScalars)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        previous = current
    }
    return previous[b.count]
}
