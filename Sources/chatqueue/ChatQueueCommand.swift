import ArgumentParser
import ChatQueueWorker

/// `chatqueue`: one executable for the worker daemon and its tools.
@main
struct ChatQueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatqueue",
        abstract: "Answer chat completion requests from RabbitMQ through a DeepSeek-compatible API.",
        version: ChatQueueVersion.current,
        subcommands: [
            WorkerCommand.self, SendCommand.self, CheckConfigCommand.self, MockUpstreamCommand.self,
        ]
    )
}
