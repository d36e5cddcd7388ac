import ArgumentParser
import ChatQueueConfig
import Foundation

/// The configuration options every subcommand that talks to the broker shares.
/// Layers, lowest first: the YAML file, `CHATQUEUE_*` environment variables, these flags.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "YAML configuration file (see config/chatqueue.yaml).")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override any key, e.g. --set worker.concurrency=64 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(name: .customLong("broker-url"), help: "Same as --set broker.url=URL.")
    var brokerURL: String?

    @Option(name: .customLong("queue"), help: "Same as --set queue.name=NAME.")
    var queueName: String?

    @Option(name: .customLong("upstream-url"), help: "Same as --set upstream.url=URL.")
    var upstreamURL: String?

    @Option(name: .customLong("log-level"), help: "Same as --set log.level=LEVEL.")
    var logLevel: String?

    /// The flags as dotted-key overrides.
    func overrideTable() throws -> [String: String] {
        var table: [String: String] = [:]
        for entry in overrides {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw ValidationError("--set takes key=value, got '\(entry)'")
            }
            table[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        if let brokerURL { table["broker.url"] = brokerURL }
        if let queueName { table["queue.name"] = queueName }
        if let upstreamURL { table["upstream.url"] = upstreamURL }
        if let logLevel { table["log.level"] = logLevel }
        return table
    }

    /// Loads the settings; a configuration error is printed naming its key and exits 1.
    func loadSettings() throws -> Settings {
        do {
            return try SettingsLoader.load(
                configFile: config, environment: ProcessInfo.processInfo.environment, overrides: try overrideTable())
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("chatqueue: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
