import Testing

@testable import ChatQueueCore

@Suite("Token accounting: usage extraction, bounded model labels, the ledger")
struct TokenLedgerTests {
    // MARK: Usage extraction

    @Test("usage: prompt and completion tokens; missing, non-integer and negative counts read as 0")
    func usageFromJSON() throws {
        #expect(
            TokenUsage(usage: try json(#"{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}"#))
                == TokenUsage(prompt: 12, completion: 30))
        #expect(TokenUsage(usage: try json(#"{"completion_tokens":3}"#)) == TokenUsage(prompt: 0, completion: 3))
        #expect(
            TokenUsage(usage: try json(#"{"prompt_tokens":-5,"completion_tokens":"7"}"#))
                == TokenUsage(prompt: 0, completion: 0))
        #expect(
            TokenUsage(usage: try json(#"{"prompt_tokens":1.5,"completion_tokens":99999999999999999999999}"#))
                == TokenUsage(prompt: 0, completion: 0))
        #expect(TokenUsage(usage: .null) == nil)
        #expect(TokenUsage(usage: try json("[1,2]")) == nil)
        #expect(TokenUsage(prompt: .min, completion: -1) == TokenUsage(prompt: 0, completion: 0))
    }

    private func stream(_ events: [String], end: String = "data: [DONE]\n\n") -> UpstreamResponse {
        var response = UpstreamResponse(forwardChunks: true, maxResponseBytes: 1 << 20)
        let text = events.map { "data: \($0)\n\n" }.joined() + end
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { raw in
            response.receive(raw, status: 200, contentType: "text/event-stream") { _ in }
        }
        return response
    }

    private let role = #"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#
    private let word = #"{"id":"c","choices":[{"index":0,"delta":{"content":"hi "}}]}"#

    @Test("a stream's usage: DeepSeek's last chunk, OpenAI's include_usage chunk with no choices, none at all")
    func streamUsage() {
        let deepseek = stream([
            role, word,
            #"{"id":"c","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
        ])
        #expect(deepseek.tokenUsage == TokenUsage(prompt: 7, completion: 3))
        #expect(deepseek.publishedChunks == 3)

        let openAI = stream([
            role, word, #"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
            #"{"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
        ])
        #expect(openAI.tokenUsage == TokenUsage(prompt: 9, completion: 2))

        let withoutUsage = stream([role, word, #"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#])
        #expect(withoutUsage.tokenUsage == nil)
        #expect(withoutUsage.publishedChunks == 3)

        let interrupted = stream([role, word, word], end: "")
        #expect(interrupted.tokenUsage == nil)
        #expect(interrupted.outcome(.failed("reset")) == .failure(.streamInterrupted("reset")))
        #expect(TryEnding(interrupted.outcome(.failed("reset"))) == .failed)
        #expect(TryEnding(deepseek.outcome(.ok)) == .completed)
    }

    @Test("a document's usage, padded or not; none for an error body or a document cut short")
    func documentUsage() {
        func document(_ text: String, status: Int = 200) -> UpstreamResponse {
            var response = UpstreamResponse(forwardChunks: false, maxResponseBytes: 1 << 20)
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { raw in
                response.receive(raw, status: status, contentType: "application/json") { _ in }
            }
            return response
        }
        let body = #"{"id":"c","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6}}"#
        #expect(document(body).tokenUsage == TokenUsage(prompt: 4, completion: 6))
        #expect(document("\n\n  " + body + "\n").tokenUsage == TokenUsage(prompt: 4, completion: 6))
        #expect(document(String(body.dropLast(5))).tokenUsage == nil)
        #expect(document(body, status: 500).tokenUsage == nil)
        #expect(UpstreamResponse(forwardChunks: true, maxResponseBytes: 10).tokenUsage == nil)
    }

    // MARK: Model labels

    @Test("a model name is its own label only when short and of safe characters")
    func boundedNames() {
        for name in ["deepseek-chat", "gpt-4o-2024-08-06", "accounts/fireworks/models/llama-v3p1-405b-instruct",
            "org@model:v1+x_y.z", String(repeating: "a", count: ModelLabels.maxLength)]
        {
            #expect(ModelLabels.bounded(name) == name)
        }
        for name in ["", String(repeating: "a", count: ModelLabels.maxLength + 1), "a b", "x\"}", "line\nbreak",
            "modèle", "tab\t", "back\\slash", "{evil}"]
        {
            #expect(ModelLabels.bounded(name) == ModelLabels.other, "\(name)")
        }
    }

    @Test("at most 32 distinct labels per process, the first seen; the rest are other")
    func labelCap() {
        var labels = ModelLabels()
        for index in 0..<ModelLabels.maxLabels { #expect(labels.label(for: "m\(index)") == "m\(index)") }
        #expect(labels.label(for: "one-too-many") == ModelLabels.other)
        #expect(labels.label(for: "m0") == "m0")
        #expect(labels.label(for: "x y") == ModelLabels.other)
        #expect(labels.known.count == ModelLabels.maxLabels)
        #expect(!labels.known.contains(ModelLabels.other))
    }

    // MARK: The ledger

    @Test("usage counts tokens; a try without usage counts its chunks by ending; a try with neither counts nothing")
    func ledger() {
        var ledger = TokenLedger()
        ledger.record(model: "deepseek-chat", usage: TokenUsage(prompt: 10, completion: 20), chunks: 5, ending: .completed)
        ledger.record(model: "deepseek-chat", usage: TokenUsage(prompt: 3, completion: 4), chunks: 0, ending: .completed)
        ledger.record(model: "deepseek-chat", usage: nil, chunks: 6, ending: .stopped)
        ledger.record(model: "deepseek-chat", usage: nil, chunks: 2, ending: .failed)
        ledger.record(model: "deepseek-reasoner", usage: nil, chunks: 0, ending: .failed)
        ledger.record(model: "gpt-4o", usage: nil, chunks: 9, ending: .completed)
        let chat = TokenLedger.Key(upstream: "default", model: "deepseek-chat")
        #expect(ledger.accounts.count == 2)
        #expect(ledger.accounts[chat]?.promptTokens == 13)
        #expect(ledger.accounts[chat]?.completionTokens == 24)
        #expect(ledger.accounts[chat]?.chunksWithoutUsage == [.stopped: 6, .failed: 2])
        #expect(ledger.accounts[chat]?.totalChunksWithoutUsage == 8)
        #expect(ledger.sorted.map(\.key.model) == ["deepseek-chat", "gpt-4o"])
        #expect(ledger.total.promptTokens == 13)
        #expect(ledger.total.chunksWithoutUsage == [.stopped: 6, .failed: 2, .completed: 9])
        #expect(ledger.models.known == ["deepseek-chat", "gpt-4o"])
    }

    @Test("upstreams are accounted apart; the one unnamed upstream is default")
    func upstreams() {
        var ledger = TokenLedger()
        ledger.record(model: "m", usage: TokenUsage(prompt: 1, completion: 1), chunks: 0, ending: .completed)
        ledger.record(upstream: "backup", model: "m", usage: TokenUsage(prompt: 2, completion: 2), chunks: 0, ending: .completed)
        #expect(ledger.sorted.map(\.key) == [
            TokenLedger.Key(upstream: "backup", model: "m"), TokenLedger.Key(upstream: TokenLedger.defaultUpstream, model: "m"),
        ])
        #expect(TokenLedger.defaultUpstream == "default")
    }

    @Test("sums saturate instead of trapping, whatever the upstream reports")
    func saturation() {
        var ledger = TokenLedger()
        ledger.record(model: "m", usage: TokenUsage(prompt: .max, completion: .max - 1), chunks: 0, ending: .completed)
        ledger.record(model: "m", usage: TokenUsage(prompt: .max, completion: 5), chunks: 0, ending: .completed)
        ledger.record(model: "m", usage: nil, chunks: .max, ending: .stopped)
        ledger.record(model: "m", usage: nil, chunks: .max, ending: .stopped)
        ledger.record(model: "m", usage: nil, chunks: .max, ending: .failed)
        ledger.record(model: "n", usage: TokenUsage(prompt: .max, completion: .max), chunks: 0, ending: .completed)
        let account = ledger.accounts[TokenLedger.Key(upstream: "default", model: "m")]
        #expect(account?.promptTokens == .max)
        #expect(account?.completionTokens == .max)
        #expect(account?.chunksWithoutUsage[.stopped] == .max)
        #expect(account?.totalChunksWithoutUsage == .max)
        #expect(ledger.total.promptTokens == .max)
    }

    @Test("hostile model names cannot grow the ledger past 33 accounts per upstream")
    func boundedLedger() {
        var ledger = TokenLedger()
        for index in 0..<10_000 {
            ledger.record(model: "model-\(index)", usage: TokenUsage(prompt: 1, completion: 0), chunks: 0, ending: .completed)
        }
        #expect(ledger.accounts.count == ModelLabels.maxLabels + 1)
        #expect(ledger.accounts[TokenLedger.Key(upstream: "default", model: "other")]?.promptTokens == 10_000 - 32)
    }
}
