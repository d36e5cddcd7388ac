import ChatQueueCore

/// Everything one benchmark run measured; written as JSON by `chatqueue bench
/// --json-out` and read back by `chatqueue bench-report`.
public struct RunResult: Sendable, Equatable {
    /// The run's name in reports (nonstream, nonstream-c32, slowstreams-5000, ...).
    public var label: String
    public var scenario: BenchScenario
    public var requests: Int
    public var concurrency: Int
    public var words: Int
    public var intervalMilliseconds: Int
    /// UTC, ISO 8601.
    public var startedAt: String

    public var sent: Int
    /// Requests with exactly one final chat.completion and every chunk in order.
    public var completed: Int
    /// Requests sent that did not complete: error replies, contract violations, missing finals.
    public var errors: Int
    public var errorReplies: Int
    public var missing: Int
    public var redeliveries: Int
    public var violations: [String: Int]

    /// First publish to last final reply.
    public var wallSeconds: Double
    /// Chunks received in order.
    public var chunks: Int
    /// Publish to final reply, in milliseconds.
    public var latency: Distribution?
    /// Chunk arrival at the generator minus the upstream's send stamp, in milliseconds.
    public var chunkDelay: Distribution?
    /// The latency scenario: through chatqueue against straight to the upstream.
    public var addedLatency: AddedLatency?

    /// worker, broker, upstream, generator: whichever could be sampled.
    public var processes: [ProcessUsage]
    /// CPU seconds the whole machine was busy during the run (all cores).
    public var machineBusySeconds: Double?
    public var loadAverageStart: String?
    public var loadAverageEnd: String?

    public init(
        label: String, scenario: BenchScenario, requests: Int, concurrency: Int, words: Int, intervalMilliseconds: Int,
        startedAt: String, sent: Int, completed: Int, errors: Int, errorReplies: Int, missing: Int, redeliveries: Int,
        violations: [String: Int], wallSeconds: Double, chunks: Int, latency: Distribution?, chunkDelay: Distribution?,
        processes: [ProcessUsage], machineBusySeconds: Double?, loadAverageStart: String?, loadAverageEnd: String?,
        addedLatency: AddedLatency? = nil
    ) {
        self.label = label
        self.scenario = scenario
        self.requests = requests
        self.concurrency = concurrency
        self.words = words
        self.intervalMilliseconds = intervalMilliseconds
        self.startedAt = startedAt
        self.sent = sent
        self.completed = completed
        self.errors = errors
        self.errorReplies = errorReplies
        self.missing = missing
        self.redeliveries = redeliveries
        self.violations = violations
        self.wallSeconds = wallSeconds
        self.chunks = chunks
        self.latency = latency
        self.chunkDelay = chunkDelay
        self.processes = processes
        self.machineBusySeconds = machineBusySeconds
        self.loadAverageStart = loadAverageStart
        self.loadAverageEnd = loadAverageEnd
        self.addedLatency = addedLatency
    }

    // MARK: - Derived figures

    public var requestsPerSecond: Double { wallSeconds > 0 ? Double(completed) / wallSeconds : 0 }
    public var chunksPerSecond: Double { wallSeconds > 0 ? Double(chunks) / wallSeconds : 0 }

    public func process(_ role: String) -> ProcessUsage? { processes.first { $0.role == role } }
    public var worker: ProcessUsage? { process("worker") }
    public var broker: ProcessUsage? { process("broker") }

    /// Worker CPU milliseconds per 1,000 completed requests (numerically: µs per request).
    public var workerCPUPerThousandRequests: Double? {
        guard let worker, completed > 0 else { return nil }
        return worker.cpuSeconds * 1000 / (Double(completed) / 1000)
    }

    /// Worker CPU milliseconds per 1,000 chunks (numerically: µs per chunk).
    public var workerCPUPerThousandChunks: Double? {
        guard let worker, chunks > 0 else { return nil }
        return worker.cpuSeconds * 1000 / (Double(chunks) / 1000)
    }

    public var workerToBrokerCPU: Double? {
        guard let worker, let broker, broker.cpuSeconds > 0 else { return nil }
        return worker.cpuSeconds / broker.cpuSeconds
    }

    /// Busy CPU seconds of processes not watched (other work on the machine during the run).
    public var otherCPUSeconds: Double? {
        guard let machineBusySeconds else { return nil }
        return max(0, machineBusySeconds - processes.reduce(0) { $0 + $1.cpuSeconds })
    }
}

// MARK: - JSON

extension RunResult {
    public var json: JSONValue {
        var object: JSONObject = [
            "label": .string(label),
            "scenario": .string(scenario.rawValue),
            "requests": .int(requests),
            "concurrency": .int(concurrency),
            "words": .int(words),
            "interval_ms": .int(intervalMilliseconds),
            "started_at": .string(startedAt),
            "sent": .int(sent),
            "completed": .int(completed),
            "errors": .int(errors),
            "error_replies": .int(errorReplies),
            "missing": .int(missing),
            "redeliveries": .int(redeliveries),
            "violations": .object(JSONObject(violations.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            "wall_seconds": .decimal(wallSeconds, digits: 3),
            "requests_per_second": .decimal(requestsPerSecond, digits: 1),
            "chunks": .int(chunks),
            "chunks_per_second": .decimal(chunksPerSecond, digits: 1),
            "latency_ms": latency?.json ?? .null,
            "chunk_delay_ms": chunkDelay?.json ?? .null,
            "processes": .array(processes.map(\.json)),
            "machine_busy_cpu_seconds": machineBusySeconds.map { .decimal($0, digits: 3) } ?? .null,
            "other_cpu_seconds": otherCPUSeconds.map { .decimal($0, digits: 3) } ?? .null,
            "load_average_start": loadAverageStart.map { .string($0) } ?? .null,
            "load_average_end": loadAverageEnd.map { .string($0) } ?? .null,
        ]
        if let addedLatency { object["added_latency"] = addedLatency.json }
        object["derived"] = .object([
            "worker_cpu_ms_per_1000_requests": workerCPUPerThousandRequests.map { .decimal($0, digits: 2) } ?? .null,
            "worker_cpu_ms_per_1000_chunks": workerCPUPerThousandChunks.map { .decimal($0, digits: 2) } ?? .null,
            "worker_cpu_over_broker_cpu": workerToBrokerCPU.map { .decimal($0, digits: 3) } ?? .null,
        ])
        return .object(object)
    }

    public init(json: JSONValue) throws(BenchError) {
        func field<T>(_ key: String, _ read: (JSONValue) -> T?) throws(BenchError) -> T {
            guard let value = json[key], let result = read(value) else {
                throw BenchError("run result: missing or invalid \"\(key)\"")
            }
            return result
        }
        func optional<T>(_ key: String, _ read: (JSONValue) throws(BenchError) -> T?) throws(BenchError) -> T? {
            guard let value = json[key], !value.isNull else { return nil }
            return try read(value)
        }
        guard let scenario = BenchScenario(rawValue: try field("scenario", \.stringValue)) else {
            throw BenchError("run result: unknown scenario")
        }
        var violations: [String: Int] = [:]
        for (key, value) in json["violations"]?.objectValue ?? [:] { violations[key] = value.integerValue ?? 0 }
        var processes: [ProcessUsage] = []
        for value in json["processes"]?.arrayValue ?? [] { processes.append(try ProcessUsage(json: value)) }
        self.init(
            label: try field("label", \.stringValue), scenario: scenario, requests: try field("requests", \.integerValue),
            concurrency: try field("concurrency", \.integerValue), words: try field("words", \.integerValue),
            intervalMilliseconds: try field("interval_ms", \.integerValue),
            startedAt: try field("started_at", \.stringValue), sent: try field("sent", \.integerValue),
            completed: try field("completed", \.integerValue), errors: try field("errors", \.integerValue),
            errorReplies: try field("error_replies", \.integerValue), missing: try field("missing", \.integerValue),
            redeliveries: try field("redeliveries", \.integerValue), violations: violations,
            wallSeconds: try field("wall_seconds", \.doubleValue), chunks: try field("chunks", \.integerValue),
            latency: try optional("latency_ms") { value throws(BenchError) in try Distribution(json: value) },
            chunkDelay: try optional("chunk_delay_ms") { value throws(BenchError) in try Distribution(json: value) },
            processes: processes, machineBusySeconds: try optional("machine_busy_cpu_seconds") { $0.doubleValue },
            loadAverageStart: try optional("load_average_start") { $0.stringValue },
            loadAverageEnd: try optional("load_average_end") { $0.stringValue },
            addedLatency: try optional("added_latency") { value throws(BenchError) in try AddedLatency(json: value) })
    }
}

extension Distribution {
    public var json: JSONValue {
        [
            "count": .int(count), "p50": .decimal(p50, digits: 3), "p99": .decimal(p99, digits: 3),
            "max": .decimal(max, digits: 3),
        ]
    }

    init(json: JSONValue) throws(BenchError) {
        guard let count = json["count"]?.integerValue, let p50 = json["p50"]?.doubleValue,
            let p99 = json["p99"]?.doubleValue, let max = json["max"]?.doubleValue
        else { throw BenchError("distribution: expected count, p50, p99, max") }
        self.init(count: count, p50: p50, p99: p99, max: max)
    }
}

extension ProcessUsage {
    public var json: JSONValue {
        [
            "role": .string(role), "pid": .int(Int(pid)), "cpu_seconds": .decimal(cpuSeconds, digits: 3),
            "system_cpu_seconds": systemCPUSeconds.map { .decimal($0, digits: 3) } ?? .null,
            "peak_rss_kb": peakRSSKilobytes.map { .int($0) } ?? .null,
            "rss_kb": rssKilobytes.map { .int($0) } ?? .null,
            "rss_anon_kb": anonymousRSSKilobytes.map { .int($0) } ?? .null,
        ]
    }

    init(json: JSONValue) throws(BenchError) {
        guard let role = json["role"]?.stringValue, let pid = json["pid"]?.integerValue,
            let cpu = json["cpu_seconds"]?.doubleValue
        else { throw BenchError("process usage: expected role, pid, cpu_seconds") }
        self.init(
            role: role, pid: Int32(truncatingIfNeeded: pid), cpuSeconds: cpu,
            systemCPUSeconds: json["system_cpu_seconds"]?.doubleValue,
            peakRSSKilobytes: json["peak_rss_kb"]?.integerValue, rssKilobytes: json["rss_kb"]?.integerValue,
            anonymousRSSKilobytes: json["rss_anon_kb"]?.integerValue)
    }
}

/// A benchmark failure with a message for people.
public struct BenchError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension JSONValue {
    static func int(_ value: Int) -> JSONValue { .number(String(value)) }

    /// A number with at most `digits` decimals (trailing zeros trimmed); null
    /// for infinities and NaN, which JSON cannot hold.
    static func decimal(_ value: Double, digits: Int) -> JSONValue {
        guard value.isFinite else { return .null }
        return .number(formatDecimal(value, digits: digits, trimZeros: true))
    }
}

/// `value` rounded to `digits` decimals without Foundation's locale-dependent
/// formatting, e.g. (3.14159, 2) -> "3.14"; with `trimZeros` "2.50" -> "2.5", "2.00" -> "2".
func formatDecimal(_ value: Double, digits: Int, trimZeros: Bool = false) -> String {
    guard value.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9.0e18 else { return String(value) }
    let units = Int64(scaled)
    let whole = units / Int64(scale)
    let sign = value < 0 && units != 0 ? "-" : ""
    guard digits > 0 else { return "\(sign)\(whole)" }
    var fraction = String(units % Int64(scale))
    fraction = String(repeating: "0", count: max(0, digits - fraction.count)) + fraction
    if trimZeros {
        while fraction.hasSuffix("0") { fraction.removeLast() }
    }
    return fraction.isEmpty ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
}
