import ArgumentParser
import ChatQueueConfig
import ChatQueueWorker
import Foundation
import Logging

/// `chatqueue worker`: the daemon.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Consume chat completion requests and answer them (runs until SIGTERM/SIGINT)."
    )

    @OptionGroup var configuration: ConfigOptions

    @Option(help: "Instance name for connection names and logs (default: the systemd instance, else the pid).")
    var instance: String?

    func run() throws {
        let settings = try configuration.loadSettings()
        StderrLogHandler.bootstrap(format: settings.log.format, level: Logger.Level(settings.log.level))
        let instanceName = instance ?? Self.systemdInstance() ?? "pid\(getpid())"
        var logger = Logger(label: "chatqueue")
        logger[metadataKey: "instance"] = "\(instanceName)"
        let worker = try Worker(settings: settings, options: Worker.Options(instanceName: instanceName, environment: ProcessInfo.processInfo.environment), logger: logger)
        let code = worker.run()
        if code != 0 { throw ExitCode(code) }
    }

    /// The instance part of a templated unit's name (chatqueue-worker@3.service → "3").
    static func systemdInstance() -> String? {
        guard ProcessInfo.processInfo.environment["INVOCATION_ID"] != nil,
            let cgroup = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
            let range = cgroup.range(of: #"@[^/.]+\.service"#, options: .regularExpression)
        else { return nil }
        return String(cgroup[range].dropFirst().dropLast(".service".count))
    }
}
