import ChatQueueCore
import Foundation

/// The figures chatqueue aims for (docs/performance.md), each checked against
/// the run with the matching label. Correctness (every request completed, no
/// errors) is checked for every run; the rest are performance targets.
public struct BenchTarget: Sendable {
    public enum Bound: Sendable {
        case atMost(Double)
        case atLeast(Double)
        /// Reported without a target (e.g. the 5,000-stream run).
        case reportOnly
    }

    /// The run label this target applies to.
    public var label: String
    public var figure: String
    public var unit: String
    public var bound: Bound
    /// The measured value, given the run and every run of the report (for ratios between runs).
    public var measure: @Sendable (RunResult, [RunResult]) -> Double?

    public init(
        label: String, figure: String, unit: String, bound: Bound,
        measure: @escaping @Sendable (RunResult, [RunResult]) -> Double?
    ) {
        self.label = label
        self.figure = figure
        self.unit = unit
        self.bound = bound
        self.measure = measure
    }

    public static let standard: [BenchTarget] = [
        BenchTarget(label: "nonstream", figure: "worker CPU / broker CPU", unit: "", bound: .atMost(0.25)) { run, _ in
            run.workerToBrokerCPU
        },
        BenchTarget(label: "nonstream", figure: "worker CPU per request", unit: "µs", bound: .atMost(150)) { run, _ in
            run.workerCPUPerThousandRequests
        },
        BenchTarget(label: "nonstream", figure: "requests/s vs echo ceiling", unit: "%", bound: .atLeast(90)) {
            run, all in
            guard let ceiling = all.first(where: { $0.scenario == .ceiling }), ceiling.requestsPerSecond > 0 else {
                return nil
            }
            return run.requestsPerSecond / ceiling.requestsPerSecond * 100
        },
        BenchTarget(label: "stream", figure: "worker CPU / broker CPU", unit: "", bound: .atMost(0.25)) { run, _ in
            run.workerToBrokerCPU
        },
        BenchTarget(label: "stream", figure: "worker CPU per forwarded chunk", unit: "µs", bound: .atMost(20)) {
            run, _ in run.workerCPUPerThousandChunks
        },
        BenchTarget(label: "slowstreams", figure: "chunk forwarding delay p99", unit: "ms", bound: .atMost(50)) {
            run, _ in run.chunkDelay?.p99
        },
        BenchTarget(label: "slowstreams", figure: "worker peak RSS", unit: "MB", bound: .atMost(96)) { run, _ in
            run.worker?.peakRSSKilobytes.map(megabytes)
        },
        BenchTarget(label: "slowstreams-5000", figure: "chunk forwarding delay p99", unit: "ms", bound: .reportOnly) {
            run, _ in run.chunkDelay?.p99
        },
        BenchTarget(label: "slowstreams-5000", figure: "worker peak RSS", unit: "MB", bound: .reportOnly) { run, _ in
            run.worker?.peakRSSKilobytes.map(megabytes)
        },
        BenchTarget(label: "nonstream-c32", figure: "worker RSS after the run", unit: "MB", bound: .atMost(32)) {
            run, _ in run.worker?.rssKilobytes.map(megabytes)
        },
    ] + ["latency-c1", "latency-c16"].flatMap(latencyTargets)

    /// What chatqueue may add to a stream (docs/performance.md, "Latency
    /// added"): to the first chunk, the broker round trip (the echo's,
    /// measured in the same run) plus a small worker share; to the gaps
    /// between chunks, next to nothing at the median and a bounded tail.
    static func latencyTargets(_ label: String) -> [BenchTarget] {
        [
            BenchTarget(label: label, figure: "time to first chunk added, p50", unit: "µs", bound: .reportOnly) {
                run, _ in run.addedLatency?.addedFirstChunk?.p50
            },
            BenchTarget(
                label: label, figure: "time to first chunk added beyond the echo round trip, p50", unit: "µs",
                bound: .atMost(500)
            ) { run, _ in run.addedLatency?.workerShareOfFirstChunk },
            BenchTarget(label: label, figure: "inter-chunk gap added, p50", unit: "µs", bound: .atMost(100)) {
                run, _ in run.addedLatency?.addedGap?.p50
            },
            BenchTarget(label: label, figure: "inter-chunk gap added, p99", unit: "µs", bound: .atMost(5000)) {
                run, _ in run.addedLatency?.addedGap?.p99
            },
        ]
    }
}

func megabytes(_ kilobytes: Int) -> Double { Double(kilobytes) / 1024 }

/// One target (or correctness rule) evaluated against one run.
public struct BenchCheck: Sendable, Equatable {
    public enum Verdict: String, Sendable {
        case pass, fail
        /// The figure could not be measured (e.g. the ceiling run is missing).
        case unknown
        case reportOnly = "report"
    }

    public var label: String
    public var figure: String
    public var measured: Double?
    public var unit: String
    /// "≤ 0.25", "≥ 90 %", "= 0", "—".
    public var target: String
    public var verdict: Verdict
    /// Correctness rules fail the run; performance targets are reported.
    public var isCorrectness: Bool
}

/// Machine facts printed with every report.
public struct MachineInfo: Sendable, Equatable {
    public var processors: Int
    public var cpuModel: String
    public var memoryKilobytes: Int
    public var kernel: String
    public var rabbitMQVersion: String?

    public init(processors: Int, cpuModel: String, memoryKilobytes: Int, kernel: String, rabbitMQVersion: String?) {
        self.processors = processors
        self.cpuModel = cpuModel
        self.memoryKilobytes = memoryKilobytes
        self.kernel = kernel
        self.rabbitMQVersion = rabbitMQVersion
    }

    /// This machine, from /proc.
    public static func current(rabbitMQVersion: String?) -> MachineInfo {
        let cpuinfo = ProcFS.read("/proc/cpuinfo") ?? ""
        let processors = cpuinfo.split(separator: "\n").filter { $0.hasPrefix("processor") }.count
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let memory = ProcFS.read("/proc/meminfo").flatMap { ProcFS.statusKilobytes($0, field: "MemTotal") } ?? 0
        let kernel = ProcFS.read("/proc/sys/kernel/osrelease")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return MachineInfo(
            processors: processors, cpuModel: model, memoryKilobytes: memory, kernel: kernel,
            rabbitMQVersion: rabbitMQVersion)
    }

    public var json: JSONValue {
        [
            "processors": .int(processors), "cpu_model": .string(cpuModel), "memory_kb": .int(memoryKilobytes),
            "kernel": .string(kernel), "rabbitmq_version": rabbitMQVersion.map { .string($0) } ?? .null,
        ]
    }

    public var markdown: String {
        let gigabytes = formatDecimal(Double(memoryKilobytes) / 1024 / 1024, digits: 1)
        return
            "\(processors) CPUs (\(cpuModel)), \(gigabytes) GB RAM, Linux \(kernel), RabbitMQ \(rabbitMQVersion ?? "unknown")"
    }
}

/// Runs, their checks and their rendering as Markdown and JSON.
public struct BenchReport: Sendable {
    public var runs: [RunResult]
    public var machine: MachineInfo?
    public var targets: [BenchTarget]

    /// Labels in the order reports list them; other labels follow, sorted.
    static let preferredOrder = [
        "ceiling", "nonstream", "nonstream-c32", "stream", "slowstreams", "slowstreams-5000", "latency-c1",
        "latency-c16",
    ]

    public init(runs: [RunResult], machine: MachineInfo? = nil, targets: [BenchTarget] = BenchTarget.standard) {
        self.runs = runs.sorted { lhs, rhs in
            let l = Self.preferredOrder.firstIndex(of: lhs.label) ?? Self.preferredOrder.count
            let r = Self.preferredOrder.firstIndex(of: rhs.label) ?? Self.preferredOrder.count
            return l != r ? l < r : lhs.label < rhs.label
        }
        self.machine = machine
        self.targets = targets
    }

    public var checks: [BenchCheck] {
        var checks: [BenchCheck] = []
        for run in runs {
            checks.append(
                BenchCheck(
                    label: run.label, figure: "completed / sent", measured: Double(run.completed), unit: "count",
                    target: "= \(run.requests)",
                    verdict: run.completed == run.requests && run.sent == run.requests ? .pass : .fail,
                    isCorrectness: true))
            checks.append(
                BenchCheck(
                    label: run.label, figure: "errors", measured: Double(run.errors), unit: "count", target: "= 0",
                    verdict: run.errors == 0 ? .pass : .fail, isCorrectness: true))
            for target in targets where target.label == run.label {
                let measured = target.measure(run, runs)
                let verdict: BenchCheck.Verdict
                let text: String
                switch target.bound {
                case .atMost(let limit):
                    text = "≤ \(Self.number(limit))\(Self.suffix(target.unit))"
                    verdict = measured.map { $0 <= limit ? .pass : .fail } ?? .unknown
                case .atLeast(let limit):
                    text = "≥ \(Self.number(limit))\(Self.suffix(target.unit))"
                    verdict = measured.map { $0 >= limit ? .pass : .fail } ?? .unknown
                case .reportOnly:
                    text = "—"
                    verdict = .reportOnly
                }
                checks.append(
                    BenchCheck(
                        label: run.label, figure: target.figure, measured: measured, unit: target.unit, target: text,
                        verdict: verdict, isCorrectness: false))
            }
        }
        return checks
    }

    /// Whether every run completed every request without errors (performance targets aside).
    public var isCorrect: Bool { !checks.contains { $0.isCorrectness && $0.verdict != .pass } }

    // MARK: - Markdown

    public func markdown(title: String? = nil, notes: [String] = []) -> String {
        var lines: [String] = []
        if let title { lines += ["## \(title)", ""] }
        if let machine { lines += ["Machine: \(machine.markdown).", ""] }
        for note in notes { lines += [note, ""] }
        lines += [
            "| run | figure | measured | target | result |",
            "|---|---|---|---|---|",
        ]
        for check in checks {
            let measured = check.measured.map { Self.format($0, unit: check.unit) } ?? "n/a"
            let result: String
            switch check.verdict {
            case .pass: result = "pass"
            case .fail: result = "**FAIL**"
            case .unknown: result = "n/a"
            case .reportOnly: result = "(report)"
            }
            lines.append("| \(check.label) | \(check.figure) | \(measured) | \(check.target) | \(result) |")
        }
        lines += ["", figuresTable()]
        if let latency = latencyTable() { lines += ["", latency] }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every figure of every run, one column per run.
    func figuresTable() -> String {
        typealias Row = (String, (RunResult) -> String)
        let rows: [Row] = [
            ("scenario", { $0.scenario.rawValue }),
            ("requests × chunks, concurrency", { "\($0.requests) × \($0.scenario.isStream ? $0.words + 2 : 0), \($0.concurrency)" }),
            ("completed / sent", { "\($0.completed) / \($0.sent)" }),
            ("errors (error replies, missing, violations)", {
                "\($0.errors) (\($0.errorReplies), \($0.missing), \($0.violations.values.reduce(0, +)))"
            }),
            ("wall time (s)", { Self.number($0.wallSeconds) }),
            ("requests/s", { Self.number($0.requestsPerSecond) }),
            ("chunks/s", { $0.chunks > 0 ? Self.number($0.chunksPerSecond) : "—" }),
            ("latency p50 / p99 / max (ms)", { Self.triple($0.latency) }),
            ("chunk forwarding delay p50 / p99 / max (ms)", { Self.triple($0.chunkDelay) }),
            ("worker CPU (s)", { Self.cpu($0.worker) }),
            ("of which kernel (s)", { $0.worker?.systemCPUSeconds.map { Self.number($0) } ?? "n/a" }),
            ("broker CPU (s)", { Self.cpu($0.broker) }),
            ("upstream CPU (s)", { Self.cpu($0.process("upstream")) }),
            ("generator CPU (s)", { Self.cpu($0.process("generator")) }),
            ("other processes' CPU (s)", { $0.otherCPUSeconds.map { Self.number($0) } ?? "n/a" }),
            ("worker CPU / broker CPU", { $0.workerToBrokerCPU.map { Self.number($0) } ?? "n/a" }),
            ("worker CPU per 1,000 requests (ms)", { $0.workerCPUPerThousandRequests.map { Self.number($0) } ?? "n/a" }),
            ("worker CPU per 1,000 chunks (ms)", { $0.workerCPUPerThousandChunks.map { Self.number($0) } ?? "—" }),
            ("worker peak RSS (MB)", { $0.worker?.peakRSSKilobytes.map { Self.number(megabytes($0)) } ?? "n/a" }),
            ("worker RSS after the run (MB)", { $0.worker?.rssKilobytes.map { Self.number(megabytes($0)) } ?? "n/a" }),
            ("of which anonymous, not shared libraries (MB)", {
                $0.worker?.anonymousRSSKilobytes.map { Self.number(megabytes($0)) } ?? "n/a"
            }),
            ("load average at start → end", { "\($0.loadAverageStart ?? "?") → \($0.loadAverageEnd ?? "?")" }),
        ]
        var lines = [
            "| figure | " + runs.map(\.label).joined(separator: " | ") + " |",
            "|---|" + String(repeating: "---|", count: runs.count),
        ]
        for (name, value) in rows {
            lines.append("| \(name) | " + runs.map(value).joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// The latency runs' figures: each path's time to first chunk and
    /// inter-chunk gap, what chatqueue adds, and the echo's round trip; nil
    /// when no run measured them.
    func latencyTable() -> String? {
        let measured = runs.compactMap { run in run.addedLatency.map { (run, $0) } }
        guard !measured.isEmpty else { return nil }
        var lines = [
            "Latency added (µs; p50 / p99 / max per row; added = through chatqueue minus direct, percentile by percentile):",
            "",
            "| run | figure | p50 | p99 | max |",
            "|---|---|---:|---:|---:|",
        ]
        func row(_ label: String, _ figure: String, _ values: (Double, Double, Double)?) {
            let cells = values.map { [$0.0, $0.1, $0.2].map(Self.microseconds) } ?? ["—", "—", "—"]
            lines.append("| \(label) | \(figure) | " + cells.joined(separator: " | ") + " |")
        }
        func values(_ distribution: Distribution?) -> (Double, Double, Double)? {
            distribution.map { ($0.p50, $0.p99, $0.max) }
        }
        func values(_ difference: LatencyDifference?) -> (Double, Double, Double)? {
            difference.map { ($0.p50, $0.p99, $0.max) }
        }
        for (run, added) in measured {
            let label = "\(run.label) (concurrency \(run.concurrency))"
            row(label, "time to first chunk, direct", values(added.direct.firstChunk))
            row(label, "time to first chunk, through chatqueue", values(added.chatqueue.firstChunk))
            row(label, "**time to first chunk, added**", values(added.addedFirstChunk))
            row(label, "inter-chunk gap, direct (pacing \(added.intervalMilliseconds * 1000))", values(added.direct.gap))
            row(label, "inter-chunk gap, through chatqueue", values(added.chatqueue.gap))
            row(label, "**inter-chunk gap, added**", values(added.addedGap))
            row(label, "echo broker round trip", values(added.echoRoundTrip))
        }
        return lines.joined(separator: "\n")
    }

    /// Whole microseconds, signed: "1234", "-56".
    static func microseconds(_ value: Double) -> String { formatDecimal(value, digits: 0) }

    static func triple(_ distribution: Distribution?) -> String {
        guard let distribution else { return "—" }
        return "\(number(distribution.p50)) / \(number(distribution.p99)) / \(number(distribution.max))"
    }

    static func cpu(_ usage: ProcessUsage?) -> String {
        usage.map { number($0.cpuSeconds) } ?? "n/a"
    }

    /// A measured value with its unit; counts as integers.
    static func format(_ value: Double, unit: String) -> String {
        unit == "count" ? formatDecimal(value, digits: 0) : number(value) + suffix(unit)
    }

    static func suffix(_ unit: String) -> String {
        switch unit {
        case "", "count": return ""
        case "%": return " %"
        default: return " " + unit
        }
    }

    /// Three significant digits or so: 0.123, 12.3, 1234.
    static func number(_ value: Double) -> String {
        let magnitude = abs(value)
        let digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3
        return formatDecimal(value, digits: digits, trimZeros: false)
    }

    // MARK: - JSON

    public var json: JSONValue {
        let checks = checks.map { check -> JSONValue in
            [
                "run": .string(check.label), "figure": .string(check.figure),
                "measured": check.measured.map { .decimal($0, digits: 3) } ?? .null, "unit": .string(check.unit),
                "target": .string(check.target), "result": .string(check.verdict.rawValue),
                "correctness": .bool(check.isCorrectness),
            ]
        }
        return [
            "machine": machine?.json ?? .null,
            "correct": .bool(isCorrect),
            "checks": .array(checks),
            "runs": .array(runs.map(\.json)),
        ]
    }
}
