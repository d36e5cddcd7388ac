import ChatQueueCore
import Testing

/// Feeds each JSON text as one chunk and returns the assembled response.
private func assemble(_ chunks: [String]) throws -> (response: JSONValue, assembler: CompletionAssembler) {
    var assembler = CompletionAssembler()
    for chunk in chunks {
        _ = try assembler.add(chunk: Array(chunk.utf8))
    }
    return (assembler.response(), assembler)
}

/// A DeepSeek-style chunk for choice 0 with the given delta and finish reason.
private func chunk(_ delta: String, finish: String = "null", extra: String = "") -> String {
    #"{"id":"c-1","object":"chat.completion.chunk","created":1700000000,"model":"deepseek-chat","system_fingerprint":"fp_1","choices":[{"index":0,"delta":"#
        + delta + #","logprobs":null,"finish_reason":"# + finish + "}]" + extra + "}"
}

@Suite("Completion assembly")
struct CompletionAssemblerTests {
    @Test("content deltas are concatenated into a chat.completion")
    func contentIsConcatenatedIntoAChatCompletion() throws {
        let (response, assembler) = try assemble([
            chunk(#"{"role":"assistant","content":""}"#),
            chunk(#"{"content":"Hel"}"#),
            chunk(#"{"content":"lo"}"#),
            chunk(#"{"content":null}"#),
            chunk(#"{}"#, finish: #""stop""#),
        ])
        #expect(assembler.chunkCount == 5)
        let expected = #"{"id":"c-1","object":"chat.completion","created":1700000000,"model":"deepseek-chat","system_fingerprint":"fp_1","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}]}"#
        #expect(response.serializedString() == expected)
    }

    @Test("reasoning content and content are kept apart")

    func reasoningContentAndContentAreKeptApart() throws {
        let (response, _) = try assemble([
            chunk(#"{"role":"assistant","content":null,"reasoning_content":""}"#),
            chunk(#"{"content":null,"reasoning_content":"Think"}"#),
            chunk(#"{"content":null,"reasoning_content":"ing."}"#),
            chunk(#"{"content":"Answer","reasoning_content":null}"#),
            chunk(#"{"content":"!","reasoning_content":null}"#, finish: #""stop""#),
        ])
        let message = response["choices"]?[0]?["message"]
        #expect(message == ["role": "assistant", "content": "Answer!", "reasoning_content": "Thinking."])
        #expect(message?.objectValue?.keys == ["role", "content", "reasoning_content"])
    }

    @Test("content is null when only reasoning arrived")

    func contentIsNullWhenOnlyReasoningArrived() throws {
        let (response, _) = try assemble([
            chunk(#"{"role":"assistant","content":null,"reasoning_content":"hmm"}"#),
            chunk(#"{"content":null,"reasoning_content":"..."}"#, finish: #""length""#),
        ])
        let choice = response["choices"]?[0]
        #expect(choice?["message"]?["content"] == .null)
        #expect(choice?["message"]?["reasoning_content"] == "hmm...")
        #expect(choice?["finish_reason"] == "length")
        // And with no deltas at all: role defaults to assistant, content null, no reasoning key.
        let (empty, _) = try assemble([chunk("{}", finish: #""stop""#)])
        #expect(empty["choices"]?[0]?["message"] == ["role": "assistant", "content": .null])
    }

    @Test("tool calls are merged by index")

    func toolCallsAreMergedByIndex() throws {
        let (response, _) = try assemble([
            chunk(#"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}"#),
            chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}"#),
            chunk(#"{"tool_calls":[{"index":1,"id":"call_b","function":{"name":"get_time","arguments":"{}"}}]}"#),
            chunk(#"{"tool_calls":[{"index":0,"id":null,"type":null,"function":{"name":null,"arguments":"\"Paris\"}"}}]}"#),
            chunk(#"{}"#, finish: #""tool_calls""#),
        ])
        let expected = #"{"index":0,"message":{"role":"assistant","content":null,"tool_calls":["#
            + #"{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},"#
            + #"{"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}"#
            + #"]},"finish_reason":"tool_calls"}"#
        #expect(response["choices"]?[0]?.serializedString() == expected)
    }

    @Test("tool calls are sorted by index")

    func toolCallsAreSortedByIndex() throws {
        let (response, _) = try assemble([
            chunk(#"{"tool_calls":[{"index":2,"id":"c2","function":{"name":"b","arguments":"2"}},{"index":0,"id":"c0","function":{"name":"a","arguments":"0"}}]}"#),
            chunk(#"{"tool_calls":[{"index":2,"function":{"arguments":"!"}}]}"#),
        ])
        let calls = try #require(response["choices"]?[0]?["message"]?["tool_calls"]?.arrayValue)
        #expect(calls.map { $0["id"] } == ["c0", "c2"])
        #expect(calls[1]["function"]?["arguments"] == "2!")
        #expect(calls[1].objectValue?.keys == ["id", "type", "function"])  // no "index"
    }

    @Test("interleaved choices are separated and sorted")

    func interleavedChoicesAreSeparatedAndSorted() throws {
        func choiceChunk(_ index: Int, _ delta: String, finish: String = "null") -> String {
            #"{"id":"c-2","created":5,"model":"m","choices":[{"index":\#(index),"delta":\#(delta),"finish_reason":\#(finish)}]}"#
        }
        let (response, _) = try assemble([
            choiceChunk(1, #"{"role":"assistant","content":"B1"}"#),
            choiceChunk(0, #"{"role":"assistant","content":"A1"}"#),
            choiceChunk(1, #"{"content":" B2"}"#),
            choiceChunk(0, #"{"content":" A2"}"#),
            choiceChunk(1, #"{}"#, finish: #""length""#),
            choiceChunk(0, #"{}"#, finish: #""stop""#),
        ])
        let choices = try #require(response["choices"]?.arrayValue)
        #expect(choices.map { $0["index"] } == [0, 1])
        #expect(choices.map { $0["message"]?["content"] } == ["A1 A2", "B1 B2"])
        #expect(choices.map { $0["finish_reason"] } == ["stop", "length"])
        // No system_fingerprint key when none was sent.
        #expect(response.objectValue?.keys == ["id", "object", "created", "model", "choices"])
    }

    @Test("usage comes from the last chunk that has it")

    func usageFromTheLastChunk() throws {
        let usage = #","usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}"#
        let (response, _) = try assemble([
            chunk(#"{"role":"assistant","content":"Hi"}"#, extra: #","usage":null"#),
            chunk(#"{}"#, finish: #""stop""#, extra: usage),
            #"{"id":"c-1","choices":[],"usage":null}"#,
        ])
        #expect(response["usage"] == ["prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7])
        #expect(response.objectValue?.keys == ["id", "object", "created", "model", "system_fingerprint", "choices", "usage"])
        // The last non-null usage wins.
        let (twice, _) = try assemble([chunk("{}", extra: #","usage":{"total_tokens":1}"#), chunk("{}", extra: #","usage":{"total_tokens":2}"#)])
        #expect(twice["usage"]?["total_tokens"] == 2)
    }

    @Test("finish reason is the last non-null one")

    func finishReasonIsTheLastNonNullOne() throws {
        let (response, _) = try assemble([
            chunk(#"{"content":"a"}"#, finish: #""length""#),
            chunk(#"{"content":"b"}"#, finish: #""stop""#),
            chunk(#"{}"#, finish: "null"),
        ])
        #expect(response["choices"]?[0]?["finish_reason"] == "stop")
        let (unfinished, _) = try assemble([chunk(#"{"content":"a"}"#)])
        #expect(unfinished["choices"]?[0]?["finish_reason"] == .null)
    }

    @Test("metadata comes from the first non-null values")

    func metadataFromTheFirstNonNullValues() throws {
        let (response, _) = try assemble([
            #"{"id":null,"created":null,"model":null,"choices":[]}"#,
            #"{"id":"first","created":1.7e9,"model":"deepseek-reasoner","system_fingerprint":null,"choices":[]}"#,
            #"{"id":"second","created":2,"model":"other","system_fingerprint":"fp","choices":[]}"#,
        ])
        #expect(response["id"] == "first")
        #expect(response["created"] == .number("1.7e9"))  // kept as its literal
        #expect(response["model"] == "deepseek-reasoner")
        #expect(response["system_fingerprint"] == "fp")
        #expect(response["object"] == "chat.completion")
    }

    @Test("role is the first one seen")

    func roleIsTheFirstOneSeen() throws {
        let (response, _) = try assemble([
            chunk(#"{"content":"x"}"#),
            chunk(#"{"role":"tool","content":"y"}"#),
            chunk(#"{"role":"assistant"}"#),
        ])
        #expect(response["choices"]?[0]?["message"]?["role"] == "tool")
    }

    @Test("no chunks give an empty chat.completion")

    func noChunksGiveAnEmptyCompletion() {
        let response = CompletionAssembler().response()
        #expect(response.serializedString() == #"{"id":null,"object":"chat.completion","created":null,"model":null,"choices":[]}"#)
    }

    @Test("a choice may name its index after its delta")

    func aChoiceMayNameItsIndexAfterItsDelta() throws {
        let (response, _) = try assemble([
            #"{"id":"c-1","choices":[{"delta":{"content":"a"},"index":1},{"delta":{"content":"b"},"index":0}]}"#,
            #"{"choices":[{"finish_reason":"stop","delta":{"content":"c"},"index":1}]}"#,
        ])
        let choices = response["choices"]?.arrayValue ?? []
        #expect(choices.count == 2)
        #expect(choices.first?["message"]?["content"]?.stringValue == "b")
        #expect(choices.last?["message"]?["content"]?.stringValue == "ac")
        #expect(choices.last?["finish_reason"]?.stringValue == "stop")
    }

    @Test("escapes in keys and content are decoded")

    func escapesInKeysAndContentAreDecoded() throws {
        let (response, _) = try assemble([
            #"{"choices":[{"index":0,"d\u0065lta":{"content":"caf\u00e9 \"ok\"\n"}}]}"#
        ])
        #expect(response["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == "caf\u{e9} \"ok\"\n")
    }

    @Test("each chunk's facts: object, error member, finish reason")

    func factsSayWhatTheCallerActsOn() throws {
        var assembler = CompletionAssembler()
        let plain = try assembler.add(chunk: Array(chunk(#"{"content":"x"}"#).utf8))
        #expect(plain == CompletionAssembler.ChunkFacts(isObject: true, hasError: false, hasFinishReason: false))
        let last = try assembler.add(chunk: Array(chunk(#"{}"#, finish: #""length""#).utf8))
        #expect(last.hasFinishReason)
        let failed = try assembler.add(chunk: Array(#"{"error":{"message":"overloaded","type":"server_error"}}"#.utf8))
        #expect(failed.hasError)
        let notAnObject = try assembler.add(chunk: Array(#"[1,2]"#.utf8))
        #expect(!notAnObject.isObject)
        #expect(assembler.chunkCount == 3)
    }

    /// Metadata is the first non-null value seen, even within one chunk; a
    /// repeated delta member counts as its last occurrence, as in a parsed tree.
    @Test("repeated members: metadata keeps the first value, a delta member its last")
    func repeatedMembers() throws {
        let (response, _) = try assemble([
            #"{"id":"first","id":"second","choices":[{"index":0,"delta":{"content":"x","content":"y"},"delta":{"content":"z"}}]}"#
        ])
        #expect(response["id"]?.stringValue == "first")
        #expect(response["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == "z")
    }

    /// The scanner skips the members it does not need, but must reject exactly
    /// what the full parser rejects, wherever the fault is.
    @Test("accepts exactly what the parser accepts", arguments: [
        (#"{"choices":[],"logprobs":{"a":[1,2,{"b":null}]}}"#, true),
        (#"{"choices":[{"index":0,"delta":{"content":"x","extra":[true,false,-1.5e3]}}]}"#, true),
        (#" {"a":"\ud83d\ude00"} "#, true),
        (#"{"choices":[],"logprobs":01}"#, false),
        (#"{"choices":[],"logprobs":{"a":1,}}"#, false),
        (#"{"choices":[{"index":0,"delta":{"content":"x"}}]} x"#, false),
        (#"{"choices":[{"index":0,"delta":{"content":"x"}]}"#, false),
        (#"{"choices":[],"other":"\ud800"}"#, false),
        (#"{"choices":[],"other":"\q"}"#, false),
        (#"{"choices":[],"other":tru}"#, false),
        (#"{"choices":[{"index":1.5e,"delta":{}}]}"#, false),
        (#"{"choices":[{"index":0,"delta":{"role":"assistant","content":nul}}]}"#, false),
        (#"{"usage":{"total_tokens":3},"id":"x""#, false),
        ("{\"choices\":[],\"other\":\"a\u{1}b\"}", false),
        (#"{"choices":[],"other":"# + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}", false),
    ])
    func acceptsExactlyWhatTheParserAccepts(text: String, valid: Bool) {
        var assembler = CompletionAssembler()
        let parserAccepts = (try? JSONValue(parsing: text)) != nil
        let scannerAccepts = (try? assembler.add(chunk: Array(text.utf8))) != nil
        #expect(parserAccepts == valid)
        #expect(scannerAccepts == valid)
    }

    @Test("invalid UTF-8 in a skipped member is rejected")

    func invalidUTF8InASkippedMemberIsRejected() {
        var assembler = CompletionAssembler()
        let bytes = Array(#"{"choices":[],"other":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8)
        #expect(throws: JSONParseError.self) { _ = try assembler.add(chunk: bytes) }
    }
}

@Suite("Token usage of a completion body")
struct TokenUsageTests {
    @Test("reads prompt and completion tokens")
    func readsPromptAndCompletionTokens() {
        let body = Array(#"{"id":"x","choices":[{"message":{"content":"usage"}}],"usage":{"prompt_tokens":12,"total_tokens":19,"completion_tokens":7}}"#.utf8)
        let usage = UpstreamBody.tokenUsage(body)
        #expect(usage?.prompt == 12)
        #expect(usage?.completion == 7)
    }

    // Found by FuzzJSON: the scanner's integer reader gave up on Int.min, which JSONValue.integerValue reads.
    @Test("token counts at Int.min and Int.max are read; beyond them they count as 0")
    func countsAtIntsExtremesReadAsIntegerValueReadsThem() {
        let extremes = Array(#"{"usage":{"prompt_tokens":-9223372036854775808,"completion_tokens":9223372036854775807}}"#.utf8)
        let usage = UpstreamBody.tokenUsage(extremes)
        #expect(usage?.prompt == Int.min)
        #expect(usage?.completion == Int.max)
        let beyond = Array(#"{"usage":{"prompt_tokens":-9223372036854775809,"completion_tokens":9223372036854775808}}"#.utf8)
        #expect(UpstreamBody.tokenUsage(beyond)?.prompt == 0)
        #expect(UpstreamBody.tokenUsage(beyond)?.completion == 0)
    }

    @Test("no usage object, or a body that is not JSON, gives no usage")

    func noUsageObjectOrNotJSONGivesNil() {
        #expect(UpstreamBody.tokenUsage(Array(#"{"id":"x","usage":null}"#.utf8)) == nil)
        #expect(UpstreamBody.tokenUsage(Array(#"{"id":"x"}"#.utf8)) == nil)
        #expect(UpstreamBody.tokenUsage(Array("not json".utf8)) == nil)
    }
}
