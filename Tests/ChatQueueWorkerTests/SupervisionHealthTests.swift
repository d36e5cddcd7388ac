import ChatQueueSystem
import Testing

@testable import ChatQueueWorker

#if canImport(Glibc)
import Glibc
#endif

@Suite("Supervision: health verdicts")
struct SupervisionHealthTests {
    static let now: Int64 = 1_795_788_185_123

    func contents(_ state: WorkerState, pid: Int32 = 1234, age: Int64 = 1000) -> [UInt8] {
        WorkerStatus(
            pid: pid, instance: "1", state: state, startedAtUnixMilliseconds: 0,
            updatedAtUnixMilliseconds: Self.now - age, broker: WorkerStatus.Broker(queue: "q")
        ).json()
    }

    func verdict(_ contents: [UInt8]?, alive: Bool = true, maxAge: Double = 15) -> HealthVerdict {
        HealthCheck.evaluate(contents: contents, nowUnixMilliseconds: Self.now, maxAge: maxAge) { _ in alive }
    }

    @Test("running and degraded, fresh, pid alive: healthy")
    func healthy() {
        #expect(verdict(contents(.running)) == .healthy(.running))
        #expect(verdict(contents(.degraded)) == .healthy(.degraded))
        #expect(verdict(contents(.running)).line == "healthy: running")
        #expect(verdict(contents(.degraded)).exitCode == 0)
        // A clock slightly behind the writer's is not stale.
        #expect(verdict(contents(.running, age: -3000)) == .healthy(.running))
        #expect(verdict(contents(.running, age: 15_000)) == .healthy(.running))
    }

    @Test("every reason, one line each")
    func reasons() {
        #expect(verdict(nil) == .unhealthy(reason: "status file missing"))
        #expect(verdict(contents(.running, age: 42_500)) == .unhealthy(reason: "status stale by 42 s"))
        #expect(verdict(contents(.running, age: 15_001)) == .unhealthy(reason: "status stale by 15 s"))
        #expect(verdict(contents(.stopped)) == .unhealthy(reason: "state stopped"))
        #expect(verdict(contents(.reconnecting)) == .unhealthy(reason: "state reconnecting"))
        #expect(verdict(contents(.starting)) == .unhealthy(reason: "state starting"))
        #expect(verdict(contents(.draining)) == .unhealthy(reason: "state draining"))
        #expect(verdict(contents(.running, pid: 1234), alive: false) == .unhealthy(reason: "pid 1234 gone"))
        #expect(verdict(contents(.reconnecting)).exitCode == 1)
        #expect(verdict(contents(.reconnecting)).line == "state reconnecting")
    }

    @Test("the most telling reason wins: stopped > pid gone > stale > state")
    func precedence() {
        #expect(verdict(contents(.stopped, age: 60_000), alive: false) == .unhealthy(reason: "state stopped"))
        #expect(verdict(contents(.running, pid: 9, age: 60_000), alive: false) == .unhealthy(reason: "pid 9 gone"))
        #expect(verdict(contents(.reconnecting, age: 60_000)) == .unhealthy(reason: "status stale by 60 s"))
    }

    @Test("unreadable files say why")
    func unreadable() {
        func reason(_ text: String) -> String { verdict(Array(text.utf8)).line }
        #expect(reason("") .hasPrefix("status file unreadable: "))
        #expect(reason("{\"state\":") .hasPrefix("status file unreadable: "))
        #expect(reason(#"{"pid":1,"updated_at":"2026-11-27T14:03:05.123Z"}"#) == "status file unreadable: no state")
        #expect(
            reason(#"{"state":"sleeping","pid":1,"updated_at":"2026-11-27T14:03:05.123Z"}"#)
                == #"status file unreadable: unknown state "sleeping""#)
        #expect(
            reason(#"{"state":"running","updated_at":"2026-11-27T14:03:05.123Z"}"#) == "status file unreadable: no pid")
        #expect(reason(#"{"state":"running","pid":1,"updated_at":"yesterday"}"#) == "status file unreadable: no updated_at")
        for line in [reason(""), reason("{\"state\":"), reason("\n\n")] {
            #expect(!line.contains("\n"))
        }
    }

    @Test("check reads the file: missing, unreadable, and a live pid")
    func checkReadsFile() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = directory.file("status.json")
        #expect(HealthCheck.check(statusFile: path, maxAge: 15) == .unhealthy(reason: "status file missing"))

        let status = WorkerStatus(
            pid: getpid(), instance: "1", state: .running, startedAtUnixMilliseconds: 0,
            updatedAtUnixMilliseconds: WallClock.unixMilliseconds(), broker: WorkerStatus.Broker(queue: "q"))
        try StatusFileWriter(path: path).write(status)
        #expect(HealthCheck.check(statusFile: path, maxAge: 15) == .healthy(.running))

        #expect(
            HealthCheck.check(statusFile: directory.path, maxAge: 15)
                == .unhealthy(reason: "status file unreadable: Is a directory"))
    }

    @Test("processExists: this process yes, an unused pid no")
    func processExists() {
        #expect(HealthCheck.processExists(getpid()))
        #expect(!HealthCheck.processExists(Int32.max))
    }
}
