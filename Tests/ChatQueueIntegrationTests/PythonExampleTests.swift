import ChatQueueMockUpstream
import Foundation
import Testing

/// Runs examples/python/chat_request.py (pika) against a real worker, so the
/// example stays a working requester of the contract, cancelling included. CI installs python3-pika;
/// without it these tests fail rather than skip.
@Suite("Python example", .serialized)
struct PythonExampleTests {
    static let python = "/usr/bin/python3"

    /// The repository root: this file is Tests/ChatQueueIntegrationTests/PythonExampleTests.swift.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var script: String { repositoryRoot.appendingPathComponent("examples/python/chat_request.py").path }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `python3 arguments...`, killing it after `timeout` seconds.
    static func run(_ arguments: [String], timeout: Double = 60) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        // Files, not pipes: nothing can block on a full pipe while we wait.
        let directory = FileManager.default.temporaryDirectory
        let outURL = directory.appendingPathComponent("python-example-\(UUID().uuidString).out")
        let errURL = directory.appendingPathComponent("python-example-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        process.standardOutput = outHandle
        process.standardError = errHandle
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        return Run(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// Fails the test (does not skip it) when /usr/bin/python3 cannot import pika.
    static func requirePika() throws {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TestFailure("\(python) not found: install python3 and python3-pika (apt install python3-pika)")
        }
        let check = try run(["-c", "import pika"])
        guard check.status == 0 else {
            throw TestFailure(
                "\(python) cannot import pika; install it (apt install python3-pika, or pip install pika): \(check.stderr)")
        }
    }

    /// The script's arguments against `harness`.
    static func arguments(_ harness: IntegrationHarness, _ extra: [String]) -> [String] {
        [script, "--url", IntegrationEnvironment.brokerURL, "--queue", harness.queue] + extra
    }

    @Test("stream mode prints the chunks and the usage, exits 0")
    func streamMode() async throws {
        try Self.requirePika()
        let harness = try await IntegrationHarness.start("pystream")
        let result = try Self.run(Self.arguments(harness, ["--stream", "hello from python"]))
        #expect(result.status == 0, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        #expect(result.stdout.contains("Echo: hello from python"), "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        #expect(result.stdout.contains("usage: prompt_tokens="), "stdout:\n\(result.stdout)")
        let recorded = harness.mock.recordedRequests()
        #expect(recorded.count == 1)
        #expect(recorded.first?.bodyText.contains(#""stream": true"#) == true, "\(recorded.first?.bodyText ?? "")")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("non-stream mode prints the answer and the usage, exits 0")
    func nonStreamMode() async throws {
        try Self.requirePika()
        let harness = try await IntegrationHarness.start("pynonstream")
        let result = try Self.run(Self.arguments(harness, ["--no-stream", "one answer please"]))
        #expect(result.status == 0, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        #expect(result.stdout.contains("Echo: one answer please"), "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        #expect(result.stdout.contains("usage: prompt_tokens="), "stdout:\n\(result.stdout)")
        let recorded = harness.mock.recordedRequests()
        #expect(recorded.count == 1)
        #expect(recorded.first?.bodyText.contains(#""stream": false"#) == true, "\(recorded.first?.bodyText ?? "")")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("an error reply is printed on stderr and exits 1")
    func errorReply() async throws {
        try Self.requirePika()
        let harness = try await IntegrationHarness.start("pyerror")
        let result = try Self.run(Self.arguments(harness, ["--extra", #"{"mock":{"status":402}}"#, "pay me"]))
        #expect(result.status == 1, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        #expect(result.stderr.contains("402"), "stderr:\n\(result.stderr)")
        #expect(result.stderr.contains("Insufficient Balance"), "stderr:\n\(result.stderr)")
        #expect(try await harness.shutdown() == 0)
    }

    /// The request id the script printed when it cancelled ("cancelling request <id>").
    static func cancelledRequestID(_ stderr: String) -> String? {
        guard let range = stderr.range(of: "cancelling request ") else { return nil }
        return stderr[range.upperBound...].split(whereSeparator: { $0 == "\n" || $0 == " " }).first.map(String.init)
    }

    /// A long, slow stream the script cancels after its second chunk.
    static let slowStream = #"{"mock":{"words":400,"interval_ms":50}}"#

    @Test("--cancel-after publishes {\"request_id\": message_id} as application/json to the cancel exchange; exit 130")
    func cancelPublishesTheMessage() async throws {
        try Self.requirePika()
        let observer = try CancelObserver()
        let harness = try await IntegrationHarness.start("pycancel", settings: ["worker.shutdown_grace": "1"])
        let result = try Self.run(
            Self.arguments(harness, ["--cancel-after", "2", "--cancel-wait", "3", "--extra", Self.slowStream, "stop"]))
        #expect(result.status == 130, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        let requestID = try #require(Self.cancelledRequestID(result.stderr), "stderr:\n\(result.stderr)")
        let message = try #require(try observer.message(for: requestID), "no cancel message for \(requestID)")
        #expect(message.contentType == "application/json")
        #expect(message.json == ["request_id": .string(requestID)])
        #expect(harness.mock.recordedRequests().count == 1)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("Ctrl-C publishes the cancel message too")
    func interruptPublishesTheMessage() async throws {
        try Self.requirePika()
        let observer = try CancelObserver()
        let harness = try await IntegrationHarness.start("pyinterrupt", settings: ["worker.shutdown_grace": "1"])
        let client = try ClientProcess(
            executable: Self.python,
            arguments: Self.arguments(harness, ["--cancel-wait", "3", "--extra", Self.slowStream, "stop"]),
            directory: Self.repositoryRoot)
        #expect(client.waitForOutput { $0.contains("w2") }, "stdout:\n\(client.stdout)\nstderr:\n\(client.stderr)")
        client.interrupt()
        let status = client.wait()
        #expect(status == 130, "stdout:\n\(client.stdout)\nstderr:\n\(client.stderr)")
        let requestID = try #require(Self.cancelledRequestID(client.stderr), "stderr:\n\(client.stderr)")
        let message = try #require(try observer.message(for: requestID), "no cancel message for \(requestID)")
        #expect(message.json == ["request_id": .string(requestID)])
        #expect(try await harness.shutdown() == 0)
    }

    /// Needs the worker's side of cancellation (issue 11, points 1-3).
    @Test("--cancel-after 2: the worker answers cancelled, the script says so and exits 130")
    func cancelledFinal() async throws {
        try Self.requirePika()
        let harness = try await IntegrationHarness.start("pycancelled", settings: ["worker.shutdown_grace": "1"])
        let result = try Self.run(
            Self.arguments(harness, ["--cancel-after", "2", "--cancel-wait", "5", "--extra", Self.slowStream, "stop"]))
        #expect(result.status == 130, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        let requestID = try #require(Self.cancelledRequestID(result.stderr), "stderr:\n\(result.stderr)")
        #expect(result.stderr.contains("cancelled request \(requestID) after"), "stderr:\n\(result.stderr)")
        #expect(!result.stderr.contains("no cancelled reply"), "stderr:\n\(result.stderr)")
        #expect(!result.stdout.contains("w400"), "the stream stopped early")
        #expect(try await harness.shutdown() == 0)
    }

    @Test("no final reply within --timeout exits 3")
    func timeout() async throws {
        try Self.requirePika()
        let harness = try await IntegrationHarness.start("pytimeout")
        let result = try Self.run(
            Self.arguments(harness, ["--timeout", "1", "--extra", #"{"mock":{"first_byte_delay_ms":2500}}"#, "too slow"]))
        #expect(result.status == 3, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        #expect(result.stderr.contains("no final reply"), "stderr:\n\(result.stderr)")
        #expect(try await harness.shutdown() == 0)
    }
}
