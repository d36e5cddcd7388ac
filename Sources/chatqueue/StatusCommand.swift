import ArgumentParser
import ChatQueueConfig
import ChatQueueCore
import ChatQueueSystem
import ChatQueueWorker
import Foundation

/// `chatqueue status`: every worker instance on the machine at a glance, from their status files.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every worker instance's status file as one table; exit 1 when any is unhealthy.",
        discussion: """
            Reads DIR/status.json and DIR/chatqueue-worker*/status.json for each --status-dir (default /run, \
            where systemd puts /run/chatqueue-worker-N/status.json) and each --status-file, and prints one \
            line per instance: its state, chatqueue health's verdict, requests in flight, received, \
            succeeded and failed, when an upstream try last succeeded, the age of the file, and each \
            upstream's breaker. Exit status 0 when there is at least one instance and all are healthy, \
            else 1.
            """
    )

    @Option(
        name: .customLong("status-dir"),
        help: ArgumentHelp("A directory to look in (repeatable; default /run).", valueName: "dir"))
    var statusDirectories: [String] = []

    @Option(
        name: .customLong("status-file"),
        help: ArgumentHelp("A status file to show (repeatable).", valueName: "path"))
    var statusFiles: [String] = []

    @Option(
        name: .customLong("max-age"),
        help: ArgumentHelp("Seconds after which a status is stale (default 15: 3 x the default status.interval).", valueName: "seconds"))
    var maxAge: Double = 15

    @Flag(name: .customLong("json"), help: "Print one JSON document instead of the table.")
    var json = false

    @Option(
        name: .customLong("watch"),
        help: ArgumentHelp("Print again every N seconds until interrupted.", valueName: "seconds"))
    var watch: Double?

    func validate() throws {
        guard maxAge > 0, maxAge.isFinite else { throw ValidationError("--max-age must be a number of seconds > 0") }
        if let watch, !(watch >= 0.1 && watch <= 3600) {
            throw ValidationError("--watch must be a number of seconds in 0.1...3600")
        }
    }

    func run() throws {
        while true {
            let directories = statusDirectories.isEmpty && statusFiles.isEmpty ? ["/run"] : statusDirectories
            let paths = Array(Set(InstanceOverview.discover(in: directories) + statusFiles)).sorted()
            let now = WallClock.unixMilliseconds()
            let rows = InstanceOverview.rows(
                InstanceOverview.read(paths), nowUnixMilliseconds: now, maxAge: maxAge,
                isProcessAlive: HealthCheck.processExists)
            if json {
                print(String(decoding: InstanceOverview.json(rows).serialized(), as: UTF8.self))
            } else {
                if watch != nil { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                print(InstanceOverview.table(rows, nowUnixMilliseconds: now), terminator: "")
            }
            guard let watch else {
                if !InstanceOverview.allHealthy(rows) { throw ExitCode(1) }
                return
            }
            Thread.sleep(forTimeInterval: watch)
        }
    }
}
