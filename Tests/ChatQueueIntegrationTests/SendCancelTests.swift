import ChatQueueAMQP
import ChatQueueCore
import Foundation
import Testing

/// Listens on the cancel exchange the way a worker does (a queue of its own
/// bound to the fanout exchange), so a test sees exactly what a requester
/// published there. The exchange is declared as workers declare it (fanout,
/// durable) and left in place: workers share it.
final class CancelObserver {
    let requester: Requester

    init(exchange: String = "chat.requests.cancel") throws {
        requester = try Requester(options: IntegrationEnvironment.brokerOptions(name: "test cancel observer"))
        try requester.connection.declareExchange(exchange, type: "fanout", durable: true)
        try requester.connection.bindQueue(requester.replyTo, exchange: exchange)
    }

    /// The cancel message naming `requestID` (others' cancels are skipped), or
    /// nil when none arrives within `timeout` seconds.
    func message(for requestID: String, timeout: Double = 10) throws -> ReceivedReply? {
        let deadline = Date().addingTimeInterval(timeout)
        while deadline.timeIntervalSinceNow > 0 {
            guard let message = try requester.nextReply(timeout: deadline.timeIntervalSinceNow) else { return nil }
            if message.json?["request_id"]?.stringValue == requestID { return message }
        }
        return nil
    }

    deinit { requester.connection.close() }
}

/// A client process whose output goes to files, which a test can interrupt
/// (SIGINT) once its output shows something.
final class ClientProcess {
    let process = Process()
    private let outURL: URL
    private let errURL: URL

    init(executable: String, arguments: [String], directory: URL? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHATQUEUE_") }
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("client-\(UUID().uuidString)")
        outURL = base.appendingPathExtension("out")
        errURL = base.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        // A child inherits the spawning thread's signal mask, and the threads async tests run on
        // block SIGINT: start the client with it deliverable, as a shell does.
        var interrupt = sigset_t()
        sigemptyset(&interrupt)
        sigaddset(&interrupt, SIGINT)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_UNBLOCK, &interrupt, &previousMask)
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        try process.run()
    }

    var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

    /// Waits until `condition` holds for stdout (or the process ended, or `timeout` passed).
    func waitForOutput(timeout: Double = 30, until condition: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(stdout) { return true }
            if !process.isRunning { return condition(stdout) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    func interrupt() { kill(process.processIdentifier, SIGINT) }

    /// Waits for the exit (SIGKILL after `timeout` seconds); returns the status.
    func wait(timeout: Double = 30) -> Int32 {
        waitForExit(process, timeout: timeout)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
}

/// `chatqueue send` cancels its request on Ctrl-C (docs/protocol.md,
/// "Cancelling a request"; README, `chatqueue send`).
@Suite("chatqueue send: Ctrl-C cancels the request", .serialized)
struct SendCancelTests {
    /// A long, slow stream, so Ctrl-C comes while it runs.
    static func slowStreamFile() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("send-cancel-\(UUID().uuidString).json")
        try Data(chatRequest("cancel me", stream: true, mock: #"{"words":400,"interval_ms":50}"#).utf8).write(to: url)
        return url
    }

    /// `chatqueue send --json` against `harness`, interrupted after its first chunk.
    static func sendAndInterrupt(_ harness: IntegrationHarness) throws -> (client: ClientProcess, status: Int32) {
        let file = try slowStreamFile()
        defer { try? FileManager.default.removeItem(at: file) }
        let client = try ClientProcess(
            executable: IntegrationEnvironment.executable.path,
            arguments: [
                "send", "--broker-url", IntegrationEnvironment.brokerURL, "--queue", harness.queue, "--json",
                "--cancel-wait", "3", "--file", file.path,
            ])
        let sawChunk = client.waitForOutput { $0.contains(#""type":"chat.completion.chunk""#) }
        #expect(sawChunk, "stdout:\n\(client.stdout)\nstderr:\n\(client.stderr)")
        client.interrupt()
        return (client, client.wait())
    }

    /// The JSON lines `--json` printed, one per reply.
    static func replies(_ stdout: String) -> [JSONValue] {
        stdout.split(separator: "\n").compactMap { try? JSONValue(parsing: Array($0.utf8)) }
    }

    @Test("Ctrl-C publishes {\"request_id\": x-request-id} as application/json to the cancel exchange; exit 130")
    func publishesTheCancelMessage() async throws {
        let observer = try CancelObserver()
        let harness = try await IntegrationHarness.start("sendcancel", settings: ["worker.shutdown_grace": "1"])
        let (client, status) = try Self.sendAndInterrupt(harness)
        #expect(status == SendCancelTestsExit.cancelled, "stdout:\n\(client.stdout)\nstderr:\n\(client.stderr)")
        let requestID = try #require(
            Self.replies(client.stdout).first?["headers"]?["x-request-id"]?.stringValue, "\(client.stdout)")
        #expect(client.stderr.contains("cancelling request \(requestID)"), "\(client.stderr)")
        let message = try #require(try observer.message(for: requestID), "no cancel message for \(requestID)")
        #expect(message.contentType == "application/json")
        #expect(message.json == ["request_id": .string(requestID)])
        #expect(message.text == #"{"request_id":"\#(requestID)"}"#)
        #expect(try await harness.shutdown() == 0)
    }

    /// Needs the worker's side of cancellation (issue 11, points 1-3).
    @Test("Ctrl-C mid-stream: the chunks, then one cancelled final (499, not retryable); exit 130")
    func receivesTheCancelledFinal() async throws {
        let harness = try await IntegrationHarness.start("sendcancelled", settings: ["worker.shutdown_grace": "1"])
        let (client, status) = try Self.sendAndInterrupt(harness)
        #expect(status == SendCancelTestsExit.cancelled, "stdout:\n\(client.stdout)\nstderr:\n\(client.stderr)")
        let replies = Self.replies(client.stdout)
        let final = try #require(replies.last)
        #expect(final["type"]?.stringValue == "error", "\(client.stdout)")
        #expect(final["body"]?["error"]?["code"]?.stringValue == "cancelled")
        #expect(final["body"]?["error"]?["type"]?.stringValue == "cancelled")
        #expect(final["body"]?["status"]?.integerValue == 499)
        #expect(final["body"]?["retryable"]?.boolValue == false)
        #expect(replies.dropLast().allSatisfy { $0["type"]?.stringValue == "chat.completion.chunk" })
        #expect(replies.count < 400, "the stream stopped early")
        #expect(
            replies.enumerated().allSatisfy { index, reply in reply["headers"]?["x-seq"]?.integerValue == index })
        #expect(client.stderr.contains("cancelled request"), "\(client.stderr)")
        #expect(!client.stderr.contains("no cancelled reply"), "\(client.stderr)")
        #expect(try await harness.shutdown() == 0)
    }
}

enum SendCancelTestsExit {
    /// `chatqueue send` and the Python example: cancelled (128 + SIGINT).
    static let cancelled: Int32 = 130
}
