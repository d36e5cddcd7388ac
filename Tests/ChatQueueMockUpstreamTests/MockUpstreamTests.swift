// Tests of the mock upstream itself: the bytes it sends must look like
// DeepSeek's, or every test built on top of it proves nothing.
//
// They talk raw HTTP/1.1 over a socket so framing is visible: a chunked body
// that ends without its terminator (drop_after) is exactly what we assert on.

import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Mock upstream")
struct MockUpstreamTests {
    // MARK: Non-streaming

    @Test("a non-streaming reply echoes the last user message")

    func nonStreamingReplyEchoesTheLastUserMessage() async throws {
        let response = try await post(#"{"model":"deepseek-chat","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}]}"#)
        #expect(response.status == 200)
        #expect(response.header("content-type") == "application/json")
        #expect(response.header("content-length") == String(response.body.count))
        let body = try response.jsonObject()
        #expect((body["id"]?.stringValue)?.hasPrefix("chatcmpl-") == true)
        #expect(body["object"]?.stringValue == "chat.completion")
        #expect(body["model"]?.stringValue == "deepseek-chat")
        #expect(body["system_fingerprint"]?.stringValue == "fp_mock")
        #expect(body["created"]?.integerValue != nil)
        let choice = try #require((body["choices"]?.arrayValue)?.first)
        #expect(choice["index"]?.integerValue == 0)
        #expect(choice["finish_reason"]?.stringValue == "stop")
        #expect(choice["logprobs"]?.isNull == true)
        let message = try #require(choice["message"]?.objectValue)
        #expect(message["role"]?.stringValue == "assistant")
        #expect(message["content"]?.stringValue == "Echo: hi there")
        #expect(message["reasoning_content"] == nil)
        let usage = try #require(body["usage"]?.objectValue)
        let prompt = try #require(usage["prompt_tokens"]?.integerValue)
        let completion = try #require(usage["completion_tokens"]?.integerValue)
        #expect(completion == 3)
        #expect(usage["total_tokens"]?.integerValue == prompt + completion)
    }

    @Test("array content: the text parts joined")

    func arrayContentJoinsTextParts() async throws {
        let response = try await post(#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"one"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"two"}]}]}"#)
        #expect(try response.messageContents() == ["Echo: one two"])
    }

    @Test("several choices are prefixed with their index")

    func severalChoicesArePrefixedWithTheirIndex() async throws {
        let response = try await post(#"{"model":"m","n":2,"messages":[{"role":"user","content":"x"}]}"#)
        #expect(try response.messageContents() == ["[0] Echo: x", "[1] Echo: x"])
    }

    @Test("reasoning models also return reasoning content")

    func reasoningModelsAlsoReturnReasoningContent() async throws {
        let response = try await post(#"{"model":"deepseek-reasoner","messages":[{"role":"user","content":"x"}]}"#)
        let body = try response.jsonObject()
        let choice = try #require((body["choices"]?.arrayValue)?.first)
        let message = try #require(choice["message"]?.objectValue)
        #expect((message["reasoning_content"]?.stringValue)?.isEmpty == false)
        #expect(message["content"]?.stringValue == "Echo: x")
    }

    @Test("words option and directive set the length")

    func wordsOptionAndDirectiveSetTheLength() async throws {
        var options = MockUpstreamOptions()
        options.words = 3
        try await withMock(options) { mock in
            let byOption = try MockRawHTTP.post(mock, json: #"{"model":"m","messages":[]}"#)
            #expect(try byOption.messageContents() == ["w1 w2 w3"])
            let byDirective = try MockRawHTTP.post(mock, json: #"{"model":"m","messages":[],"mock":{"words":5}}"#)
            #expect(try byDirective.messageContents() == ["w1 w2 w3 w4 w5"])
        }
    }

    @Test("pad_lines puts blank lines before the JSON")

    func padLinesPrecedeTheJSON() async throws {
        let response = try await post(#"{"model":"m","messages":[],"mock":{"pad_lines":3}}"#)
        #expect(response.bodyText.hasPrefix("\n\n\n{\"id\""))
    }

    @Test("a request with tools gets a tool call")

    func toolsGetAToolCall() async throws {
        let response = try await post(#"{"model":"m","messages":[{"role":"user","content":"rain?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}"#)
        let body = try response.jsonObject()
        let choice = try #require((body["choices"]?.arrayValue)?.first)
        #expect(choice["finish_reason"]?.stringValue == "tool_calls")
        let message = try #require(choice["message"]?.objectValue)
        let call = try #require((message["tool_calls"]?.arrayValue)?.first)
        #expect(call["id"]?.stringValue == "call_mock_0")
        let function = try #require(call["function"]?.objectValue)
        #expect(function["name"]?.stringValue == "get_weather")
        #expect(function["arguments"]?.stringValue == #"{"echo":"Echo: rain?"}"#)
    }

    // MARK: Streaming

    @Test("a stream follows DeepSeek's format")

    func streamFollowsDeepSeekFormat() async throws {
        let response = try await post(#"{"model":"deepseek-chat","messages":[{"role":"user","content":"hi there"}],"stream":true}"#)
        #expect(response.status == 200)
        #expect(response.header("content-type") == "text/event-stream")
        #expect(response.header("transfer-encoding") == "chunked")
        #expect(response.isComplete)
        #expect(response.bodyText.hasSuffix("data: [DONE]\n\n"))

        let chunks = try response.streamChunks()
        let first = try #require(chunks.first)
        #expect(first["object"]?.stringValue == "chat.completion.chunk")
        #expect(first["system_fingerprint"]?.stringValue == "fp_mock")
        let firstDelta = try #require(MockRawHTTP.delta(first))
        #expect(firstDelta["role"]?.stringValue == "assistant")
        #expect(firstDelta["content"]?.stringValue == "")

        let contents = chunks.dropFirst().compactMap { MockRawHTTP.delta($0)?["content"]?.stringValue }
        #expect(Array(contents) == ["Echo: ", "hi ", "there", ""])
        // Every chunk of a reply shares its id.
        #expect(Set(chunks.compactMap { $0["id"]?.stringValue }).count == 1)

        let last = try #require(chunks.last)
        let lastChoice = try #require((last["choices"]?.arrayValue)?.first)
        #expect(lastChoice["finish_reason"]?.stringValue == "stop")
        #expect((last["usage"]?.objectValue)?["completion_tokens"]?.integerValue == 3)
        #expect(chunks.dropLast().allSatisfy { $0["usage"] == nil })
    }

    @Test("stream of several choices interleaves them")

    func streamOfSeveralChoicesInterleavesThem() async throws {
        let response = try await post(#"{"model":"m","n":2,"messages":[{"role":"user","content":"a b"}],"stream":true}"#)
        var texts = ["", ""]
        var finished = 0
        for chunk in try response.streamChunks() {
            let choice = try #require((chunk["choices"]?.arrayValue)?.first)
            let index = try #require(choice["index"]?.integerValue)
            texts[index] += (choice["delta"]?.objectValue)?["content"]?.stringValue ?? ""
            if choice["finish_reason"]?.stringValue != nil { finished += 1 }
        }
        #expect(texts == ["[0] Echo: a b", "[1] Echo: a b"])
        #expect(finished == 2)
    }

    @Test("reasoner streams reasoning before content")

    func reasonerStreamsReasoningBeforeContent() async throws {
        let response = try await post(#"{"model":"deepseek-reasoner","messages":[{"role":"user","content":"x"}],"stream":true}"#)
        let deltas = try response.streamChunks().compactMap(MockRawHTTP.delta)
        let reasoning = deltas.compactMap { $0["reasoning_content"]?.stringValue }.joined()
        let content = deltas.compactMap { $0["content"]?.stringValue }.joined()
        #expect(reasoning == "Okay, the user wants me to echo their message.")
        #expect(content == "Echo: x")
        let firstContent = try #require(deltas.firstIndex { ($0["content"]?.stringValue)?.isEmpty == false })
        let lastReasoning = try #require(deltas.lastIndex { ($0["reasoning_content"]?.stringValue)?.isEmpty == false })
        #expect(lastReasoning < firstContent)
    }

    @Test("stream with tools sends tool call deltas")

    func streamWithToolsSendsToolCallDeltas() async throws {
        let response = try await post(#"{"model":"m","messages":[{"role":"user","content":"q"}],"stream":true,"tools":[{"type":"function","function":{"name":"lookup"}}]}"#)
        let chunks = try response.streamChunks()
        let calls = chunks.compactMap { (MockRawHTTP.delta($0)?["tool_calls"]?.arrayValue)?.first }
        #expect(calls.count == 4)
        #expect(calls.first?["id"]?.stringValue == "call_mock_0")
        #expect((calls.first?["function"]?.objectValue)?["name"]?.stringValue == "lookup")
        let arguments = calls.compactMap { ($0["function"]?.objectValue)?["arguments"]?.stringValue }.joined()
        #expect(arguments == #"{"echo":"Echo: q"}"#)
        let last = try #require((chunks.last?["choices"]?.arrayValue)?.first)
        #expect(last["finish_reason"]?.stringValue == "tool_calls")
    }

    // MARK: Errors

    @Test("402 is DeepSeek's Insufficient Balance body")

    func insufficientBalanceIsDeepSeeksBody() async throws {
        let response = try await post(#"{"model":"m","messages":[],"mock":{"status":402}}"#)
        #expect(response.status == 402)
        #expect(response.header("content-type") == "application/json")
        #expect(
            response.bodyText
                == #"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#
        )
    }

    @Test("the status directive answers with an OpenAI-shaped error", arguments: [
        (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
        (422, "invalid_request_error"), (429, "rate_limit_error"), (500, "server_error"), (503, "server_error"),
    ])
    func statusDirectiveAnswersWithOpenAIShapedError(status: Int, type: String) async throws {
        let response = try await post(#"{"model":"m","messages":[],"mock":{"status":\#(status)}}"#)
        #expect(response.status == status)
        let error = try #require(try response.jsonObject()["error"]?.objectValue)
        #expect(error["type"]?.stringValue == type)
        #expect(error["message"]?.stringValue != nil)
        #expect(error["code"]?.stringValue != nil)
        #expect(error["param"]?.isNull == true)
    }

    @Test("rate limit carries retry headers")

    func rateLimitCarriesRetryHeaders() async throws {
        let response = try await post(#"{"model":"m","messages":[],"mock":{"status":429,"retry_after":2,"retry_after_ms":1500}}"#)
        #expect(response.status == 429)
        #expect(response.header("retry-after") == "2")
        #expect(response.header("retry-after-ms") == "1500")
        let error = try #require(try response.jsonObject()["error"]?.objectValue)
        #expect(error["message"]?.stringValue == "Rate limit reached")
    }

    @Test("error body is sent verbatim")

    func errorBodyIsSentVerbatim() async throws {
        let response = try await post(#"{"model":"m","messages":[],"mock":{"status":502,"error_body":"<html>bad gateway</html>"}}"#)
        #expect(response.status == 502)
        #expect(response.bodyText == "<html>bad gateway</html>")
    }

    @Test("required API key is checked")

    func requiredAPIKeyIsChecked() async throws {
        var options = MockUpstreamOptions()
        options.requireAPIKey = "sk-test"
        try await withMock(options) { mock in
            let body = #"{"model":"m","messages":[]}"#
            let missing = try MockRawHTTP.post(mock, json: body)
            #expect(missing.status == 401)
            #expect(
                missing.bodyText
                    == #"{"error":{"message":"Authentication Fails (no such user)","type":"authentication_error","param":null,"code":"invalid_request_error"}}"#
            )
            let wrong = try MockRawHTTP.post(mock, json: body, headers: [("Authorization", "Bearer sk-nope")])
            #expect(wrong.status == 401)
            let right = try MockRawHTTP.post(mock, json: body, headers: [("Authorization", "Bearer sk-test")])
            #expect(right.status == 200)
        }
    }

    @Test("wrong path 404, wrong method 405, unparsable body 400, missing field 422")

    func routingAndParsingErrors() async throws {
        try await withMock { mock in
            let wrongPath = try MockRawHTTP.roundTrip(mock, method: "POST", path: "/completions", body: "{}")
            #expect(wrongPath.status == 404)
            #expect(try wrongPath.jsonObject()["error"]?.objectValue != nil)
            let wrongMethod = try MockRawHTTP.roundTrip(mock, method: "GET", path: "/chat/completions", body: nil)
            #expect(wrongMethod.status == 405)
            let unparsable = try MockRawHTTP.post(mock, json: #"{"model":"#)
            #expect(unparsable.status == 400)
            let error = try #require(try unparsable.jsonObject()["error"]?.objectValue)
            #expect(error["type"]?.stringValue == "invalid_request_error")
            #expect(error["code"]?.stringValue == "invalid_request_error")
            let missingMessages = try MockRawHTTP.post(mock, json: #"{"model":"m"}"#)
            #expect(missingMessages.status == 422)
            let versioned = try MockRawHTTP.roundTrip(mock, method: "POST", path: "/v1/chat/completions", body: #"{"model":"m","messages":[]}"#)
            #expect(versioned.status == 200)
        }
    }

    @Test("fail_first fails the first calls per key, then succeeds")

    func failFirstFailsThenSucceedsPerKey() async throws {
        try await withMock { mock in
            let body = #"{"model":"m","messages":[],"mock":{"fail_first":2,"key":"flaky-1"}}"#
            let statuses = try (0..<3).map { _ in try MockRawHTTP.post(mock, json: body).status }
            #expect(statuses == [503, 503, 200])
            #expect(mock.requestCount(key: "flaky-1") == 3)
            #expect(mock.requestCount(key: "other") == 0)

            let custom = #"{"model":"m","messages":[],"mock":{"fail_first":1,"key":"flaky-2","fail_status":429,"retry_after":1}}"#
            let first = try MockRawHTTP.post(mock, json: custom)
            #expect(first.status == 429)
            #expect(first.header("retry-after") == "1")
            #expect(try MockRawHTTP.post(mock, json: custom).status == 200)
        }
    }

    // MARK: Stream directives

    @Test("drop_after closes the stream without its terminator")

    func dropAfterClosesWithoutTerminator() async throws {
        let response = try await post(#"{"model":"m","messages":[{"role":"user","content":"a b c d"}],"stream":true,"mock":{"drop_after":2}}"#)
        #expect(response.status == 200)
        #expect(!response.isComplete)
        #expect(!response.bodyText.contains("[DONE]"))
        let contents = try response.streamChunks().compactMap { MockRawHTTP.delta($0)?["content"]?.stringValue }
        #expect(contents == ["", "Echo: ", "a "])
    }

    @Test("stream error sends an error event and ends")

    func streamErrorSendsAnErrorEventAndEnds() async throws {
        let response = try await post(#"{"model":"m","messages":[{"role":"user","content":"a b c d"}],"stream":true,"mock":{"stream_error":true}}"#)
        #expect(response.isComplete)
        let events = response.dataEvents
        #expect(!events.contains("[DONE]"))
        #expect(
            events.last
                == #"{"error":{"message":"Internal error during generation","type":"server_error","param":null,"code":"internal_error"}}"#
        )
        // The role chunk, two content events, then the error.
        #expect(events.count == 4)
    }

    @Test("empty stream ends cleanly without events")

    func emptyStreamEndsCleanlyWithoutEvents() async throws {
        let response = try await post(#"{"model":"m","messages":[],"stream":true,"mock":{"empty_stream":true}}"#)
        #expect(response.status == 200)
        #expect(response.header("content-type") == "text/event-stream")
        #expect(response.isComplete)
        #expect(response.body.isEmpty)
    }

    @Test("no_done omits the [DONE] marker")

    func noDoneOmitsTheDoneMarker() async throws {
        let response = try await post(#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"mock":{"no_done":true}}"#)
        #expect(response.isComplete)
        #expect(!response.bodyText.contains("[DONE]"))
        #expect(try response.streamChunks().count == 4)
    }

    @Test("bad_response answers 200 with HTML")

    func badResponseIsHTML() async throws {
        let response = try await post(#"{"model":"m","messages":[],"stream":true,"mock":{"bad_response":true}}"#)
        #expect(response.status == 200)
        #expect(response.header("content-type") == "text/plain")
        #expect(response.bodyText == "<html>oops</html>")
    }

    @Test("stamp adds each chunk's send time")

    func stampAddsSendTimes() async throws {
        try await withMock { mock in
            let before = Date().timeIntervalSince1970 * 1000
            let response = try MockRawHTTP.post(
                mock,
                json: #"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"mock":{"stamp":true}}"#
            )
            let after = Date().timeIntervalSince1970 * 1000
            let stamps = try response.streamChunks().map { $0["x_mock_sent_at_ms"]?.doubleValue }
            #expect(!stamps.isEmpty)
            for stamp in stamps {
                let stamp = try #require(stamp)
                #expect(stamp >= before - 1 && stamp <= after + 1)
            }
        }
    }

    @Test("pacing directives delay and keep alive")

    func pacingDirectivesDelayAndKeepAlive() async throws {
        try await withMock { mock in
            let started = Date()
            let response = try MockRawHTTP.post(
                mock,
                json: #"{"model":"m","messages":[],"stream":true,"mock":{"words":2,"interval_ms":50,"first_byte_delay_ms":300,"keepalive_ms":100}}"#
            )
            let elapsed = Date().timeIntervalSince(started)
            // Role, 2 words, finish: 3 intervals after the first byte delay.
            #expect(elapsed >= 0.45)
            #expect(response.isComplete)
            #expect(response.bodyText.hasPrefix(": keep-alive\n\n: keep-alive\n\n"))
            #expect(try response.streamChunks().count == 4)
        }
    }

    @Test("non-stream keep-alive sends blank lines before the body")

    func nonStreamKeepAliveSendsBlankLinesBeforeTheBody() async throws {
        let response = try await post(#"{"model":"m","messages":[],"mock":{"first_byte_delay_ms":250,"keepalive_ms":100}}"#)
        #expect(response.status == 200)
        #expect(response.bodyText.hasPrefix("\n\n{"))
        #expect(try response.messageContents() == ["Echo: "])
    }

    @Test("keepalive_only never sends data")

    func keepaliveOnlyNeverSendsData() async throws {
        try await withMock { mock in
            let response = try MockRawHTTP.post(
                mock,
                json: #"{"model":"m","messages":[],"stream":true,"mock":{"keepalive_only":true,"keepalive_ms":50}}"#,
                timeout: 0.4
            )
            #expect(response.timedOut)
            #expect(response.status == 200)
            #expect(response.bodyText.contains(": keep-alive\n\n"))
            #expect(!response.bodyText.contains("data:"))
        }
    }

    @Test("default chunk interval paces streams")

    func defaultChunkIntervalPacesStreams() async throws {
        var options = MockUpstreamOptions()
        options.chunkInterval = .milliseconds(60)
        try await withMock(options) { mock in
            let started = Date()
            let response = try MockRawHTTP.post(mock, json: #"{"model":"m","messages":[],"stream":true,"mock":{"words":3}}"#)
            // Role, 3 words, finish: 4 intervals.
            #expect(Date().timeIntervalSince(started) >= 0.23)
            #expect(response.isComplete)
        }
    }

    // MARK: Connections and recording

    @Test("a persistent connection serves pipelined requests")

    func persistentConnectionServesPipelinedRequests() async throws {
        try await withMock { mock in
            let one = MockRawHTTP.request(method: "POST", path: "/chat/completions", body: #"{"model":"m","messages":[],"stream":true}"#, keepAlive: true)
            let two = MockRawHTTP.request(method: "POST", path: "/chat/completions", body: #"{"model":"m","messages":[]}"#, keepAlive: false)
            let raw = try MockRawHTTP.exchange(port: mock.port, bytes: one + two, timeout: 10)
            let text = String(decoding: raw.bytes, as: UTF8.self)
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
            #expect(text.contains("data: [DONE]"))
            #expect(text.hasSuffix("}"))
        }
    }

    @Test("every request is recorded")

    func everyRequestIsRecorded() async throws {
        try await withMock { mock in
            let body = #"{"model":"m","messages":[{"role":"user","content":"é"}],"mock":{"status":500}}"#
            _ = try MockRawHTTP.post(mock, json: body, headers: [("X-Request-Id", "abc")])
            _ = try MockRawHTTP.roundTrip(mock, method: "GET", path: "/nowhere", body: nil)
            let recorded = mock.recordedRequests()
            #expect(recorded.count == 2)
            #expect(recorded.first?.method == "POST")
            #expect(recorded.first?.path == "/chat/completions")
            #expect(recorded.first?.header("x-request-id") == "abc")
            #expect(recorded.first?.header("CONTENT-TYPE") == "application/json")
            #expect(recorded.first?.body == Array(body.utf8))
            #expect(recorded.last?.method == "GET")
            #expect(recorded.last?.path == "/nowhere")
        }
    }

    @Test("shutdown ends open streams")

    func shutdownEndsOpenStreams() async throws {
        let mock = try await MockUpstream.start(MockUpstreamOptions())
        let port = mock.port
        let request = MockRawHTTP.request(
            method: "POST",
            path: "/chat/completions",
            body: #"{"model":"m","messages":[],"stream":true,"mock":{"keepalive_only":true,"keepalive_ms":50}}"#,
            keepAlive: false
        )
        // The blocking client runs on a thread of its own: on the cooperative pool
        // (two threads on two cores) it could starve the shutdown it waits for.
        // Its timeout is long: the shutdown below resumes on that pool, which the
        // blocking integration tests running in parallel can hold for many
        // seconds (seen at 10 s in CI); the stream must end, however late.
        let client = BlockingThread { try MockRawHTTP.exchange(port: port, bytes: request, timeout: 120) }
        try await Task.sleep(for: .milliseconds(200))
        try await mock.shutdown()
        let exchange = try await client.value()
        #expect(!exchange.timedOut)
        #expect(String(decoding: exchange.bytes, as: UTF8.self).contains(": keep-alive"))
        try await mock.shutdown()  // a second call is harmless
    }

    @Test("baseURL points at the bound port")

    func baseURLPointsAtTheBoundPort() async throws {
        try await withMock { mock in
            #expect(mock.port > 0)
            #expect(mock.baseURL == "http://127.0.0.1:\(mock.port)")
        }
    }
}

// MARK: - Helpers

/// Runs `body` against a fresh mock and always shuts it down.
/// Posts `json` to a fresh mock's /chat/completions and returns the raw response.
private func post(_ json: String) async throws -> MockRawResponse {
    var response: MockRawResponse?
    try await withMock { mock in response = try MockRawHTTP.post(mock, json: json) }
    return try #require(response)
}

func withMock(
    _ options: MockUpstreamOptions = MockUpstreamOptions(),
    _ body: (MockUpstream) async throws -> Void
) async throws {
    let mock = try await MockUpstream.start(options)
    do {
        try await body(mock)
    } catch {
        try await mock.shutdown()
        throw error
    }
    try await mock.shutdown()
}

struct MockRawResponse {
    var status: Int
    var headers: [(String, String)]
    /// The body with chunked framing removed.
    var body: [UInt8]
    /// Chunked: the terminating chunk arrived; otherwise Content-Length was satisfied.
    var isComplete: Bool
    var timedOut: Bool

    var bodyText: String { String(decoding: self.body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func jsonObject() throws -> JSONObject {
        try #require(try JSONValue(parsing: self.body).objectValue)
    }

    func messageContents() throws -> [String] {
        let choices = try #require(try self.jsonObject()["choices"]?.arrayValue)
        return choices.compactMap { ($0["message"]?.objectValue)?["content"]?.stringValue }
    }

    /// The payload of every `data:` line, in order.
    var dataEvents: [String] {
        self.bodyText.components(separatedBy: "\n\n").compactMap { event in
            event.hasPrefix("data: ") ? String(event.dropFirst(6)) : nil
        }
    }

    /// The JSON chunks (everything but `[DONE]`).
    func streamChunks() throws -> [JSONObject] {
        try self.dataEvents.filter { $0 != "[DONE]" }.map { event in
            try #require(try JSONValue(parsing: event).objectValue)
        }
    }
}

/// A blocking HTTP/1.1 client over a plain socket: enough to see framing exactly.
enum MockRawHTTP {
    struct Exchange {
        var bytes: [UInt8]
        var timedOut: Bool
    }

    static func delta(_ chunk: JSONObject) -> JSONObject? {
        chunk["choices"]?[0]?["delta"]?.objectValue
    }

    static func post(
        _ mock: MockUpstream,
        json: String,
        headers: [(String, String)] = [],
        timeout: Double = 10
    ) throws -> MockRawResponse {
        try self.roundTrip(mock, method: "POST", path: "/chat/completions", body: json, headers: headers, timeout: timeout)
    }

    static func roundTrip(
        _ mock: MockUpstream,
        method: String,
        path: String,
        body: String?,
        headers: [(String, String)] = [],
        timeout: Double = 10
    ) throws -> MockRawResponse {
        let request = self.request(method: method, path: path, body: body, headers: headers, keepAlive: false)
        let exchange = try self.exchange(port: mock.port, bytes: request, timeout: timeout)
        return try self.parse(exchange)
    }

    static func request(
        method: String,
        path: String,
        body: String?,
        headers: [(String, String)] = [],
        keepAlive: Bool
    ) -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let body {
            text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        }
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !keepAlive { text += "Connection: close\r\n" }
        text += "\r\n" + (body ?? "")
        return Array(text.utf8)
    }

    /// Sends `bytes` and reads until the server closes (or `timeout` passes).
    static func exchange(port: Int, bytes: [UInt8], timeout: Double) throws -> Exchange {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw MockRawHTTPError("socket failed") }
        defer { close(descriptor) }

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw MockRawHTTPError("connect failed") }

        var sent = 0
        while sent < bytes.count {
            let result = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
            guard result > 0 else { throw MockRawHTTPError("send failed") }
            sent += result
        }

        let deadline = Date().addingTimeInterval(timeout)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return Exchange(bytes: received, timedOut: true) }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, remaining * 1000)))
            guard ready > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return Exchange(bytes: received, timedOut: false) }
            received += buffer[..<count]
        }
    }

    static func parse(_ exchange: Exchange) throws -> MockRawResponse {
        let raw = exchange.bytes
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headEnd = raw.firstRange(of: separator) else { throw MockRawHTTPError("no response head") }
        let headLines = String(decoding: raw[..<headEnd.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = headLines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw MockRawHTTPError("bad status line \(headLines[0])")
        }
        let headers = headLines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = MockRawResponse(status: status, headers: headers, body: [], isComplete: false, timedOut: exchange.timedOut)
        let payload = Array(raw[headEnd.upperBound...])

        if response.header("transfer-encoding")?.lowercased() == "chunked" {
            (response.body, response.isComplete) = self.dechunk(payload)
        } else if let length = response.header("content-length").flatMap(Int.init) {
            response.body = Array(payload.prefix(length))
            response.isComplete = payload.count >= length
        } else {
            response.body = payload
            response.isComplete = !exchange.timedOut
        }
        return response
    }

    /// Removes chunked framing; `complete` tells whether the zero-size terminator arrived.
    private static func dechunk(_ payload: [UInt8]) -> (body: [UInt8], complete: Bool) {
        var body: [UInt8] = []
        var index = payload.startIndex
        let crlf: [UInt8] = [13, 10]
        while let lineEnd = payload[index...].firstRange(of: crlf) {
            let sizeText = String(decoding: payload[index..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { break }
            if size == 0 { return (body, true) }
            let start = lineEnd.upperBound
            guard start + size <= payload.endIndex else {
                body += payload[start...]
                break
            }
            body += payload[start..<start + size]
            index = min(start + size + 2, payload.endIndex)
        }
        return (body, false)
    }
}

struct MockRawHTTPError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Fixed-response mode (benchmarks)

extension MockUpstreamTests {
    @Test("fixed-response mode answers from prebuilt replies")
    func fixedResponseModeAnswersFromPrebuiltReplies() async throws {
        var options = MockUpstreamOptions()
        options.fixedResponses = true
        options.words = 3
        try await withMock(options) { mock in
            let plain = try MockRawHTTP.post(mock, json: #"{"model":"deepseek-chat","messages":[{"role":"user","content":"x"}]}"#)
            #expect(plain.status == 200)
            #expect(plain.header("content-type") == "application/json")
            #expect(try plain.messageContents() == ["w1 w2 w3"])

            let stream = try MockRawHTTP.post(
                mock, json: #"{"model":"deepseek-chat","stream": true,"messages":[{"role":"user","content":"x"}]}"#)
            #expect(stream.status == 200)
            #expect(stream.header("content-type") == "text/event-stream")
            #expect(stream.dataEvents.last == "[DONE]")
            let chunks = try stream.streamChunks()
            #expect(chunks.count == 5)  // role, three words, finish
            #expect(chunks.compactMap { MockRawHTTP.delta($0)?["content"]?.stringValue }.joined() == "w1 w2 w3")

            // A "mock" object still scripts the answer.
            let scripted = try MockRawHTTP.post(
                mock, json: #"{"model":"deepseek-chat","messages":[{"role":"user","content":"x"}],"mock":{"status":429}}"#)
            #expect(scripted.status == 429)
        }
    }
}

/// Runs a blocking closure on a dedicated thread and hands its result to async code.
final class BlockingThread<Result: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Swift.Result<Result, any Error>?
    private var waiter: CheckedContinuation<Result, any Error>?

    init(_ body: @escaping @Sendable () throws -> Result) {
        let thread = Thread { [self] in
            let outcome = Swift.Result { try body() }
            lock.lock()
            if let waiter {
                lock.unlock()
                waiter.resume(with: outcome)
            } else {
                result = outcome
                lock.unlock()
            }
        }
        thread.start()
    }

    func value() async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if let result {
                lock.unlock()
                continuation.resume(with: result)
            } else {
                waiter = continuation
                lock.unlock()
            }
        }
    }
}
