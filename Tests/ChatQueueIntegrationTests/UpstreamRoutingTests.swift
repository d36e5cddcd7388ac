import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// Several upstreams (docs/operations.md "Several upstreams"): a real worker
/// with two mock upstreams on their own ports, routing by the request's model.
@Suite("Several upstreams: routing by model, the model rename, model_not_found, check-config", .serialized)
struct UpstreamRoutingTests {
    /// Two mocks, `main` and `proxy`, and a worker routing between them.
    final class TwoUpstreams: @unchecked Sendable {
        let main: MockUpstream
        let proxy: MockUpstream
        let harness: IntegrationHarness

        static let routes = "deepseek-chat -> proxy=DeepSeek-V3 main,deepseek-* -> main,qwen* -> proxy"

        init() async throws {
            main = try await MockUpstream.start(MockUpstreamOptions())
            proxy = try await MockUpstream.start(MockUpstreamOptions())
            // The harness's own mock stays unused: upstream.url is not used once upstreams are named.
            harness = try await IntegrationHarness.start(
                "routing",
                settings: [
                    "upstreams.names": "main,proxy",
                    "upstreams.main.url": main.baseURL,
                    "upstreams.proxy.url": proxy.baseURL,
                    "upstreams.proxy.headers": "X-Route-Test: proxy-1",
                    "upstreams.routes": Self.routes,
                ])
        }

        func shutdown() async throws {
            _ = try await harness.shutdown()
            try? await main.shutdown()
            try? await proxy.shutdown()
        }
    }

    private func completion(_ replies: [ReceivedReply]) throws -> JSONObject {
        let final = try #require(replies.last)
        #expect(final.type == "chat.completion", "\(final.text)")
        return try #require(final.json?.objectValue)
    }

    @Test("exact names and patterns reach the right upstream; the rename reaches it; other bodies are unchanged")
    func routing() async throws {
        let upstreams = try await TwoUpstreams()
        // An exact route: its first upstream, with the model renamed and the static header sent.
        _ = try completion(try upstreams.harness.exchange(json: chatRequest(model: "deepseek-chat")))
        let renamed = try #require(upstreams.proxy.recordedRequests().last)
        #expect(upstreams.main.recordedRequests().isEmpty)
        let sent = try #require(try JSONValue(parsing: renamed.body).objectValue)
        #expect(sent["model"] == .string("DeepSeek-V3"))
        #expect(sent["messages"] == (try JSONValue(parsing: chatRequest(model: "deepseek-chat")).objectValue?["messages"]))
        #expect(renamed.header("X-Route-Test") == "proxy-1")
        // A pattern route: the body forwarded byte for byte, no header of another upstream.
        let body = chatRequest(model: "deepseek-reasoner")
        _ = try completion(try upstreams.harness.exchange(json: body))
        let forwarded = try #require(upstreams.main.recordedRequests().last)
        #expect(forwarded.bodyText == body)
        #expect(forwarded.header("X-Route-Test") == nil)
        // A later pattern route to the other upstream.
        _ = try completion(try upstreams.harness.exchange(json: chatRequest(model: "qwen2.5", stream: true)))
        #expect(upstreams.proxy.recordedRequests().count == 2)
        #expect(upstreams.proxy.recordedRequests().last?.bodyText == chatRequest(model: "qwen2.5", stream: true))
        #expect(upstreams.main.recordedRequests().count == 1)
        #expect(upstreams.harness.mock.recordedRequests().isEmpty, "upstream.url is not called")
        try await upstreams.shutdown()
    }

    @Test("a model no route matches is answered model_not_found, acknowledged, without any call")
    func noRoute() async throws {
        let upstreams = try await TwoUpstreams()
        let replies = try upstreams.harness.exchange(json: chatRequest(model: "gpt-4o"))
        #expect(replies.count == 1)
        let error = try #require(replies.last?.json?.objectValue?["error"]?.objectValue)
        #expect(error["code"] == .string("model_not_found"))
        #expect(error["param"] == .string("model"))
        #expect(upstreams.main.recordedRequests().isEmpty && upstreams.proxy.recordedRequests().isEmpty)
        #expect(try upstreams.harness.waitForMessageCount(upstreams.harness.deadLetterQueue, toBe: 0, timeout: 1) == 0)
        try await upstreams.shutdown()
    }

    @Test("check-config prints both upstreams and the resolved routing table")
    func checkConfig() throws {
        let process = Process()
        process.executableURL = IntegrationEnvironment.executable
        process.arguments = [
            "check-config", "--set", "upstreams.names=main,proxy", "--set", "upstreams.main.url=http://127.0.0.1:1",
            "--set", "upstreams.proxy.url=http://127.0.0.1:2/v1", "--set", "upstreams.proxy.api_key=sk-never-shown",
            "--set", "upstreams.routes=" + TwoUpstreams.routes,
        ]
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHATQUEUE_") }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("check-config-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        process.standardOutput = try FileHandle(forWritingTo: output)
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let text = try String(contentsOf: output, encoding: .utf8)
        #expect(text.contains("upstreams:\n  names: [\"main\", \"proxy\"]\n  main:\n    url: \"http://127.0.0.1:1\""))
        #expect(text.contains("  proxy:\n    url: \"http://127.0.0.1:2/v1\"\n    api_key: \"<redacted>\""))
        #expect(!text.contains("sk-never-shown"))
        #expect(
            text.hasSuffix(
                """
                # Routing table (first match wins; a model matching none is answered model_not_found):
                #   deepseek-chat -> proxy (model "DeepSeek-V3"), main
                #   deepseek-* -> main
                #   qwen* -> proxy

                """), "\(text)")

        // A route naming an unknown upstream: exit 1, the key named.
        let bad = Process()
        bad.executableURL = IntegrationEnvironment.executable
        bad.arguments = [
            "check-config", "--set", "upstreams.names=main", "--set", "upstreams.main.url=http://127.0.0.1:1",
            "--set", "upstreams.routes=* -> mian",
        ]
        bad.environment = process.environment
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("check-config-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errors) }
        bad.standardError = try FileHandle(forWritingTo: errors)
        bad.standardOutput = bad.standardError
        try bad.run()
        bad.waitUntilExit()
        #expect(bad.terminationStatus != 0)
        let message = try String(contentsOf: errors, encoding: .utf8)
        #expect(message.contains("upstreams.routes") && message.contains("unknown upstream \"mian\""), "\(message)")
    }
}
