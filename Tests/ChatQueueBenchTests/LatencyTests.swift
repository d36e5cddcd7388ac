import ChatQueueCore
import Testing

@testable import ChatQueueBench

/// The latency scenario's pure parts: the timings it keeps, what it reports
/// as added, the report's table, and the direct path's response reader.
@Suite("Latency scenario")
struct LatencyTests {
    @Test("time to first chunk is send to first chunk; gaps are arrival minus the previous arrival of the same request")
    func chunkTimings() {
        var timings = ChunkTimings(requests: 2)
        timings.sent(0, at: 1_000)
        timings.sent(1, at: 1_500)
        timings.chunk(0, at: 4_000)  // first chunk of 0: 3,000
        timings.chunk(1, at: 4_100)  // first chunk of 1: 2,600
        timings.chunk(0, at: 24_000)  // gap of 0: 20,000
        timings.chunk(1, at: 25_100)  // gap of 1: 21,000
        timings.chunk(0, at: 44_500)  // gap of 0: 20,500
        timings.chunk(7, at: 50_000)  // not a request of the run: ignored
        #expect(timings.firstChunk == [3_000, 2_600])
        #expect(timings.gaps == [20_000, 21_000, 20_500])

        let figures = timings.figures
        #expect(figures.firstChunk == Distribution(count: 2, p50: 2.6, p99: 3, max: 3))
        #expect(figures.gap == Distribution(count: 3, p50: 20.5, p99: 21, max: 21))
    }

    @Test("a request sent again starts over: its next chunk is a first chunk")
    func resend() {
        var timings = ChunkTimings(requests: 1)
        timings.sent(0, at: 0)
        timings.chunk(0, at: 10)
        timings.sent(0, at: 100)
        timings.chunk(0, at: 130)
        #expect(timings.firstChunk == [10, 30])
        #expect(timings.gaps.isEmpty)
    }

    @Test("added is through chatqueue minus direct, percentile by percentile, and may be negative")
    func added() throws {
        let added = AddedLatency(
            intervalMilliseconds: 20,
            chatqueue: PathLatency(
                firstChunk: Distribution(count: 100, p50: 900, p99: 2_000, max: 2_500),
                gap: Distribution(count: 900, p50: 20_100, p99: 21_000, max: 22_000)),
            direct: PathLatency(
                firstChunk: Distribution(count: 100, p50: 300, p99: 700, max: 3_000),
                gap: Distribution(count: 900, p50: 20_150, p99: 20_800, max: 21_000)),
            echoRoundTrip: Distribution(count: 1000, p50: 450, p99: 1_200, max: 1_500))
        #expect(added.addedFirstChunk == LatencyDifference(p50: 600, p99: 1_300, max: -500))
        #expect(added.addedGap == LatencyDifference(p50: -50, p99: 200, max: 1_000))
        #expect(added.workerShareOfFirstChunk == 150)

        let noDirect = AddedLatency(
            intervalMilliseconds: 20, chatqueue: added.chatqueue, direct: PathLatency(firstChunk: nil, gap: nil),
            echoRoundTrip: nil)
        #expect(noDirect.addedFirstChunk == nil)
        #expect(noDirect.addedGap == nil)
        #expect(noDirect.workerShareOfFirstChunk == nil)
    }

    static func latencyRun(label: String = "latency-c1", concurrency: Int = 1) -> RunResult {
        var run = BenchReportTests.run(label, scenario: .latency, requests: 100, chunks: 1000)
        run.concurrency = concurrency
        run.addedLatency = AddedLatency(
            intervalMilliseconds: 20,
            chatqueue: PathLatency(
                firstChunk: Distribution(count: 100, p50: 912.4, p99: 2_000, max: 2_600.6),
                gap: Distribution(count: 900, p50: 20_100, p99: 21_000, max: 22_000)),
            direct: PathLatency(
                firstChunk: Distribution(count: 100, p50: 300, p99: 700, max: 3_000),
                gap: Distribution(count: 900, p50: 20_150, p99: 20_800, max: 21_000)),
            echoRoundTrip: Distribution(count: 1000, p50: 450, p99: 1_200, max: 1_500))
        return run
    }

    @Test("a latency run survives the JSON round trip, added figures included")
    func roundTrip() throws {
        let original = Self.latencyRun()
        let json = original.json
        let decoded = try RunResult(json: try JSONValue(parsing: json.serializedString()))
        #expect(decoded == original)
        #expect(json["added_latency"]?["added_first_chunk_us"]?["p50"]?.doubleValue == 612.4)
        #expect(json["added_latency"]?["added_gap_us"]?["max"]?.doubleValue == 1_000)
        // Runs of other scenarios carry no added_latency member.
        #expect(BenchReportTests.run("stream", scenario: .stream).json["added_latency"] == nil)
    }

    @Test("the report's latency table: both paths, what is added and the echo round trip, per run")
    func table() throws {
        let report = BenchReport(runs: [Self.latencyRun(label: "latency-c16", concurrency: 16), Self.latencyRun()])
        let table = try #require(report.latencyTable())
        let rows = table.split(separator: "\n").map(String.init)
        #expect(rows.contains("| latency-c1 (concurrency 1) | time to first chunk, direct | 300 | 700 | 3000 |"))
        #expect(rows.contains("| latency-c1 (concurrency 1) | time to first chunk, through chatqueue | 912 | 2000 | 2601 |"))
        #expect(rows.contains("| latency-c1 (concurrency 1) | **time to first chunk, added** | 612 | 1300 | -399 |"))
        #expect(
            rows.contains("| latency-c1 (concurrency 1) | inter-chunk gap, direct (pacing 20000) | 20150 | 20800 | 21000 |"))
        #expect(rows.contains("| latency-c1 (concurrency 1) | **inter-chunk gap, added** | -50 | 200 | 1000 |"))
        #expect(rows.contains("| latency-c16 (concurrency 16) | echo broker round trip | 450 | 1200 | 1500 |"))
        // c1 before c16, whatever order they came in.
        let first = try #require(rows.firstIndex { $0.hasPrefix("| latency-c1 ") })
        let sixteen = try #require(rows.firstIndex { $0.hasPrefix("| latency-c16 ") })
        #expect(first < sixteen)
        #expect(report.markdown().contains(table))

        #expect(BenchReport(runs: [BenchReportTests.run("stream", scenario: .stream)]).latencyTable() == nil)
    }

    @Test("latency targets: the worker's share of the first chunk beyond the echo round trip, and the gaps")
    func targets() throws {
        var run = Self.latencyRun()  // added first chunk p50 612.4 - echo 450 = 162.4; gap added p50 -50, p99 200
        let checks = BenchReport(runs: [run]).checks.filter { !$0.isCorrectness }
        func check(_ figure: String) throws -> BenchCheck { try #require(checks.first { $0.figure == figure }) }
        let share = try check("time to first chunk added beyond the echo round trip, p50")
        #expect(share.measured.map { ($0 * 10).rounded() } == 1624)
        #expect(share.verdict == .pass)
        #expect(try check("time to first chunk added, p50").verdict == .reportOnly)
        #expect(try check("inter-chunk gap added, p50").verdict == .pass)
        #expect(try check("inter-chunk gap added, p99").verdict == .pass)

        run.addedLatency?.chatqueue.firstChunk = Distribution(count: 100, p50: 1_300, p99: 2_000, max: 2_600)
        run.addedLatency?.chatqueue.gap = Distribution(count: 900, p50: 20_300, p99: 26_000, max: 30_000)
        let failing = BenchReport(runs: [run]).checks.filter { !$0.isCorrectness && $0.verdict == .fail }
        #expect(
            Set(failing.map(\.figure)) == [
                "time to first chunk added beyond the echo round trip, p50", "inter-chunk gap added, p50",
                "inter-chunk gap added, p99",
            ])

        // Without the echo there is no round trip to subtract: unknown, not a pass.
        run.addedLatency?.echoRoundTrip = nil
        let unknown = BenchReport(runs: [run]).checks.first {
            $0.figure == "time to first chunk added beyond the echo round trip, p50"
        }
        #expect(unknown?.verdict == .unknown)
    }

    @Test("the latency load: 8 words at 20 ms, one in flight, the pacing asked of the mock in the body")
    func load() throws {
        let load = BenchLoad(scenario: .latency)
        #expect(load.requests == 100)
        #expect(load.concurrency == 1)
        #expect(load.words == 8)
        #expect(load.expectedChunks == 10)
        #expect(load.intervalMilliseconds == 20)
        let body = try JSONValue(parsing: load.requestBody)
        #expect(body["stream"]?.boolValue == true)
        #expect(body["mock"]?["interval_ms"]?.integerValue == 20)
        #expect(body["mock"]?["words"]?.integerValue == 8)
        #expect(body["mock"]?["stamp"] == nil)
    }

    @Test("rounds split the requests evenly, covering each once")
    func shares() {
        let shares = (0..<4).map { LatencyRun.share(of: 10, round: $0, rounds: 4) }
        #expect(shares == [0..<2, 2..<5, 5..<7, 7..<10])
    }

    // MARK: Direct path

    @Test("the upstream URL: host, port and the worker's request path")
    func endpoint() throws {
        let plain = try DirectEndpoint(url: "http://127.0.0.1:8089")
        #expect(plain.host == "127.0.0.1")
        #expect(plain.port == 8089)
        #expect(plain.path == "/chat/completions")
        #expect(try DirectEndpoint(url: "http://localhost:9/v1/").path == "/v1/chat/completions")
        let request = String(decoding: plain.request(body: Array("{}".utf8)), as: UTF8.self)
        #expect(request.hasPrefix("POST /chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8089\r\n"))
        #expect(request.hasSuffix("Content-Length: 2\r\n\r\n{}"))
        for bad in ["https://127.0.0.1:1", "http://127.0.0.1", "http://127.0.0.1:0", "http://example.com:80", "http://[::1]:80"] {
            #expect(throws: BenchError.self) { try DirectEndpoint(url: bad) }
        }
    }

    /// A chunked SSE response as the mock sends it: one HTTP chunk per event.
    static func chunkedStream(events: [String]) -> [UInt8] {
        var text = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        for event in events {
            let data = "data: \(event)\n\n"
            text += String(data.utf8.count, radix: 16) + "\r\n" + data + "\r\n"
        }
        return Array((text + "0\r\n\r\n").utf8)
    }

    static func feed(_ reader: inout SSEResponseReader, _ bytes: some Collection<UInt8>) throws -> Int {
        try Array(bytes).withUnsafeBytes { try reader.feed($0) }
    }

    @Test("a chunked event stream: chunks counted without [DONE], the same however the bytes are split")
    func chunkedResponse() throws {
        let bytes = Self.chunkedStream(events: [#"{"a":1}"#, #"{"b":2}"#, #"{"c":3}"#, "[DONE]"])
        var whole = SSEResponseReader()
        #expect(try Self.feed(&whole, bytes) == 3)
        #expect(whole.isComplete && whole.sawDone && whole.chunks == 3 && whole.status == 200)
        #expect(!whole.closesConnection)

        for split in 1..<bytes.count {
            var reader = SSEResponseReader()
            let first = try Self.feed(&reader, bytes[..<split])
            #expect(!reader.isComplete)
            let second = try Self.feed(&reader, bytes[split...])
            #expect(first + second == 3, "split at \(split)")
            #expect(reader.isComplete && reader.sawDone)
        }
    }

    @Test("a stream's chunks count when their event ends, not when it starts")
    func partialEvent() throws {
        var reader = SSEResponseReader()
        let bytes = Self.chunkedStream(events: [#"{"a":1}"#, #"{"b":2}"#])
        let cut = bytes.count - 15  // inside the second event
        #expect(try Self.feed(&reader, bytes[..<cut]) == 1)
        #expect(try Self.feed(&reader, bytes[cut...]) == 1)
    }

    @Test("a Content-Length body and a body up to the close are read too")
    func otherBodies() throws {
        let body = "data: {}\n\ndata: [DONE]\n\n"
        var sized = SSEResponseReader()
        let sizedHead = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        #expect(try Self.feed(&sized, Array((sizedHead + body).utf8)) == 1)
        #expect(sized.isComplete && sized.closesConnection)

        var unsized = SSEResponseReader()
        #expect(try Self.feed(&unsized, Array(("HTTP/1.1 200 OK\r\n\r\n" + body).utf8)) == 1)
        #expect(!unsized.isComplete && unsized.closesConnection)
        try unsized.endOfInput()
        #expect(unsized.isComplete)
    }

    @Test("errors, not traps: another status, a bad or huge chunk size, a cut-off body, bytes after the end")
    func malformed() throws {
        func fails(_ text: String) -> Bool {
            var reader = SSEResponseReader()
            do {
                _ = try Self.feed(&reader, Array(text.utf8))
                try reader.endOfInput()
                return false
            } catch {
                return true
            }
        }
        let chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(fails("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"))
        #expect(fails("SSH-2.0-OpenSSH\r\n\r\n"))
        #expect(fails(chunkedHead + "zz\r\n"))
        #expect(fails(chunkedHead + "\r\n"))
        #expect(fails(chunkedHead + "fffffffffffffffffffff\r\n"))
        #expect(fails(chunkedHead + "3\r\nabcX\r\n"))  // no CRLF after the chunk
        #expect(fails(chunkedHead + "5\r\nda"))  // cut off
        #expect(fails(chunkedHead + String(repeating: "1", count: 2000)))
        #expect(fails("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"))
        #expect(fails("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc"))
        #expect(fails("HTTP/1.1 200 OK\r\nX: " + String(repeating: "x", count: 70_000)))
        #expect(!fails(chunkedHead + "0\r\n\r\n"))
    }
}
