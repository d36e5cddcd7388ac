import ArgumentParser
import ChatQueueConfig
import ChatQueueWorker
import Foundation

/// `chatqueue health`: judges a worker from its status file (for probes and scripts).
struct HealthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check a worker's status file; exit 0 when healthy, else 1.",
        discussion: """
            Healthy: the status file is fresh (updated within --max-age seconds), its state is \
            running or degraded, and its pid is alive. Prints "healthy: <state>" or the reason \
            on standard output, e.g. "status stale by 42 s" or "state reconnecting".
            """
    )

    @OptionGroup var configuration: ConfigOptions

    @Option(
        name: .customLong("status-file"),
        help: ArgumentHelp(
            "The worker's status file (default: status.file, else $RUNTIME_DIRECTORY/status.json, else ./chatqueue-status.json).",
            valueName: "path"))
    var statusFile: String?

    @Option(
        name: .customLong("max-age"),
        help: ArgumentHelp("Seconds after which the status is stale (default: 3 x status.interval).", valueName: "seconds"))
    var maxAge: Double?

    func validate() throws {
        if let maxAge, !(maxAge > 0) || !maxAge.isFinite {
            throw ValidationError("--max-age must be a number of seconds > 0")
        }
    }

    func run() throws {
        // Without --config this is the defaults (plus any CHATQUEUE_* variables).
        let settings = try configuration.loadSettings()
        let environment = ProcessInfo.processInfo.environment
        let path = statusFile ?? StatusFileWriter.path(configured: settings.status.file, environment: environment)
        let verdict = HealthCheck.check(statusFile: path, maxAge: maxAge ?? 3 * settings.status.interval)
        print(verdict.line)
        if verdict.exitCode != 0 { throw ExitCode(verdict.exitCode) }
    }
}
