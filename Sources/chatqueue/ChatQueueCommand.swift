import ArgumentParser
import ChatQueueWorker
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `chatqueue`: one executable for the worker daemon and its tools.
@main
struct ChatQueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatqueue",
        abstract: "Answer chat completion requests from RabbitMQ through a DeepSeek-compatible API.",
        version: ChatQueueVersion.current,
        subcommands: [
            WorkerCommand.self, SendCommand.self, CheckConfigCommand.self, MockUpstreamCommand.self, HealthCommand.self,
            StatusCommand.self,
            BenchCommand.self, BenchEchoCommand.self, BenchReportCommand.self, BenchCleanupCommand.self,
        ]
    )

    /// Usage errors exit 2 (the Unix convention the commands document), not
    /// ArgumentParser's 64; everything else is as ArgumentParser reports it.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                let message = fullMessage(for: error)
                if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}
