import ChatQueueAMQP
import ChatQueueCore
import Foundation
import Testing

/// Token accounting (docs/operations.md, "Token accounting") seen the way an
/// operator sees it: requests through a real worker, then the metrics
/// textfile and the status file.
@Suite("Token accounting in the metrics and the status file", .serialized)
struct TokenAccountingTests {
    /// The `usage` of a final chat.completion reply.
    private static func usage(of replies: [ReceivedReply]) throws -> TokenUsage {
        let final = try #require(replies.last)
        #expect(final.type == "chat.completion", "\(final.text)")
        return try #require(final.json?["usage"].flatMap(TokenUsage.init(usage:)), "\(final.text)")
    }

    private static func chunkCount(_ replies: [ReceivedReply]) -> Int {
        replies.filter { $0.type == "chat.completion.chunk" }.count
    }

    /// The deepseek-chat stream's `chunks` are counted under `ending`, and no completion tokens at all.
    private static func expectChunksWithoutUsage(_ chunks: Int, ending: String, of harness: IntegrationHarness) async throws {
        let chat = #"upstream="default",model="deepseek-chat""#
        let counted = try await harness.worker.waitForMetric(
            "chatqueue_chunks_without_usage_total", chat + #",ending="\#(ending)""#, atLeast: chunks, timeout: 10)
        #expect(counted == chunks)
        #expect((harness.worker.metric("chatqueue_usage_tokens_total", chat + #",kind="completion""#) ?? 0) == 0)
    }

    /// The status file's `usage.by_model` entry for `model`.
    private static func statusEntry(_ status: JSONValue?, model: String) -> JSONValue? {
        status?["usage"]?["by_model"]?.arrayValue?.first { $0["model"]?.stringValue == model }
    }

    @Test("tokens per model from a stream's last chunk and a document; chunks of streams that ended without usage")
    func tokensAndChunksWithoutUsage() async throws {
        let harness = try await IntegrationHarness.start(
            "tokens", settings: ["upstream.idle_timeout": "0.3", "retry.max_attempts": "1"])

        // A stream with usage in its last chunk (DeepSeek) and a non-stream document with usage.
        let streamed = try harness.exchange(json: chatRequest("one two three four", stream: true))
        let streamedUsage = try Self.usage(of: streamed)
        #expect(Self.chunkCount(streamed) >= 3)
        let document = try harness.exchange(json: chatRequest("a document please", model: "deepseek-reasoner"))
        let documentUsage = try Self.usage(of: document)
        #expect(Self.chunkCount(document) == 0)

        // A stream the upstream breaks after two words: its chunks reached the
        // requester, its usage never came.
        let broken = try harness.exchange(json: chatRequest("w w w w w w", stream: true, mock: #"{"drop_after":2}"#))
        #expect(broken.last?.json?["error"]?["code"]?.stringValue == "stream_interrupted", "\(broken.last?.text ?? "")")
        let brokenChunks = Self.chunkCount(broken)
        #expect(brokenChunks >= 2)

        // A stream the worker stops (idle timeout) after its first chunk.
        let stalled = try harness.exchange(
            json: chatRequest("x y z", stream: true, mock: #"{"interval_ms":20000}"#), timeout: 10)
        #expect(stalled.last?.json?["error"]?["code"]?.stringValue == "idle_timeout", "\(stalled.last?.text ?? "")")
        let stalledChunks = Self.chunkCount(stalled)
        #expect(stalledChunks >= 1)

        // A model name no label may carry.
        let hostile = try harness.exchange(json: chatRequest("who", model: "evil model {}"))
        let hostileUsage = try Self.usage(of: hostile)

        let chat = #"upstream="default",model="deepseek-chat""#
        let reasoner = #"upstream="default",model="deepseek-reasoner""#
        let other = #"upstream="default",model="other""#
        let worker = harness.worker
        try await worker.waitForMetric(
            "chatqueue_usage_tokens_total", other + #",kind="prompt""#, atLeast: hostileUsage.prompt, timeout: 10)
        try await worker.waitForMetric(
            "chatqueue_chunks_without_usage_total", chat + #",ending="stopped""#, atLeast: stalledChunks, timeout: 10)

        #expect(worker.metric("chatqueue_usage_tokens_total", chat + #",kind="prompt""#) == streamedUsage.prompt)
        #expect(worker.metric("chatqueue_usage_tokens_total", chat + #",kind="completion""#) == streamedUsage.completion)
        #expect(worker.metric("chatqueue_usage_tokens_total", reasoner + #",kind="prompt""#) == documentUsage.prompt)
        #expect(
            worker.metric("chatqueue_usage_tokens_total", reasoner + #",kind="completion""#) == documentUsage.completion)
        #expect(worker.metric("chatqueue_usage_tokens_total", other + #",kind="prompt""#) == hostileUsage.prompt)
        #expect(worker.metric("chatqueue_chunks_without_usage_total", chat + #",ending="failed""#) == brokenChunks)
        #expect(worker.metric("chatqueue_chunks_without_usage_total", chat + #",ending="stopped""#) == stalledChunks)
        #expect(worker.metric("chatqueue_chunks_without_usage_total", chat + #",ending="completed""#) == 0)
        #expect(worker.metric("chatqueue_chunks_without_usage_total", reasoner + #",ending="failed""#) == 0)
        #expect(streamedUsage.prompt > 0 && streamedUsage.completion > 0 && documentUsage.completion > 0)

        // The status file says the same.
        let status = try await worker.waitForStatus(timeout: 10) { status in
            Self.statusEntry(status, model: "deepseek-chat")?["chunks_without_usage"]?.integerValue
                == brokenChunks + stalledChunks
        }
        let chatEntry = Self.statusEntry(status, model: "deepseek-chat")
        #expect(chatEntry?["upstream"]?.stringValue == "default")
        #expect(chatEntry?["prompt_tokens"]?.integerValue == streamedUsage.prompt)
        #expect(chatEntry?["completion_tokens"]?.integerValue == streamedUsage.completion)
        #expect(chatEntry?["chunks_without_usage"]?.integerValue == brokenChunks + stalledChunks)
        let reasonerEntry = Self.statusEntry(status, model: "deepseek-reasoner")
        #expect(reasonerEntry?["completion_tokens"]?.integerValue == documentUsage.completion)
        #expect(reasonerEntry?["chunks_without_usage"]?.integerValue == 0)
        #expect(Self.statusEntry(status, model: "other")?["prompt_tokens"]?.integerValue == hostileUsage.prompt)
        #expect(
            status?["usage"]?["prompt_tokens"]?.integerValue
                == streamedUsage.prompt + documentUsage.prompt + hostileUsage.prompt)
        #expect(status?["usage"]?["chunks_without_usage"]?.integerValue == brokenChunks + stalledChunks)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("a stream that ends without usage (OpenAI without stream_options.include_usage): its chunks count as completed")
    func streamWithoutUsage() async throws {
        let harness = try await IntegrationHarness.start("toknousage")
        let replies = try harness.exchange(
            json: chatRequest("one two three", stream: true, mock: #"{"no_stream_usage":true}"#))
        #expect(replies.last?.type == "chat.completion", "\(replies.last?.text ?? "")")
        #expect(replies.last?.json?["usage"] == nil || replies.last?.json?["usage"] == .null)
        let chunks = Self.chunkCount(replies)
        #expect(chunks >= 3)
        try await Self.expectChunksWithoutUsage(chunks, ending: "completed", of: harness)
        #expect(try await harness.shutdown() == 0)
    }

    /// Needs the worker's side of cancellation (issue 11, points 1-3).
    @Test("a cancelled stream: its chunks count as stopped, without usage")
    func cancelledStream() async throws {
        let harness = try await IntegrationHarness.start("tokcancel", settings: ["worker.shutdown_grace": "1"])
        let requestID = "tokcancel-\(UUID().uuidString)"
        try harness.requester.send(
            to: harness.queue, body: Array(chatRequest("long", stream: true, mock: #"{"words":400,"interval_ms":20}"#).utf8),
            messageID: requestID)
        var replies: [ReceivedReply] = []
        while replies.count < 3, let reply = try harness.requester.nextReply(timeout: 10) { replies.append(reply) }
        try harness.requester.cancel(requestID: requestID, exchange: "chat.requests.cancel")
        replies += try harness.collectReplies()
        #expect(replies.last?.json?["error"]?["code"]?.stringValue == "cancelled", "\(replies.last?.text ?? "")")
        let chunks = Self.chunkCount(replies)
        try await Self.expectChunksWithoutUsage(chunks, ending: "stopped", of: harness)
        #expect(try await harness.shutdown() == 0)
    }
}
