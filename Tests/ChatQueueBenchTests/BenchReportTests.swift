import ChatQueueCore
import Testing

@testable import ChatQueueBench

/// Report rendering and the targets of docs/performance.md.
@Suite("Benchmark reports")
struct BenchReportTests {
    static func run(
        _ label: String, scenario: BenchScenario, requests: Int = 1000, completed: Int? = nil, wall: Double = 2,
        chunks: Int = 0, workerCPU: Double = 0.1, brokerCPU: Double = 1, peakKB: Int = 20_000, rssKB: Int = 16_000,
        delay: Distribution? = nil
    ) -> RunResult {
        let completed = completed ?? requests
        return RunResult(
            label: label, scenario: scenario, requests: requests, concurrency: 64, words: 48, intervalMilliseconds: 0,
            startedAt: "2025-01-01T00:00:00Z", sent: requests, completed: completed, errors: requests - completed,
            errorReplies: 0, missing: requests - completed, redeliveries: 0, violations: [:], wallSeconds: wall,
            chunks: chunks, latency: Distribution(count: completed, p50: 1.5, p99: 9.25, max: 20),
            chunkDelay: delay,
            processes: [
                ProcessUsage(
                    role: "worker", pid: 10, cpuSeconds: workerCPU, systemCPUSeconds: workerCPU / 2,
                    peakRSSKilobytes: peakKB, rssKilobytes: rssKB,
                    anonymousRSSKilobytes: rssKB / 4),
                ProcessUsage(role: "broker", pid: 11, cpuSeconds: brokerCPU),
                ProcessUsage(role: "generator", pid: 12, cpuSeconds: 0.2),
            ],
            machineBusySeconds: 3, loadAverageStart: "1.00 0.50 0.25", loadAverageEnd: "2.00 1.00 0.50")
    }

    @Test("derived figures: CPU per 1,000 requests and chunks, worker over broker CPU, other CPU")
    func derived() throws {
        let result = Self.run("stream", scenario: .stream, requests: 2000, chunks: 100_000, workerCPU: 1.5, brokerCPU: 6)
        #expect(result.requestsPerSecond == 1000)
        #expect(result.chunksPerSecond == 50_000)
        #expect(try #require(result.workerCPUPerThousandRequests) == 750)
        #expect(try #require(result.workerCPUPerThousandChunks) == 15)
        #expect(result.workerToBrokerCPU == 0.25)
        #expect(try #require(result.otherCPUSeconds) == 0)  // 1.5 + 6 + 0.2 > 3 busy: clamped
    }

    @Test("a run survives the JSON round trip")
    func roundTrip() throws {
        var original = Self.run(
            "slowstreams", scenario: .slowstreams, chunks: 50_000,
            delay: Distribution(count: 50_000, p50: 1.25, p99: 12.5, max: 80))
        original.violations = ["out_of_order": 2]
        let text = original.json.serializedString()
        let decoded = try RunResult(json: try JSONValue(parsing: text))
        #expect(decoded == original)
        #expect(original.json["derived"]?["worker_cpu_over_broker_cpu"]?.doubleValue == 0.1)
    }

    @Test("targets pass and fail per figure; the ceiling ratio needs the ceiling run")
    func checks() throws {
        let ceiling = Self.run("ceiling", scenario: .ceiling, requests: 20_000, wall: 4)  // 5,000/s
        let nonstream = Self.run("nonstream", scenario: .nonstream, requests: 20_000, wall: 4.2, workerCPU: 2, brokerCPU: 10)
        let slow = Self.run(
            "slowstreams", scenario: .slowstreams, chunks: 50_000, peakKB: 120 * 1024,
            delay: Distribution(count: 50_000, p50: 2, p99: 30, max: 90))
        let report = BenchReport(runs: [slow, nonstream, ceiling])
        #expect(report.runs.map(\.label) == ["ceiling", "nonstream", "slowstreams"])
        let checks = report.checks
        func verdict(_ label: String, _ figure: String) -> BenchCheck.Verdict? {
            checks.first { $0.label == label && $0.figure == figure }?.verdict
        }
        #expect(verdict("nonstream", "worker CPU / broker CPU") == .pass)  // 0.2
        #expect(verdict("nonstream", "worker CPU per request") == .pass)  // 100 µs
        #expect(verdict("nonstream", "requests/s vs echo ceiling") == .pass)  // 95.2 %
        #expect(verdict("slowstreams", "chunk forwarding delay p99") == .pass)
        #expect(verdict("slowstreams", "worker peak RSS") == .fail)  // 120 MB
        #expect(verdict("ceiling", "errors") == .pass)
        #expect(report.isCorrect)

        let alone = BenchReport(runs: [nonstream]).checks
        #expect(alone.first { $0.figure == "requests/s vs echo ceiling" }?.verdict == .unknown)
    }

    @Test("a run with missing requests fails its correctness checks")
    func incomplete() {
        let report = BenchReport(runs: [Self.run("stream", scenario: .stream, requests: 10, completed: 9)])
        #expect(!report.isCorrect)
        #expect(report.checks.filter { $0.isCorrectness && $0.verdict == .fail }.count == 2)
    }

    @Test("Markdown: a targets table with each figure next to its target, then every figure per run")
    func markdown() {
        let report = BenchReport(
            runs: [
                Self.run("ceiling", scenario: .ceiling),
                Self.run("nonstream", scenario: .nonstream, workerCPU: 0.5, brokerCPU: 1),
            ],
            machine: MachineInfo(
                processors: 2, cpuModel: "Test CPU", memoryKilobytes: 4 * 1024 * 1024, kernel: "6.1",
                rabbitMQVersion: "3.12.1"))
        let text = report.markdown(title: "bench", notes: ["Machine busy."])
        #expect(text.contains("## bench"))
        #expect(text.contains("Machine: 2 CPUs (Test CPU), 4.0 GB RAM, Linux 6.1, RabbitMQ 3.12.1."))
        #expect(text.contains("Machine busy."))
        #expect(text.contains("| nonstream | worker CPU / broker CPU | 0.500 | ≤ 0.250 | **FAIL** |"))
        #expect(text.contains("| nonstream | worker CPU per request | 500 µs | ≤ 150 µs | **FAIL** |"))
        #expect(text.contains("| nonstream | requests/s vs echo ceiling | 100 % | ≥ 90.0 % | pass |"))
        #expect(text.contains("| figure | ceiling | nonstream |"))
        #expect(text.contains("| latency p50 / p99 / max (ms) | 1.50 / 9.25 / 20.0 | 1.50 / 9.25 / 20.0 |"))
        #expect(text.contains("| requests/s | 500 | 500 |"))
    }

    @Test("decimal formatting without locale: rounding, trimming, negatives")
    func decimals() {
        #expect(formatDecimal(3.14159, digits: 2) == "3.14")
        #expect(formatDecimal(2.5, digits: 2) == "2.50")
        #expect(formatDecimal(2.5, digits: 2, trimZeros: true) == "2.5")
        #expect(formatDecimal(2, digits: 3, trimZeros: true) == "2")
        #expect(formatDecimal(-0.0004, digits: 3) == "0.000")
        #expect(formatDecimal(-1.25, digits: 1) == "-1.3")
        #expect(formatDecimal(0.05, digits: 3) == "0.050")
        #expect(BenchReport.number(1234.6) == "1235")
        #expect(BenchReport.number(0.1234) == "0.123")
    }
}
