import Testing

@testable import ChatQueueCore

/// Feeds byte sequences as libcurl would and checks chunks and outcomes.
@Suite("Upstream responses: one HTTP try's bytes to chunks and an outcome")
struct UpstreamResponseTests {
    private func feed(
        _ response: inout UpstreamResponse, _ text: String, status: Int = 200,
        contentType: String? = "text/event-stream; charset=utf-8"
    ) -> (UpstreamResponse.Step, [String]) {
        var published: [String] = []
        let bytes = Array(text.utf8)
        let step = bytes.withUnsafeBytes { raw in
            response.receive(raw, status: status, contentType: contentType) { published.append(String(decoding: $0, as: UTF8.self)) }
        }
        return (step, published)
    }

    private let chunk1 = #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#
    private let chunk2 = #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#

    @Test("stream: chunks are forwarded exactly as received; comments and [DONE] are not")
    func forwardsChunksVerbatim() {
        var response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 1 << 20)
        let (step1, first) = feed(&response, ": keep-alive\n\n\n\ndata: \(chunk1)\n\n")
        #expect(step1 == .proceed(progress: true))
        #expect(first == [chunk1])
        let (_, second) = feed(&response, "data: \(chunk2)\n\ndata: [DONE]\n\n")
        #expect(second == [chunk2])
        guard case .completion(let body) = response.outcome(.ok), let value = try? JSONValue(parsing: body) else {
            Issue.record("expected a completion")
            return
        }
        #expect(value["choices"]?[0]?["message"]?["content"]?.stringValue == "Hello")
        #expect(value["object"]?.stringValue == "chat.completion")
    }

    @Test("keep-alive comments alone are no progress (first-byte timer keeps running)")
    func keepAliveIsNoProgress() {
        var response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 1 << 20)
        let (step, published) = feed(&response, ": keep-alive\n\n: keep-alive\n\n")
        #expect(step == .proceed(progress: false))
        #expect(published.isEmpty)
        #expect(response.outcome(.ok) == .failure(.emptyStream))
    }

    @Test("non-stream requests: chunks are assembled but not forwarded")
    func noForwardingWhenNotStreaming() {
        var response = UpstreamResponse(forwardChunks: false, maxResponseBytes: 1 << 20)
        let (_, published) = feed(&response, "data: \(chunk1)\n\ndata: \(chunk2)\n\ndata: [DONE]\n\n")
        #expect(published.isEmpty)
        #expect(response.publishedChunks == 0)
        guard case .completion = response.outcome(.ok) else {
            Issue.record("expected a completion")
            return
        }
    }

    @Test("a data: {error} event stops the stream with the upstream's error")
    func streamErrorEvent() {
        var response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 1 << 20)
        let (step, published) = feed(
            &response, "data: \(chunk1)\n\ndata: {\"error\":{\"message\":\"boom\",\"code\":\"internal_error\"}}\n\n")
        #expect(step == .abort)
        #expect(published == [chunk1])
        guard case .failure(.streamError(let value)) = response.outcome(.failed("aborted")) else {
            Issue.record("expected streamError")
            return
        }
        #expect(value["error"]?["code"]?.stringValue == "internal_error")
    }

    @Test("a stream that ends after chunks without [DONE] or finish_reason is interrupted")
    func interruptedStream() {
        var response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 1 << 20)
        _ = feed(&response, "data: \(chunk1)\n\n")
        #expect(response.outcome(.ok) == .failure(.streamInterrupted("stream ended before [DONE]")))
        #expect(response.outcome(.failed("Transferred a partial file")) == .failure(.streamInterrupted("Transferred a partial file")))
    }

    @Test("non-JSON event data is a bad response")
    func badEvent() {
        var response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 1 << 20)
        let (step, _) = feed(&response, "data: <html>\n\n")
        #expect(step == .abort)
        guard case .failure(.badResponse) = response.outcome(.failed("write error")) else {
            Issue.record("expected badResponse")
            return
        }
    }

    @Test("document: blank-line padding is trimmed and is no progress until content arrives")
    func paddedDocument() {
        var response = UpstreamResponse(forwardChunks: false, maxResponseBytes: 1 << 20)
        let (padding, _) = feed(&response, "\n\n", contentType: "application/json")
        #expect(padding == .proceed(progress: false))
        let (content, _) = feed(&response, "{\"id\":\"x\",\"choices\":[]}\n", contentType: "application/json")
        #expect(content == .proceed(progress: true))
        #expect(response.outcome(.ok) == .completion(Array("{\"id\":\"x\",\"choices\":[]}".utf8)))
    }

    @Test("ended: a document's outcome and usage from one scan agree with outcome and tokenUsage")
    func endedReadsUsageOnce() {
        let documents = [
            #"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}"#,
            #"{"usage":{"completion_tokens":-5},"id":"x"}"#,
            #"{"id":"x","usage":null}"#,
            #"{"id":"x"}"#,
            #"{"error":{"message":"m","type":"t"},"usage":{"prompt_tokens":1}}"#,
            "not json",
        ]
        for document in documents {
            var response = UpstreamResponse(forwardChunks: false, maxResponseBytes: 1 << 20)
            _ = feed(&response, document, contentType: "application/json")
            let (outcome, usage) = response.ended(.ok)
            #expect(outcome == response.outcome(.ok), "\(document)")
            if case .completion = outcome { #expect(usage == response.tokenUsage, "\(document)") }
        }
        var response = UpstreamResponse(forwardChunks: false, maxResponseBytes: 1 << 20)
        _ = feed(&response, documents[0], contentType: "application/json")
        #expect(response.ended(.ok).usage == TokenUsage(prompt: 12, completion: 34))
        // A stream's usage is the assembler's; a failed transfer's outcome is outcome's.
        #expect(response.ended(.failed("reset")).outcome == response.outcome(.failed("reset")))
    }

    @Test("document over the size limit aborts with response_too_large")
    func oversizedDocument() {
        var response = UpstreamResponse(forwardChunks: false, maxResponseBytes: 8)
        let (step, _) = feed(&response, "{\"id\":\"0123456789\"}", contentType: "application/json")
        #expect(step == .abort)
        #expect(response.outcome(.failed("aborted")) == .failure(.responseTooLarge(limit: 8)))
    }

    @Test("a stream whose events together pass the size limit aborts with response_too_large")
    func oversizedStream() {
        var response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 60)
        let event = "data: {\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}\n\n"  // 40 bytes of data
        let (first, chunks) = feed(&response, event, contentType: "text/event-stream")
        #expect(first == .proceed(progress: true))
        #expect(chunks.count == 1)
        let (second, more) = feed(&response, event, contentType: "text/event-stream")
        #expect(second == .abort)
        #expect(more.isEmpty, "the event over the limit is not forwarded")
        #expect(response.outcome(.failed("aborted")) == .failure(.responseTooLarge(limit: 60)))
    }

    @Test("non-200: the body is kept for the error mapping, and Retry-After headers are read")
    func errorBody() {
        var response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 1 << 20)
        let status = Array("HTTP/1.1 429 Too Many Requests\r\n".utf8)
        let header = Array("Retry-After: 2\r\n".utf8)
        let headerMs = Array("retry-after-ms: 1500\r\n".utf8)
        status.withUnsafeBytes { response.headerLine($0) }
        header.withUnsafeBytes { response.headerLine($0) }
        headerMs.withUnsafeBytes { response.headerLine($0) }
        let body = #"{"error":{"message":"Rate limit reached","type":"rate_limit_error","param":null,"code":null}}"#
        _ = feed(&response, body, status: 429, contentType: "application/json")
        #expect(response.retryAfter == "2")
        #expect(response.retryAfterMilliseconds == "1500")
        #expect(response.outcome(.ok) == .failure(.httpStatus(429, body: Array(body.utf8))))
    }

    @Test("transport failures before any response map to connection failures and timeouts")
    func transportFailures() {
        let response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 1 << 20)
        #expect(response.outcome(.couldNotConnect("refused")) == .failure(.connectionFailed("refused")))
        #expect(response.outcome(.connectTimedOut) == .failure(.connectTimeout))
        #expect(response.outcome(.failed("reset")) == .failure(.connectionFailed("reset")))
    }

    @Test("a response with headers and no body is classified by its final status and type")
    func headersOnly() {
        let response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 1 << 20)
        #expect(response.outcome(.ok, status: 503, contentType: nil) == .failure(.httpStatus(503, body: [])))
        #expect(response.outcome(.ok, status: 200, contentType: "text/event-stream") == .failure(.emptyStream))
        guard case .failure(.badResponse) = response.outcome(.ok, status: 200, contentType: "application/json") else {
            Issue.record("expected bad_response for an empty JSON body")
            return
        }
    }
}
