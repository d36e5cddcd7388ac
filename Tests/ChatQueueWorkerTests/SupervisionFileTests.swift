import ChatQueueSystem
import Testing

@testable import ChatQueueWorker

#if canImport(Glibc)
import Glibc
#endif

@Suite("Supervision: atomic status and metrics files")
struct SupervisionFileTests {
    func status(_ state: WorkerState, updatedAt: Int64) -> WorkerStatus {
        WorkerStatus(
            pid: getpid(), instance: "t", state: state, startedAtUnixMilliseconds: 0,
            updatedAtUnixMilliseconds: updatedAt, broker: WorkerStatus.Broker(queue: "q"))
    }

    @Test("writes the JSON and a newline, replaces it, leaves no temporary file, mode 0644")
    func replacesAtomically() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let writer = StatusFileWriter(path: directory.file("status.json"))
        let oldMask = umask(0o077)
        defer { umask(oldMask) }

        try writer.write(status(.starting, updatedAt: 1000))
        #expect(directory.names() == ["status.json"])
        #expect(directory.contents("status.json") == String(decoding: status(.starting, updatedAt: 1000).json(), as: UTF8.self) + "\n")
        #expect(directory.mode("status.json") == 0o644)

        try writer.write(status(.running, updatedAt: 2000))
        #expect(directory.names() == ["status.json"])
        let text = try #require(directory.contents("status.json"))
        #expect(text.contains(#""state":"running""#))
        #expect(text.contains(#""updated_at":"1970-01-01T00:00:02.000Z""#))
        #expect(!text.contains("starting"))
    }

    @Test("a temporary file left by a dead process with our pid is replaced")
    func staleTemporaryFile() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = directory.file("status.json")
        let temporary = FileIO.temporaryPath(for: path)
        #expect(temporary == directory.path + "/.status.json.\(getpid()).tmp")
        let descriptor = open(temporary, O_CREAT | O_WRONLY, 0o600)
        #expect(descriptor >= 0)
        close(descriptor)

        try StatusFileWriter(path: path).write(status(.running, updatedAt: 0))
        #expect(directory.names() == ["status.json"])
    }

    @Test("errors carry the errno, the call with the path and the system's words; nothing is left behind")
    func errors() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let missing = directory.file("no/such/dir/status.json")
        let error = #expect(throws: SystemError.self) {
            try StatusFileWriter(path: missing).write(status(.running, updatedAt: 0))
        }
        #expect(error?.errno == ENOENT)
        #expect(error?.call == "open " + FileIO.temporaryPath(for: missing))
        #expect(error?.reason == "No such file or directory")

        // rename onto a directory fails after the temporary file was written: it is removed.
        let target = directory.file("taken")
        #expect(mkdir(target, 0o755) == 0)
        #expect(throws: SystemError.self) {
            try StatusFileWriter(path: target).write(status(.running, updatedAt: 0))
        }
        #expect(directory.names() == ["taken"])
        rmdir(target)
    }

    @Test("the default path: $RUNTIME_DIRECTORY/status.json, else ./chatqueue-status.json")
    func defaultPath() {
        #expect(
            StatusFileWriter.defaultPath(environment: ["RUNTIME_DIRECTORY": "/run/chatqueue-worker-1"])
                == "/run/chatqueue-worker-1/status.json")
        #expect(
            StatusFileWriter.defaultPath(environment: ["RUNTIME_DIRECTORY": "/run/a:/run/b"]) == "/run/a/status.json")
        #expect(StatusFileWriter.defaultPath(environment: ["RUNTIME_DIRECTORY": "/run/a/"]) == "/run/a/status.json")
        #expect(StatusFileWriter.defaultPath(environment: ["RUNTIME_DIRECTORY": ""]) == "./chatqueue-status.json")
        #expect(StatusFileWriter.defaultPath(environment: [:]) == "./chatqueue-status.json")
        #expect(StatusFileWriter.path(configured: "/var/x.json", environment: [:]) == "/var/x.json")
        #expect(
            StatusFileWriter.path(configured: nil, environment: ["RUNTIME_DIRECTORY": "/run/w"])
                == "/run/w/status.json")
        #expect(StatusFileWriter.path(configured: "", environment: [:]) == "./chatqueue-status.json")
    }

    @Test("the metrics textfile: .prom names only, written atomically")
    func metricsTextfile() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        for bad in [directory.file("metrics.txt"), directory.file(".prom"), directory.file("m.prom/")] {
            #expect(throws: SystemError.self, "\(bad)") { try MetricsTextfileWriter(path: bad) }
        }
        let writer = try MetricsTextfileWriter(path: directory.file("chatqueue-worker-1.prom"))
        var snapshot = MetricsSnapshot(instance: "1")
        try writer.write(snapshot)
        snapshot.counters.succeeded = 3
        try writer.write(snapshot)
        #expect(directory.names() == ["chatqueue-worker-1.prom"])
        #expect(directory.contents("chatqueue-worker-1.prom") == PrometheusText.render(snapshot))
        #expect(directory.mode("chatqueue-worker-1.prom") == 0o644)
    }
}
