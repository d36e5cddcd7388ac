import ChatQueueCore

/// Loads ``Settings`` from three layers, lowest priority first:
///
/// 1. the YAML file given with `--config` (optional),
/// 2. environment variables `CHATQUEUE_<KEY>`: the dotted key upper-cased, dots as
///    underscores (`CHATQUEUE_WORKER_MAX_REQUEST_BYTES`),
/// 3. command-line overrides, by dotted key.
///
/// Then secrets not set by any layer come from their `*_file` key, then from systemd's
/// `$CREDENTIALS_DIRECTORY`. Every key, its default and its allowed values are in
/// `SettingKeys` and documented in `config/chatqueue.yaml`.
public enum SettingsLoader {
    /// The prefix of the environment variables read.
    public static let environmentPrefix = "CHATQUEUE_"

    /// The environment variable for a dotted key: `worker.concurrency` → `CHATQUEUE_WORKER_CONCURRENCY`.
    public static func environmentVariableName(forKey key: String) -> String {
        environmentPrefix + encodedKey(key)
    }

    /// Loads the settings.
    ///
    /// - Parameters:
    ///   - configFile: path of the YAML file, or nil for none.
    ///   - environment: usually `ProcessInfo.processInfo.environment` (passed in for tests);
    ///     `CHATQUEUE_*` variables and `CREDENTIALS_DIRECTORY` are used.
    ///   - overrides: values by dotted key (`worker.concurrency` → `"64"`), highest priority.
    /// - Throws: a ``ConfigError`` naming the dotted key at fault (or `config` for the file).
    public static func load(
        configFile: String?,
        environment: [String: String],
        overrides: [String: String]
    ) throws(ConfigError) -> Settings {
        let layers = try ConfigLayers(configFile: configFile, environment: environment, overrides: overrides)
        let upstream = try upstream(from: layers)
        let (upstreams, routing) = try upstreams(from: layers, shared: upstream)
        return Settings(
            broker: try broker(from: layers),
            queue: try queue(from: layers),
            replies: try replies(from: layers),
            worker: Settings.Worker(
                concurrency: try layers.int(SettingKeys.workerConcurrency),
                maxRequestBytes: try layers.int(SettingKeys.workerMaxRequestBytes),
                requestTimeout: try layers.seconds(SettingKeys.workerRequestTimeout),
                maxDeliveries: try layers.int(SettingKeys.workerMaxDeliveries),
                shutdownGrace: try layers.seconds(SettingKeys.workerShutdownGrace)
            ),
            retry: Settings.Retry(
                maxAttempts: try layers.int(SettingKeys.retryMaxAttempts),
                baseDelay: try layers.seconds(SettingKeys.retryBaseDelay),
                maxDelay: try layers.seconds(SettingKeys.retryMaxDelay),
                maxRetryAfter: try layers.seconds(SettingKeys.retryMaxRetryAfter)
            ),
            upstream: upstream,
            log: Settings.Log(
                level: try layers.choice(SettingKeys.logLevel),
                format: try layers.choice(SettingKeys.logFormat),
                requestSummary: try layers.choice(SettingKeys.logRequestSummary)
            ),
            status: Settings.Status(
                file: nonEmpty(try layers.text(SettingKeys.statusFile)),
                interval: try layers.seconds(SettingKeys.statusInterval)
            ),
            metrics: try metrics(from: layers),
            cancel: Settings.Cancel(
                rememberSeconds: try layers.seconds(SettingKeys.cancelRememberSeconds),
                rememberMax: try layers.int(SettingKeys.cancelRememberMax)
            ),
            tracing: try tracing(from: layers),
            upstreams: upstreams,
            routing: routing
        )
    }

    private static func tracing(from layers: ConfigLayers) throws(ConfigError) -> Settings.Tracing {
        let endpoint = nonEmpty(try layers.text(SettingKeys.tracingOTLPEndpoint))
        if let endpoint {
            // Spans go to <endpoint>/v1/traces; a trailing slash is not doubled.
            guard isPlainHTTPURL(endpoint) else {
                throw layers.invalid(
                    SettingKeys.tracingOTLPEndpoint.name,
                    expected: "an http:// or https:// URL with a host and no user info, query or fragment",
                    got: String(reflecting: redactedURL(endpoint, hidingUser: true)))
            }
        }
        let serviceName = try layers.text(SettingKeys.tracingServiceName)
        guard !serviceName.isEmpty, serviceName.utf8.count <= 255, !serviceName.contains(where: \.isNewline) else {
            throw layers.invalid(
                SettingKeys.tracingServiceName.name, expected: "a name of 1 to 255 bytes on one line",
                got: excerpt(serviceName))
        }
        return Settings.Tracing(
            startTraces: try layers.bool(SettingKeys.tracingStartTraces),
            otlpEndpoint: endpoint.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 },
            serviceName: serviceName,
            maxQueuedSpans: try layers.int(SettingKeys.tracingMaxQueuedSpans),
            maxBatchSpans: try layers.int(SettingKeys.tracingMaxBatchSpans),
            exportInterval: try layers.seconds(SettingKeys.tracingExportInterval),
            exportTimeout: try layers.seconds(SettingKeys.tracingExportTimeout))
    }

    /// A dotted key as swift-configuration's environment provider spells it, unprefixed:
    /// upper-cased, anything but letters and digits as `_`.
    static func encodedKey(_ key: String) -> String {
        String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    private static func broker(from layers: ConfigLayers) throws(ConfigError) -> Settings.Broker {
        let urlKey = SettingKeys.brokerURL
        let urls = try layers.list(urlKey) ?? urlKey.defaultValue
        guard !urls.isEmpty else {
            throw layers.invalid(urlKey.name, expected: "at least one amqp:// or amqps:// URL", got: "none")
        }
        var endpoints: [BrokerEndpoint] = []
        for url in urls {
            do {
                endpoints.append(try BrokerEndpoint(url: url, key: urlKey.name))
            } catch {
                throw layers.addingSource(to: error)
            }
        }
        if let password = try layers.secret(SettingKeys.brokerPassword) {
            for index in endpoints.indices { endpoints[index].password = password }
        }
        let tls = Settings.TLS(
            caFile: nonEmpty(try layers.text(SettingKeys.brokerTLSCAFile)),
            certFile: nonEmpty(try layers.text(SettingKeys.brokerTLSCertFile)),
            keyFile: nonEmpty(try layers.text(SettingKeys.brokerTLSKeyFile)),
            verify: try layers.bool(SettingKeys.brokerTLSVerify))
        if (tls.certFile == nil) != (tls.keyFile == nil) {
            throw layers.invalid(
                tls.certFile == nil ? SettingKeys.brokerTLSCertFile.name : SettingKeys.brokerTLSKeyFile.name,
                expected: "broker.tls.cert_file and broker.tls.key_file set together", got: "only one of them")
        }
        return Settings.Broker(endpoints: endpoints, heartbeat: try layers.int(SettingKeys.brokerHeartbeat), tls: tls)
    }

    private static func queue(from layers: ConfigLayers) throws(ConfigError) -> Settings.Queue {
        let name = try layers.text(SettingKeys.queueName)
        guard !name.isEmpty else {
            throw layers.invalid(SettingKeys.queueName.name, expected: "a non-empty queue name", got: "\"\"")
        }
        return Settings.Queue(
            name: name,
            declare: try layers.bool(SettingKeys.queueDeclare),
            type: try layers.choice(SettingKeys.queueType),
            deadLetterExchange: nonEmpty(try layers.text(SettingKeys.queueDeadLetterExchange)) ?? name + ".dlx",
            deadLetterQueue: nonEmpty(try layers.text(SettingKeys.queueDeadLetterQueue)) ?? name + ".dead",
            cancelExchange: try cancelExchange(from: layers)
        )
    }

    /// `queue.cancel_exchange`: nil (off) when empty; an AMQP name is at most 255 bytes.
    private static func cancelExchange(from layers: ConfigLayers) throws(ConfigError) -> String? {
        let key = SettingKeys.queueCancelExchange
        let name = try layers.text(key)
        guard name.utf8.count <= 255 else {
            throw layers.invalid(key.name, expected: "an exchange name of at most 255 bytes", got: excerpt(name))
        }
        return nonEmpty(name)
    }

    private static func replies(from layers: ConfigLayers) throws(ConfigError) -> Settings.Replies {
        let key = SettingKeys.repliesAllowedQueues
        let entries = try layers.list(key) ?? key.defaultValue
        let allowed: [ReplyQueuePattern]
        do {
            allowed = try ReplyQueuePolicy.patterns(parsing: entries)
        } catch {
            throw layers.invalid(
                key.name, expected: "queue names or prefixes ending in * (\(error.reason))",
                got: excerpt(error.entry))
        }
        return Settings.Replies(
            defaultQueue: nonEmpty(try layers.text(SettingKeys.repliesDefaultQueue)),
            allowedQueues: allowed,
            maxBacklogBytes: try layers.int(SettingKeys.repliesMaxBacklogBytes))
    }

    private static func upstream(from layers: ConfigLayers) throws(ConfigError) -> Settings.Upstream {
        let url = try layers.text(SettingKeys.upstreamURL)
        try checkUpstreamURL(url, key: SettingKeys.upstreamURL.name, layers)
        let models = try layers.list(SettingKeys.upstreamModels) ?? SettingKeys.upstreamModels.defaultValue
        var upstream = Settings.Upstream(
            url: url,
            apiKey: try layers.secret(SettingKeys.upstreamAPIKey),
            models: models.isEmpty ? nil : Set(models),
            connectTimeout: try layers.seconds(SettingKeys.upstreamConnectTimeout),
            firstByteTimeout: try layers.seconds(SettingKeys.upstreamFirstByteTimeout),
            idleTimeout: try layers.seconds(SettingKeys.upstreamIdleTimeout),
            maxResponseBytes: try layers.int(SettingKeys.upstreamMaxResponseBytes)
        )
        upstream.caFile = nonEmpty(try layers.text(SettingKeys.upstreamCAFile))
        upstream.proxy = try proxy(from: layers)
        let concurrency = try layers.int(SettingKeys.upstreamMaxConcurrency)
        upstream.maxConcurrency = concurrency == 0 ? nil : concurrency
        upstream.adaptiveConcurrency = try layers.bool(SettingKeys.upstreamAdaptiveConcurrency)
        upstream.requestsPerMinute = nonZero(try layers.int(SettingKeys.upstreamRequestsPerMinute))
        upstream.tokensPerMinute = nonZero(try layers.int(SettingKeys.upstreamTokensPerMinute))
        upstream.onAccountError = try layers.choice(SettingKeys.upstreamOnAccountError)
        upstream.breakerFailures = try layers.int(SettingKeys.upstreamBreakerFailures)
        upstream.breakerCooldown = try layers.seconds(SettingKeys.upstreamBreakerCooldown)
        // A max below the cooldown is read as the cooldown (raising one alone must not fail).
        upstream.breakerMaxCooldown = max(
            upstream.breakerCooldown, try layers.seconds(SettingKeys.upstreamBreakerMaxCooldown))
        upstream.holdProbeInterval = try layers.seconds(SettingKeys.upstreamHoldProbeInterval)
        return upstream
    }

    /// `upstreams.names`, each `upstreams.<name>.*`, and `routes`; without
    /// names, `shared` (the `upstream.*` keys) alone, as `default`, for every model.
    private static func upstreams(from layers: ConfigLayers, shared: Settings.Upstream) throws(ConfigError)
        -> ([Settings.Upstream], RoutingTable)
    {
        let namesKey = SettingKeys.upstreamsNames
        let routesKey = SettingKeys.routes
        let names = try layers.list(namesKey) ?? namesKey.defaultValue
        let entries = try layers.list(routesKey) ?? routesKey.defaultValue
        try layers.checkUpstreamKeys(declared: names)
        guard !names.isEmpty else {
            guard entries.isEmpty else {
                throw layers.invalid(
                    routesKey.name, expected: "no upstreams.routes unless upstreams.names names the upstreams",
                    got: excerpt(entries[0]))
            }
            return ([shared], .single(upstream: shared.name))
        }
        let routing: RoutingTable
        do {
            routing = try RoutingTable(upstreamNames: names, routeEntries: entries)
        } catch {
            let key = error.isRoute ? routesKey.name : namesKey.name
            guard !error.entry.isEmpty else { throw layers.invalid(key, expected: "at least one route", got: "none") }
            throw layers.invalid(key, expected: "no \(error.reason)", got: excerpt(error.entry))
        }
        var upstreams: [Settings.Upstream] = []
        for name in names {
            upstreams.append(try namedUpstream(name, from: layers, shared: shared))
        }
        return (upstreams, routing)
    }

    private static func namedUpstream(_ name: String, from layers: ConfigLayers, shared: Settings.Upstream)
        throws(ConfigError) -> Settings.Upstream
    {
        func key(_ field: String) -> String { SettingKeys.upstreamKey(name, field) }
        let url = try layers.text(TextKey(name: key("url"), defaultValue: "", summary: ""))
        try checkUpstreamURL(url, key: key("url"), layers)
        let apiKey = SecretKey(
            name: key("api_key"), summary: "", fileKey: TextKey(name: key("api_key_file"), defaultValue: "", summary: ""))
        var upstream = shared
        upstream.name = name
        upstream.url = url
        upstream.apiKey = try layers.secret(apiKey)
        upstream.caFile = nonEmpty(try layers.text(TextKey(name: key("ca_file"), defaultValue: "", summary: "")))
        upstream.connectTimeout = try layers.seconds(
            SecondsKey(name: key("connect_timeout"), defaultValue: shared.connectTimeout, summary: ""))
        upstream.firstByteTimeout = try layers.seconds(
            SecondsKey(name: key("first_byte_timeout"), defaultValue: shared.firstByteTimeout, summary: ""))
        upstream.idleTimeout = try layers.seconds(
            SecondsKey(name: key("idle_timeout"), defaultValue: shared.idleTimeout, summary: ""))
        let concurrency = try layers.int(
            IntKey(name: key("max_concurrency"), defaultValue: shared.maxConcurrency ?? 0, range: 0...65535, summary: ""))
        upstream.maxConcurrency = concurrency == 0 ? nil : concurrency
        upstream.adaptiveConcurrency = try layers.bool(
            BoolKey(name: key("adaptive_concurrency"), defaultValue: shared.adaptiveConcurrency, summary: ""))
        upstream.onAccountError = try layers.choice(
            ChoiceKey(name: key("on_account_error"), defaultValue: shared.onAccountError, summary: ""))
        upstream.requestsPerMinute = nonZero(
            try layers.int(
                IntKey(
                    name: key("rpm"), defaultValue: shared.requestsPerMinute ?? 0,
                    range: SettingKeys.upstreamRequestsPerMinute.range, summary: "")))
        upstream.tokensPerMinute = nonZero(
            try layers.int(
                IntKey(
                    name: key("tpm"), defaultValue: shared.tokensPerMinute ?? 0,
                    range: SettingKeys.upstreamTokensPerMinute.range, summary: "")))
        let headersKey = ListKey(name: key("headers"), defaultValue: [], summary: "", isSecret: false)
        let lines = try layers.list(headersKey) ?? []
        guard lines.count <= StaticHeader.maximumCount else {
            throw layers.invalid(
                headersKey.name, expected: "at most \(StaticHeader.maximumCount) headers", got: "\(lines.count)")
        }
        upstream.headers = []
        for line in lines {
            switch StaticHeader.line(parsing: line) {
            case .success(let header): upstream.headers.append(header)
            case .failure(let problem):
                // The value may be a credential: only the name is shown.
                throw layers.invalid(
                    headersKey.name, expected: "\"Name: value\" headers, not \(problem)",
                    got: excerpt(String(line.prefix { $0 != ":" })) + ": …")
            }
        }
        return upstream
    }

    /// Schemes libcurl takes for a proxy; anything else (or no scheme, which
    /// libcurl would read as http://) is refused so the setting means one thing.
    static let proxySchemes = ["http", "https", "socks4", "socks4a", "socks5", "socks5h"]

    private static func proxy(from layers: ConfigLayers) throws(ConfigError) -> String? {
        let key = SettingKeys.upstreamProxy
        guard let proxy = nonEmpty(try layers.text(key)) else { return nil }
        let expected = "a proxy URL: " + proxySchemes.map { $0 + "://" }.joined(separator: ", ") + " with a host"
        guard let separator = proxy.range(of: "://") else {
            throw layers.invalid(key.name, expected: expected, got: excerpt(Settings.Upstream.redactedProxy(proxy)))
        }
        let scheme = proxy[..<separator.lowerBound].lowercased()
        // The host is after the last @ (a password may hold any character).
        let authority = proxy[separator.upperBound...].split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        let host = authority.prefix { $0 != "/" && $0 != ":" }
        guard proxySchemes.contains(scheme), !host.isEmpty,
            !proxy.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw layers.invalid(key.name, expected: expected, got: excerpt(Settings.Upstream.redactedProxy(proxy)))
        }
        return proxy
    }

    /// A value for "got …" in an error message: quoted, and cut short when long.
    private static func excerpt(_ text: String) -> String {
        let limit = 64
        guard text.utf8.count > limit else { return String(reflecting: text) }
        return String(reflecting: String(text.prefix(limit))) + "… (\(text.utf8.count) bytes)"
    }

    private static func metrics(from layers: ConfigLayers) throws(ConfigError) -> Settings.Metrics {
        let key = SettingKeys.metricsTextfile
        guard let textfile = nonEmpty(try layers.text(key)) else { return Settings.Metrics(textfile: nil) }
        // node_exporter's textfile collector reads only *.prom files.
        let name = textfile.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
        guard name.hasSuffix(".prom"), name.count > ".prom".count else {
            throw layers.invalid(key.name, expected: "a file path ending in .prom", got: String(reflecting: textfile))
        }
        return Settings.Metrics(textfile: textfile)
    }

    /// Whether `url` is http(s) with a host, and without parts that would be lost or
    /// leaked when `/chat/completions` is appended and the URL logged.
    private static func isPlainHTTPURL(_ url: String) -> Bool {
        let lowercased = url.lowercased()
        guard let scheme = ["http://", "https://"].first(where: { lowercased.hasPrefix($0) }) else { return false }
        let authority = url.dropFirst(scheme.count).prefix { $0 != "/" }
        return !authority.isEmpty && !authority.hasPrefix(":") && !authority.contains("@")
            && !url.contains { $0.isWhitespace || $0 == "?" || $0 == "#" }
    }

    /// An upstream's base URL: http:// or https://, a host, no user info, query or fragment.
    private static func checkUpstreamURL(_ url: String, key: String, _ layers: ConfigLayers) throws(ConfigError) {
        guard isPlainHTTPURL(url) else {
            throw layers.invalid(
                key, expected: "an http:// or https:// URL with a host and no user info, query or fragment",
                got: String(reflecting: redactedURL(url, hidingUser: true)))
        }
    }

    private static func nonZero(_ value: Int) -> Int? {
        value == 0 ? nil : value
    }

    private static func nonEmpty(_ text: String) -> String? {
        text.isEmpty ? nil : text
    }
}
