import ChatQueueCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import ChatQueueBench

@Suite("Chunk stamps")
struct ChunkStampTests {
    @Test("reads the mock's x_mock_sent_at_ms, appended as the chunk's last member")
    func stamped() {
        let body = Array(
            #"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"w1 "}}],"x_mock_sent_at_ms":1732712345678.125}"#
                .utf8)
        #expect(ChunkStamp.sentAtMilliseconds(in: body) == 1_732_712_345_678.125)
    }

    @Test("integer stamps, spaces after the colon, and no stamp at all")
    func variants() {
        #expect(ChunkStamp.sentAtMilliseconds(in: Array(#"{"x_mock_sent_at_ms": 42}"#.utf8)) == 42)
        #expect(ChunkStamp.sentAtMilliseconds(in: Array(#"{"id":"x","choices":[]}"#.utf8)) == nil)
        #expect(ChunkStamp.sentAtMilliseconds(in: Array(#"{"x_mock_sent_at_ms":null}"#.utf8)) == nil)
        #expect(ChunkStamp.sentAtMilliseconds(in: []) == nil)
    }
}

@Suite("/proc parsing")
struct ProcFSTests {
    @Test("utime + stime are counted after the last ')' of the command name")
    func statLine() {
        let line = "1234 (beam (smp) x) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 75 0 0 20 0 30 0 100 0 0"
        #expect(ProcFS.cpuTicks(statLine: line) == 325)
        #expect(ProcFS.cpuTicksSplit(statLine: line).map { [$0.user, $0.system] } == [250, 75])
        #expect(ProcFS.cpuTicks(statLine: "garbage") == nil)
    }

    @Test("VmHWM and VmRSS from /proc/<pid>/status, in kB")
    func status() {
        let status = "Name:\tchatqueue\nVmPeak:\t  400000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   18000 kB\nRssAnon:\t    4000 kB\n"
        #expect(ProcFS.statusKilobytes(status, field: "VmHWM") == 20480)
        #expect(ProcFS.statusKilobytes(status, field: "VmRSS") == 18000)
        #expect(ProcFS.statusKilobytes(status, field: "RssAnon") == 4000)
        #expect(ProcFS.statusKilobytes(status, field: "VmSwap") == nil)
    }

    @Test("busy ticks of /proc/stat leave out idle and iowait")
    func machine() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"
        #expect(ProcFS.machineBusyTicks(procStat: stat) == 161)
    }

    @Test("listening sockets on a port from /proc/net/tcp (hex port, state 0A)")
    func listening() {
        let table = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 00000000:1628 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 31337 1 0000000000000000 100 0 0 10 0
               1: 0100007F:1628 0100007F:9C40 01 00000000:00000000 00:00000000 00000000   107        0 4242 1 0000000000000000 20 4 30 10 -1
               2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
            """
        #expect(ProcFS.listeningSocketInodes(procNetTCP: table, port: 5672) == [31337])
        #expect(ProcFS.listeningSocketInodes(procNetTCP: table, port: 8080) == [777])
        #expect(ProcFS.listeningSocketInodes(procNetTCP: table, port: 1).isEmpty)
    }

    @Test("the readers work on this process")
    func live() throws {
        #expect(ProcFS.cpuTicksSplit(pid: getpid()) != nil)
        let status = try #require(ProcFS.status(pid: getpid()))
        #expect((ProcFS.statusKilobytes(status, field: "VmHWM") ?? 0) > 0)
        #expect(ProcFS.machineBusyTicks() != nil)
        #expect(ProcFS.clockTicksPerSecond > 0)
    }
}

@Suite("Benchmark load")
struct BenchLoadTests {
    @Test("defaults per scenario, and the mock directives each request carries")
    func defaults() throws {
        let slow = BenchLoad(scenario: .slowstreams)
        #expect(slow.requests == 1_000)
        #expect(slow.concurrency == 1_000)
        #expect(slow.expectedChunks == 50)
        let body = try JSONValue(parsing: slow.requestBody)
        #expect(body["stream"]?.boolValue == true)
        #expect(body["mock"]?["words"]?.integerValue == 48)
        #expect(body["mock"]?["interval_ms"]?.integerValue == 100)
        #expect(body["mock"]?["stamp"]?.boolValue == true)

        let plain = BenchLoad(scenario: .nonstream, requests: 20, words: 5)
        #expect(plain.concurrency == 64)
        #expect(plain.expectedChunks == 0)
        let plainBody = try JSONValue(parsing: plain.requestBody)
        #expect(plainBody["stream"] == nil)
        #expect(plainBody["mock"]?["words"]?.integerValue == 5)
        #expect(plainBody["mock"]?["interval_ms"] == nil)
        #expect(plainBody["mock"]?["stamp"] == nil)
        #expect(plainBody["model"]?.stringValue == "deepseek-chat")
    }

    @Test("without --words and pacing, requests carry no mock object (the fixed-response mode answers them)")
    func unscripted() throws {
        let stream = BenchLoad(scenario: .stream)
        #expect(stream.words == 48)
        #expect(stream.expectedChunks == 50)
        let text = String(decoding: stream.requestBody, as: UTF8.self)
        #expect(!text.contains("\"mock\""))
        #expect(text.contains("\"stream\":true"))
    }
}

extension BenchLoadTests {
    @Test("slowstreams sends every request at once unless told otherwise")
    func slowConcurrency() {
        #expect(BenchLoad(scenario: .slowstreams, requests: 5000).concurrency == 5000)
        #expect(BenchLoad(scenario: .slowstreams, requests: 5000, concurrency: 100).concurrency == 100)
        #expect(BenchLoad(scenario: .stream, requests: 5).concurrency == 64)
    }
}
