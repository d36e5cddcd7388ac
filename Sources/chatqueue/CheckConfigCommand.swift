import ArgumentParser
import ChatQueueConfig

/// `chatqueue check-config`: validates the configuration and prints the effective values.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Print the effective configuration (secrets redacted); exit 1 on errors."
    )

    @OptionGroup var configuration: ConfigOptions

    func run() throws {
        let settings = try configuration.loadSettings()
        print(settings.redactedYAML(), terminator: "")
    }
}
