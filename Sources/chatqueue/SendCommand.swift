import ArgumentParser
import ChatQueueAMQP
import ChatQueueConfig
import ChatQueueCore
import ChatQueueWorker
import Foundation

/// `chatqueue send`: enqueue one request and print its answer as it streams.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send one chat request through the queue and print the answer.",
        discussion: """
            Exit status: 0 on chat.completion, 1 on an error reply (its message on stderr) or when \
            the queue does not exist, 2 on usage errors, 3 when no final reply arrives within --timeout, \
            130 when Ctrl-C cancelled the request.

            Ctrl-C publishes the request's cancel message to --cancel-exchange and waits up to \
            --cancel-wait seconds for its `cancelled` final reply (docs/protocol.md, "Cancelling a \
            request"), printing the replies that arrive meanwhile; a second Ctrl-C stops waiting. If the \
            answer's own final arrives first, the status is that final's.
            """
    )

    @OptionGroup var configuration: ConfigOptions

    @Option(help: "Model to ask.")
    var model: String = "deepseek-chat"

    @Option(help: "System prompt.")
    var system: String?

    @Flag(inversion: .prefixedNo, help: "Stream the answer as it is generated.")
    var stream: Bool = true

    @Option(help: "Seconds to wait for the final reply.")
    var timeout: Double = 120

    @Flag(help: "Print every reply message as a JSON line (type, headers, body).")
    var json: Bool = false

    @Option(help: "Send this file's JSON as the request body, unchanged.")
    var file: String?

    @Option(help: "Fanout exchange Ctrl-C publishes the cancel message to (default: the configuration's queue.cancel_exchange, chat.requests.cancel); empty: Ctrl-C only stops waiting.")
    var cancelExchange: String?

    @Option(help: "Seconds to wait for the cancelled final reply after Ctrl-C.")
    var cancelWait: Double = 5

    @Argument(help: "The user message.")
    var message: String?

    func validate() throws {
        if file == nil && message == nil { throw ValidationError("give a MESSAGE or --file request.json") }
        if file != nil && message != nil { throw ValidationError("give either a MESSAGE or --file, not both") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if !(cancelWait >= 0) { throw ValidationError("--cancel-wait must not be negative") }
    }

    /// Exit status when Ctrl-C cancelled the request (128 + SIGINT, as a shell reports it).
    static let cancelledStatus: Int32 = 130

    func run() throws {
        let settings = try configuration.loadSettings()
        let cancelExchange = self.cancelExchange ?? settings.queue.cancelExchange ?? ""
        let body = try requestBody()
        let endpoint = settings.broker.endpoints[0]
        let requester: Requester
        let interrupt: InterruptSignal
        // The request id the worker uses (x-request-id) is message_id: set explicitly, so a cancel can name it.
        let requestID = UUID().uuidString.lowercased()
        do {
            requester = try Requester(options: settings.amqpOptions(for: endpoint, connectionName: "chatqueue send"))
            // From here on Ctrl-C cancels (before, nothing was sent: it just ends the process, even mid-connect).
            interrupt = InterruptSignal()
            try requester.send(to: settings.queue.name, body: body, correlationID: requestID, messageID: requestID)
        } catch {
            Self.stderr("chatqueue: cannot send the request: \(error)")
            throw ExitCode(1)
        }
        var printer = ReplyPrinter(json: json)
        var deadline = Date().addingTimeInterval(timeout)
        var cancelled = false
        while true {
            if interrupt.take() {
                printer.finishLine()
                // A second Ctrl-C, or nothing to cancel through: stop waiting.
                if cancelled || cancelExchange.isEmpty { throw ExitCode(Self.cancelledStatus) }
                cancelled = true
                do {
                    try requester.cancel(requestID: requestID, exchange: cancelExchange)
                } catch {
                    Self.stderr("chatqueue: cannot cancel request \(requestID): \(error)")
                    throw ExitCode(Self.cancelledStatus)
                }
                Self.stderr("chatqueue: cancelling request \(requestID) (Ctrl-C again to stop waiting)")
                deadline = Date().addingTimeInterval(cancelWait)
            }
            let left = deadline.timeIntervalSinceNow
            let next: ReceivedReply?
            do {
                // Short waits, so a Ctrl-C is seen within a tenth of a second.
                next = left > 0 ? try requester.nextReply(timeout: min(left, 0.1)) : nil
            } catch {
                Self.stderr("chatqueue: \(error)")
                throw ExitCode(cancelled ? Self.cancelledStatus : 1)
            }
            guard let reply = next else {
                if deadline.timeIntervalSinceNow > 0 { continue }
                printer.finishLine()
                if cancelled {
                    Self.stderr("chatqueue: cancelled request \(requestID); no cancelled reply within \(cancelWait) s")
                    throw ExitCode(Self.cancelledStatus)
                }
                Self.stderr("chatqueue: no final reply within \(timeout) s")
                throw ExitCode(3)
            }
            printer.print(reply)
            if reply.isFinal {
                printer.finishLine()
                if reply.type == "error" {
                    if Self.errorCode(reply.body) == "cancelled" {
                        Self.stderr("chatqueue: cancelled request \(requestID)")
                        throw ExitCode(Self.cancelledStatus)
                    }
                    if !json { Self.stderr("chatqueue: \(Self.errorMessage(reply.body))") }
                    throw ExitCode(1)
                }
                return
            }
        }
    }

    /// The `error.code` of an error reply.
    static func errorCode(_ body: [UInt8]) -> String? {
        (try? JSONValue(parsing: body))?["error"]?["code"]?.stringValue
    }

    private func requestBody() throws -> [UInt8] {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            return Array(data)
        }
        var messages: [JSONValue] = []
        if let system { messages.append(.object(["role": .string("system"), "content": .string(system)])) }
        messages.append(.object(["role": .string("user"), "content": .string(message ?? "")]))
        let request: JSONObject = [
            "model": .string(model), "messages": .array(messages), "stream": .bool(stream),
        ]
        return JSONValue.object(request).serialized()
    }

    static func errorMessage(_ body: [UInt8]) -> String {
        guard let value = try? JSONValue(parsing: body), let error = value["error"] else {
            return String(decoding: body, as: UTF8.self)
        }
        let message = error["message"]?.stringValue ?? "error"
        let code = error["code"]?.stringValue.map { " (\($0))" } ?? ""
        let status = value["status"]?.integerValue.map { "\($0) " } ?? ""
        return "\(status)\(message)\(code)"
    }

    static func stderr(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// Prints replies for a person (reasoning set apart from the answer, usage at
/// the end) or, with --json, one JSON line per reply message.
struct ReplyPrinter {
    let json: Bool
    private var section: Section = .none
    private var midLine = false
    private let styled = isatty(STDOUT_FILENO) != 0

    enum Section { case none, reasoning, content }

    init(json: Bool) { self.json = json }

    mutating func print(_ reply: ReceivedReply) {
        if json {
            printJSONLine(reply)
            return
        }
        guard let body = try? JSONValue(parsing: reply.body) else { return }
        switch reply.type {
        case "chat.completion.chunk":
            for choice in body["choices"]?.arrayValue ?? [] where (choice["index"]?.integerValue ?? 0) == 0 {
                if let text = choice["delta"]?["reasoning_content"]?.stringValue { write(text, in: .reasoning) }
                if let text = choice["delta"]?["content"]?.stringValue { write(text, in: .content) }
            }
        case "chat.completion":
            if section == .none, let message = body["choices"]?[0]?["message"] {
                // Non-stream (or nothing streamed): print the whole answer now.
                if let text = message["reasoning_content"]?.stringValue { write(text, in: .reasoning) }
                if let text = message["content"]?.stringValue { write(text, in: .content) }
            }
            finishLine()
            if let usage = body["usage"] {
                let prompt = usage["prompt_tokens"]?.integerValue ?? 0
                let completion = usage["completion_tokens"]?.integerValue ?? 0
                let total = usage["total_tokens"]?.integerValue ?? prompt + completion
                SendCommand.stderr("usage: prompt_tokens=\(prompt) completion_tokens=\(completion) total_tokens=\(total)")
            }
        default:
            break
        }
    }

    private mutating func write(_ text: String, in target: Section) {
        guard !text.isEmpty else { return }
        if target != section {
            finishLine()
            let heading = target == .reasoning ? "[reasoning]" : (section == .reasoning ? "[answer]" : nil)
            if let heading { FileHandle.standardOutput.write(Data((styled ? "\u{1B}[2m\(heading)\u{1B}[0m\n" : "\(heading)\n").utf8)) }
            section = target
        }
        let output = target == .reasoning && styled ? "\u{1B}[2m\(text)\u{1B}[0m" : text
        FileHandle.standardOutput.write(Data(output.utf8))
        midLine = !text.hasSuffix("\n")
    }

    mutating func finishLine() {
        if midLine && !json {
            FileHandle.standardOutput.write(Data("\n".utf8))
            midLine = false
        }
    }

    private func printJSONLine(_ reply: ReceivedReply) {
        var headers = JSONObject()
        for (key, value) in reply.headers.sorted(by: { $0.key < $1.key }) {
            switch value {
            case .string(let text): headers[key] = .string(text)
            case .int(let number): headers[key] = .number(String(number))
            case .unsigned(let number): headers[key] = .number(String(number))
            case .bool(let flag): headers[key] = .bool(flag)
            case .double(let number): headers[key] = .number(String(number))
            case .other: headers[key] = .null
            }
        }
        let body = (try? JSONValue(parsing: reply.body)) ?? .string(String(decoding: reply.body, as: UTF8.self))
        let line: JSONObject = [
            "type": .string(reply.type),
            "correlation_id": reply.correlationID.map { .string($0) } ?? .null,
            "headers": .object(headers),
            "body": body,
        ]
        FileHandle.standardOutput.write(Data(JSONValue.object(line).serialized() + [UInt8(ascii: "\n")]))
    }
}
