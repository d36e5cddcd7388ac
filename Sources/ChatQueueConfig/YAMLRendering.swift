// Writing settings as YAML: the annotated template (config/chatqueue.yaml) and the
// effective configuration shown by `chatqueue check-config`. Both are nested mappings
// written from dotted keys, in the order of `SettingKeys.all`.

/// A value as written in a YAML document.
enum YAMLValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case number(Double)
    case bool(Bool)
    case list([String])

    /// The value in YAML syntax; strings are always double-quoted so that
    /// values like `yes`, `010` or `a: b` stay strings.
    var rendered: String {
        switch self {
        case .string(let string): return Self.quoted(string)
        case .int(let int): return String(int)
        case .number(let number): return Self.number(number)
        case .bool(let bool): return bool ? "true" : "false"
        case .list(let items): return "[" + items.map(Self.quoted).joined(separator: ", ") + "]"
        }
    }

    private static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 {
            return String(Int(value))
        }
        let text = String(value)
        // YAML 1.1 floats need a dot before any exponent ("1e-05" would be a string).
        if !text.contains("."), let exponent = text.firstIndex(of: "e") {
            return String(text[..<exponent]) + ".0" + String(text[exponent...])
        }
        return text
    }

    private static func quoted(_ string: String) -> String {
        var result = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

/// One line of a YAML document written from dotted keys.
struct YAMLLine {
    /// The dotted key.
    var name: String
    /// The value; nil writes the key as a comment with `note`.
    var value: YAMLValue?
    /// Comment lines above the key (the key's documentation); empty for none.
    var comment: String = ""
    /// Why the key has no value (written after it, in a comment).
    var note: String = ""
}

enum YAMLDocument {
    /// Lines are wrapped to this width, comments included.
    static let width = 100

    /// Writes `lines` as nested mappings: `a.b: 1` becomes `a:` / `  b: 1`.
    /// Keys sharing a prefix must be adjacent, as in `SettingKeys.all`.
    static func render(header: String, lines: [YAMLLine]) -> String {
        var output = comment(header, indent: "")
        var openPath: [Substring] = []
        for line in lines {
            let path = line.name.split(separator: ".")
            let parents = path.dropLast()
            var shared = 0
            while shared < min(parents.count, openPath.count), parents[shared] == openPath[shared] { shared += 1 }
            for depth in shared..<parents.count {
                // A blank line before each top-level section.
                if depth == 0 { output += "\n" }
                output += String(repeating: "  ", count: depth) + parents[depth] + ":\n"
            }
            openPath = Array(parents)
            let indent = String(repeating: "  ", count: parents.count)
            output += comment(line.comment, indent: indent)
            if let value = line.value {
                output += indent + path[path.count - 1] + ": " + value.rendered + "\n"
            } else {
                output += indent + "# " + path[path.count - 1] + ": " + line.note + "\n"
            }
        }
        return output
    }

    /// `text` as `# ` comment lines wrapped to ``width``; blank lines in `text` are kept.
    private static func comment(_ text: String, indent: String) -> String {
        guard !text.isEmpty else { return "" }
        var output = ""
        let room = width - indent.count - 2
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = ""
            for word in paragraph.split(separator: " ") {
                if !line.isEmpty, line.count + 1 + word.count > room {
                    output += indent + "# " + line + "\n"
                    line = ""
                }
                line += (line.isEmpty ? "" : " ") + word
            }
            output += indent + (line.isEmpty ? "#" : "# " + line) + "\n"
        }
        return output
    }
}

enum SettingsTemplate {
    /// The annotated configuration file: every key at its default, documented.
    /// `config/chatqueue.yaml` is exactly this text (checked by a test).
    static func annotatedYAML() -> String {
        let lines = SettingKeys.all.map { key in
            YAMLLine(name: key.name, value: key.defaultYAML, comment: key.summary)
        }
        return YAMLDocument.render(header: header, lines: lines)
    }

    static let header = """
        chatqueue configuration: every key, set to its default.

        Layers, lowest priority first: this file (--config FILE), then environment variables \
        CHATQUEUE_<KEY> (the key upper-cased, dots as underscores, e.g. \
        CHATQUEUE_WORKER_CONCURRENCY=64), then command-line overrides. Durations are seconds \
        (fractions allowed), > 0 and at most 31536000 (a year). Integers must lie in the range \
        their comment gives. Unknown keys are an error, so typos don't pass silently.

        Secrets: rather than writing them here, prefer broker.password_file and \
        upstream.api_key_file, or systemd's LoadCredential= with credentials named \
        broker.password and upstream.api_key.

        Generated from Sources/ChatQueueConfig/SettingKeys.swift.
        """
}

extension Settings {
    /// The effective configuration as YAML with every key, secrets shown as
    /// `<redacted>` (used by `chatqueue check-config`).
    ///
    /// Broker URLs are shown with `***` as password. `*_file` keys appear as comments:
    /// their content is already in the secret they name.
    public func redactedYAML() -> String {
        let lines = effectiveValues().map { key, value in
            YAMLLine(name: key.name, value: value, note: value == nil ? Self.resolvedNote(for: key) : "")
        }
        return YAMLDocument.render(
            header: "chatqueue effective configuration (secrets redacted).",
            lines: lines
        ) + "\n# Routing table (first match wins; a model matching none is answered model_not_found):\n"
            + routing.summaryLines.map { "#   " + $0 + "\n" }.joined()
    }

    /// Whether `upstreams.names` was set (anything but the one upstream of `upstream.*`, everywhere).
    var hasNamedUpstreams: Bool {
        upstreams != [upstream] || routing != .single(upstream: upstream.name)
    }

    /// Each named upstream's keys, for check-config (none in the one-upstream case).
    private func namedUpstreamValues() -> [(key: any DocumentedKey, value: YAMLValue?)] {
        guard hasNamedUpstreams else { return [] }
        return upstreams.flatMap { upstream -> [(key: any DocumentedKey, value: YAMLValue?)] in
            func key(_ field: String) -> TextKey {
                TextKey(name: SettingKeys.upstreamKey(upstream.name, field), defaultValue: "", summary: "")
            }
            // Header values may hold credentials: names only.
            let headers = upstream.headers.map { $0.prefix { $0 != ":" } + ": " + Secret.redactedText }
            return [
                (key("url"), .string(upstream.url)),
                (key("api_key"), .string(upstream.apiKey == nil ? "" : Secret.redactedText)),
                (key("ca_file"), .string(upstream.caFile ?? "")),
                (key("connect_timeout"), .number(upstream.connectTimeout)),
                (key("first_byte_timeout"), .number(upstream.firstByteTimeout)),
                (key("idle_timeout"), .number(upstream.idleTimeout)),
                (key("max_concurrency"), .int(upstream.maxConcurrency ?? 0)),
                (key("adaptive_concurrency"), .bool(upstream.adaptiveConcurrency)),
                (key("rpm"), .int(upstream.requestsPerMinute ?? 0)),
                (key("tpm"), .int(upstream.tokensPerMinute ?? 0)),
                (key("on_account_error"), .string(upstream.onAccountError.rawValue)),
                (key("headers"), .list(headers)),
            ]
        }
    }

    /// Every key with its effective value, in `SettingKeys.all` order; nil for keys
    /// Settings doesn't keep (the `*_file` keys, resolved into their secrets).
    func effectiveValues() -> [(key: any DocumentedKey, value: YAMLValue?)] {
        func secret(_ secret: Secret?) -> YAMLValue { .string(secret == nil ? "" : Secret.redactedText) }
        let named = hasNamedUpstreams
        let urls = broker.endpoints.map(\.redacted)
        let values: [String: YAMLValue] = [
            SettingKeys.brokerURL.name: urls.count == 1 ? .string(urls[0]) : .list(urls),
            // Every endpoint has a password (guest by default); show that there is one.
            SettingKeys.brokerPassword.name: .string(Secret.redactedText),
            SettingKeys.brokerHeartbeat.name: .int(broker.heartbeat),
            SettingKeys.brokerTLSCAFile.name: .string(broker.tls.caFile ?? ""),
            SettingKeys.brokerTLSCertFile.name: .string(broker.tls.certFile ?? ""),
            SettingKeys.brokerTLSKeyFile.name: .string(broker.tls.keyFile ?? ""),
            SettingKeys.brokerTLSVerify.name: .bool(broker.tls.verify),
            SettingKeys.queueName.name: .string(queue.name),
            SettingKeys.queueDeclare.name: .bool(queue.declare),
            SettingKeys.queueType.name: .string(queue.type.rawValue),
            SettingKeys.queueDeadLetterExchange.name: .string(queue.deadLetterExchange),
            SettingKeys.queueDeadLetterQueue.name: .string(queue.deadLetterQueue),
            SettingKeys.queueCancelExchange.name: .string(queue.cancelExchange ?? ""),
            SettingKeys.repliesDefaultQueue.name: .string(replies.defaultQueue ?? ""),
            SettingKeys.repliesAllowedQueues.name: .list(replies.allowedQueues.map(\.description)),
            SettingKeys.repliesMaxBacklogBytes.name: .int(replies.maxBacklogBytes),
            SettingKeys.workerConcurrency.name: .int(worker.concurrency),
            SettingKeys.workerMaxRequestBytes.name: .int(worker.maxRequestBytes),
            SettingKeys.workerRequestTimeout.name: .number(worker.requestTimeout),
            SettingKeys.workerMaxDeliveries.name: .int(worker.maxDeliveries),
            SettingKeys.workerShutdownGrace.name: .number(worker.shutdownGrace),
            SettingKeys.retryMaxAttempts.name: .int(retry.maxAttempts),
            SettingKeys.retryBaseDelay.name: .number(retry.baseDelay),
            SettingKeys.retryMaxDelay.name: .number(retry.maxDelay),
            SettingKeys.retryMaxRetryAfter.name: .number(retry.maxRetryAfter),
            SettingKeys.upstreamURL.name: .string(upstream.url),
            SettingKeys.upstreamAPIKey.name: secret(upstream.apiKey),
            SettingKeys.upstreamCAFile.name: .string(upstream.caFile ?? ""),
            SettingKeys.upstreamProxy.name: .string(upstream.proxy.map(Upstream.redactedProxy) ?? ""),
            SettingKeys.upstreamModels.name: .list((upstream.models ?? []).sorted()),
            SettingKeys.upstreamConnectTimeout.name: .number(upstream.connectTimeout),
            SettingKeys.upstreamFirstByteTimeout.name: .number(upstream.firstByteTimeout),
            SettingKeys.upstreamIdleTimeout.name: .number(upstream.idleTimeout),
            SettingKeys.upstreamMaxResponseBytes.name: .int(upstream.maxResponseBytes),
            SettingKeys.upstreamMaxConcurrency.name: .int(upstream.maxConcurrency ?? 0),
            SettingKeys.upstreamAdaptiveConcurrency.name: .bool(upstream.adaptiveConcurrency),
            SettingKeys.upstreamRequestsPerMinute.name: .int(upstream.requestsPerMinute ?? 0),
            SettingKeys.upstreamTokensPerMinute.name: .int(upstream.tokensPerMinute ?? 0),
            SettingKeys.upstreamOnAccountError.name: .string(upstream.onAccountError.rawValue),
            SettingKeys.upstreamBreakerFailures.name: .int(upstream.breakerFailures),
            SettingKeys.upstreamBreakerCooldown.name: .number(upstream.breakerCooldown),
            SettingKeys.upstreamBreakerMaxCooldown.name: .number(upstream.breakerMaxCooldown),
            SettingKeys.upstreamHoldProbeInterval.name: .number(upstream.holdProbeInterval),
            SettingKeys.logLevel.name: .string(log.level.rawValue),
            SettingKeys.logFormat.name: .string(log.format.rawValue),
            SettingKeys.logRequestSummary.name: .string(log.requestSummary.rawValue),
            SettingKeys.tracingStartTraces.name: .bool(tracing.startTraces),
            SettingKeys.tracingOTLPEndpoint.name: .string(tracing.otlpEndpoint ?? ""),
            SettingKeys.tracingServiceName.name: .string(tracing.serviceName),
            SettingKeys.tracingMaxQueuedSpans.name: .int(tracing.maxQueuedSpans),
            SettingKeys.tracingMaxBatchSpans.name: .int(tracing.maxBatchSpans),
            SettingKeys.tracingExportInterval.name: .number(tracing.exportInterval),
            SettingKeys.tracingExportTimeout.name: .number(tracing.exportTimeout),
            SettingKeys.statusFile.name: .string(status.file ?? ""),
            SettingKeys.statusInterval.name: .number(status.interval),
            SettingKeys.cancelRememberSeconds.name: .number(cancel.rememberSeconds),
            SettingKeys.cancelRememberMax.name: .int(cancel.rememberMax),
            SettingKeys.metricsTextfile.name: .string(metrics.textfile ?? ""),
            SettingKeys.upstreamsNames.name: .list(named ? routing.upstreamNames : []),
            SettingKeys.routes.name: .list(named ? routing.routes.map(routing.entry) : []),
        ]
        return SettingKeys.all.flatMap { key -> [(key: any DocumentedKey, value: YAMLValue?)] in
            let line: (key: any DocumentedKey, value: YAMLValue?) = (key, values[key.name])
            return key.name == SettingKeys.upstreamsNames.name ? [line] + namedUpstreamValues() : [line]
        }
    }

    private static func resolvedNote(for key: any DocumentedKey) -> String {
        let secret = SettingKeys.all.lazy.compactMap { $0 as? SecretKey }.first { $0.fileKey.name == key.name }
        return secret.map { "read at load into \($0.name)" } ?? "not kept after loading"
    }
}
