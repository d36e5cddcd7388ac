import ChatQueueAMQP
import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

/// The main path of the contract through a real broker and a real worker process.
@Suite("Worker happy paths", .serialized)
struct HappyPathTests {
    @Test("non-stream request gets exactly one chat.completion, field by field")
    func nonStream() async throws {
        let harness = try await IntegrationHarness.start("nonstream")
        let replies = try harness.exchange(
            json: #"{"model":"deepseek-chat","messages":[{"role":"user","content":"hello world"}]}"#,
            correlationID: "corr-nonstream")
        #expect(replies.count == 1)
        let reply = try #require(replies.first)
        #expect(reply.type == "chat.completion")
        #expect(reply.contentType == "application/json")
        #expect(reply.correlationID == "corr-nonstream")
        #expect(reply.deliveryMode == 2)
        #expect(reply.requestID == "corr-nonstream")
        #expect(reply.seq == 0)
        #expect(reply.attempt == 1)
        let body = try #require(reply.json)
        #expect(body["object"]?.stringValue == "chat.completion")
        #expect(body["model"]?.stringValue == "deepseek-chat")
        #expect(body["choices"]?[0]?["message"]?["role"]?.stringValue == "assistant")
        #expect(body["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: hello world")
        #expect(body["choices"]?[0]?["finish_reason"]?.stringValue == "stop")
        #expect(body["usage"]?["total_tokens"]?.integerValue != nil)
        #expect(try await harness.shutdown() == 0)
    }

    @Test("stream request gets its chunks in order, then the assembled chat.completion")
    func stream() async throws {
        let harness = try await IntegrationHarness.start("stream")
        let replies = try harness.exchange(
            json: #"{"model":"deepseek-chat","messages":[{"role":"user","content":"one two three"}],"stream":true}"#,
            correlationID: "corr-stream")
        let chunks = replies.dropLast()
        let final = try #require(replies.last)
        #expect(chunks.count >= 4)
        var streamed = ""
        for (index, chunk) in chunks.enumerated() {
            #expect(chunk.type == "chat.completion.chunk")
            #expect(chunk.deliveryMode == 1)
            #expect(chunk.correlationID == "corr-stream")
            #expect(chunk.seq == Int64(index))
            #expect(chunk.attempt == 1)
            let body = try #require(chunk.json)
            #expect(body["object"]?.stringValue == "chat.completion.chunk")
            streamed += body["choices"]?[0]?["delta"]?["content"]?.stringValue ?? ""
        }
        #expect(streamed == "Echo: one two three")
        #expect(final.type == "chat.completion")
        #expect(final.deliveryMode == 2)
        #expect(final.seq == Int64(chunks.count))
        let body = try #require(final.json)
        #expect(body["object"]?.stringValue == "chat.completion")
        #expect(body["id"]?.stringValue?.hasPrefix("chatcmpl-") == true)
        #expect(body["system_fingerprint"]?.stringValue == "fp_mock")
        #expect(body["choices"]?[0]?["message"]?["content"]?.stringValue == "Echo: one two three")
        #expect(body["choices"]?[0]?["finish_reason"]?.stringValue == "stop")
        #expect(body["usage"]?["completion_tokens"]?.integerValue != nil)
        #expect(try await harness.shutdown() == 0)
    }
}
