import ChatQueueCore
import Foundation
import Testing

@testable import ChatQueueWorker

@Suite("chatqueue status: one view of all instances")
struct InstanceOverviewTests {
    static let now: Int64 = 1_795_788_200_000

    static func status(
        instance: String, state: WorkerState, pid: Int32 = 100, ageMilliseconds: Int64 = 1000,
        upstreams: [UpstreamFigures] = []
    ) -> [UInt8] {
        WorkerStatus(
            pid: pid, instance: instance, state: state, startedAtUnixMilliseconds: now - 60_000,
            updatedAtUnixMilliseconds: now - ageMilliseconds, broker: WorkerStatus.Broker(queue: "q"),
            upstream: WorkerStatus.Upstream(lastSuccessAtUnixMilliseconds: now - 2500),
            upstreams: upstreams,
            requests: WorkerStatus.Requests(inFlight: 3, received: 40, succeeded: 36, failed: 1)
        ).json()
    }

    @Test("one row per instance, by path; healthy and unhealthy with chatqueue health's reasons; exit status")
    func rows() {
        var held = UpstreamFigures()
        held.name = "deepseek"
        held.breakerState = "open"
        held.breakerReason = "payment_required"
        var fine = UpstreamFigures()
        fine.name = "acedata"
        let files: [(path: String, contents: [UInt8]?)] = [
            ("/run/chatqueue-worker-2/status.json", Self.status(instance: "2", state: .degraded, upstreams: [held, fine])),
            ("/run/chatqueue-worker-1/status.json", Self.status(instance: "1", state: .running)),
            ("/run/chatqueue-worker-3/status.json", Self.status(instance: "3", state: .running, ageMilliseconds: 60_000)),
            ("/run/chatqueue-worker-4/status.json", Array("not json".utf8)),
            ("/run/chatqueue-worker-5/status.json", Self.status(instance: "5", state: .running, pid: 999)),
        ]
        let rows = InstanceOverview.rows(files, nowUnixMilliseconds: Self.now, maxAge: 15) { $0 != 999 }
        #expect(rows.map(\.instance) == ["1", "2", "3", "?", "5"])
        #expect(rows.map(\.verdict.line) == [
            "healthy: running", "healthy: degraded", "status stale by 60 s", rows[3].verdict.line, "pid 999 gone",
        ])
        #expect(rows[3].verdict.line.hasPrefix("status file unreadable"))
        #expect(rows[1].upstreams == ["deepseek: open (payment_required)", "acedata: closed"])
        #expect(rows[0].inFlight == 3 && rows[0].received == 40 && rows[0].succeeded == 36 && rows[0].failed == 1)
        #expect(rows[0].ageMilliseconds == 1000)
        #expect(!InstanceOverview.allHealthy(rows))
        #expect(InstanceOverview.allHealthy(Array(rows.prefix(2))))
        #expect(!InstanceOverview.allHealthy([]), "no instance is not healthy")
        let table = InstanceOverview.table(rows, nowUnixMilliseconds: Self.now)
        let lines = table.split(separator: "\n")
        #expect(lines.count == 7)
        #expect(lines[0].hasPrefix("INSTANCE  STATE"))
        #expect(lines[2].contains("degraded") && lines[2].contains("deepseek: open (payment_required), acedata: closed"))
        #expect(lines[1].contains("2.5 s ago"))
        #expect(lines.last == "5 instances, 3 unhealthy")
        let json = InstanceOverview.json(rows)
        #expect(json["healthy"] == false)
        #expect(json["instances"]?.arrayValue?.count == 5)
        #expect(json["instances"]?[0]?["health"] == "healthy: running")
    }

    @Test("discover finds DIR/status.json and DIR/chatqueue-worker*/status.json, nothing else")
    func discover() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cq-overview-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for directory in ["chatqueue-worker-1", "chatqueue-worker-2", "other-service", "chatqueue-worker-3"] {
            try FileManager.default.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        for file in ["chatqueue-worker-1/status.json", "chatqueue-worker-2/status.json", "other-service/status.json", "status.json"] {
            _ = FileManager.default.createFile(atPath: root + "/" + file, contents: Data("{}".utf8))
        }
        #expect(
            InstanceOverview.discover(in: [root, root + "/missing"]) == [
                root + "/chatqueue-worker-1/status.json", root + "/chatqueue-worker-2/status.json", root + "/status.json",
            ])
    }
}
