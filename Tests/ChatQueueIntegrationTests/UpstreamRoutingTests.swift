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

    // MARK: Fallback

    /// A worker whose only route is `* -> <names>`, the upstreams given by name and base URL.
    private func fallbackHarness(
        _ label: String, _ upstreams: [(String, String)], settings extra: [String: String] = [:]
    ) async throws -> IntegrationHarness {
        var settings = extra
        settings["upstreams.names"] = upstreams.map(\.0).joined(separator: ",")
        for (name, url) in upstreams { settings["upstreams.\(name).url"] = url }
        settings["upstreams.routes"] = "* -> " + upstreams.map(\.0).joined(separator: " ")
        settings["retry.base_delay"] = settings["retry.base_delay"] ?? "0.01"
        return try await IntegrationHarness.start(label, settings: settings)
    }

    /// A base URL nothing listens on: a mock's, after it shut down.
    private func closedPortURL() async throws -> String {
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let url = mock.baseURL
        try await mock.shutdown()
        return url
    }

    @Test("fallback before the first chunk: a closed port and a 503 upstream give way to the healthy one")
    func fallback() async throws {
        var failing = MockUpstreamOptions()
        failing.failEveryRequest = 503
        let down = try await MockUpstream.start(failing)
        let healthy = try await MockUpstream.start(MockUpstreamOptions())
        let closed = try await closedPortURL()
        let harness = try await fallbackHarness(
            "fallback", [("closed", closed), ("down", down.baseURL), ("healthy", healthy.baseURL)])
        let replies = try harness.exchange(json: chatRequest("w1 w2", stream: true))
        let final = try #require(replies.last)
        #expect(final.type == "chat.completion", "\(final.text)")
        #expect(replies.count > 1, "the chunks of the healthy upstream's stream")
        #expect(down.recordedRequests().count == 1)
        #expect(healthy.recordedRequests().count == 1)
        // The accounting names the upstream that answered.
        let answered = try await harness.worker.waitForMetric(
            "chatqueue_usage_tokens_total", #"upstream="healthy",model="deepseek-chat",kind="prompt""#, atLeast: 1,
            timeout: 10)
        #expect((answered ?? 0) >= 1)
        #expect(harness.worker.metric("chatqueue_usage_tokens_total", #"upstream="default",model="deepseek-chat",kind="prompt""#) == nil)
        #expect(try await harness.shutdown() == 0)
        try await down.shutdown()
        try await healthy.shutdown()
    }

    @Test("every upstream failing: retry.max_attempts bounds the tries in total, the error names the last try's upstream")
    func allFailing() async throws {
        var failing = MockUpstreamOptions()
        failing.failEveryRequest = 503
        let down = try await MockUpstream.start(failing)
        let closed = try await closedPortURL()
        let harness = try await fallbackHarness(
            "fallback-all", [("down", down.baseURL), ("closed", closed)], settings: ["retry.max_attempts": "3"])
        let replies = try harness.exchange(json: chatRequest(), correlationID: "all-failing")
        #expect(replies.count == 1)
        // Tries: down, closed, down (wrapped around after the backoff).
        try expectErrorReply(
            try #require(replies.last),
            ExpectedError(
                status: 503, type: "upstream_error", code: "service_unavailable", retryable: true, attempts: 3,
                upstreamStatus: 503),
            correlationID: "all-failing", upstream: "down")
        #expect(down.recordedRequests().count == 2)
        #expect(try await harness.shutdown() == 0)
        try await down.shutdown()
    }

    @Test("no fallback after a chunk: a stream broken after its first chunks is stream_interrupted from its upstream")
    func noFallbackAfterChunk() async throws {
        let first = try await MockUpstream.start(MockUpstreamOptions())
        let second = try await MockUpstream.start(MockUpstreamOptions())
        let harness = try await fallbackHarness("fallback-chunk", [("first", first.baseURL), ("second", second.baseURL)])
        let replies = try harness.exchange(
            json: chatRequest("w w w w w w", stream: true, mock: #"{"drop_after":2}"#), correlationID: "broken")
        let final = try #require(replies.last)
        #expect(replies.count > 1, "chunks came before the error")
        let body = try #require(final.json?.objectValue)
        #expect(body["error"]?["code"]?.stringValue == "stream_interrupted", "\(final.text)")
        #expect(body["upstream"] == .string("first"))
        #expect(body["attempts"] == .number("1"))
        #expect(first.recordedRequests().count == 1)
        #expect(second.recordedRequests().isEmpty, "never switched after a chunk")
        #expect(try await harness.shutdown() == 0)
        try await first.shutdown()
        try await second.shutdown()
    }
}
