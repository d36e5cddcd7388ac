// The deterministic answer to one chat completion request, rendered either as
// one `chat.completion` body or as a sequence of `chat.completion.chunk` events.

import ChatQueueCore

struct CompletionReply {
    struct ToolCall {
        var name: String
        /// The complete arguments JSON, `{"echo":"<reply text>"}`.
        var arguments: String
    }

    let id: String
    let created: Int
    let model: String
    /// The text of each choice.
    let choices: [String]
    /// Present for reasoning models; the same thought for every choice.
    let reasoning: String?
    /// When set the reply is a single tool call (choice 0) instead of text.
    let toolCall: ToolCall?
    let promptTokens: Int
    /// Rendered once: the final chunk and the body both carry it.
    private(set) var usage: JSONValue = .null
    /// Chunks differ only in their choice, so the envelope is rendered once per reply.
    private let chunkPrefix: [UInt8]
    /// Whether the stream's last chunk carries `usage` (DeepSeek: always; directive `no_stream_usage`: no).
    private let streamCarriesUsage: Bool

    static let reasoningText = "Okay, the user wants me to echo their message."

    init(request: ChatRequest, id: Int, created: Int, defaultWords: Int?) {
        self.id = "chatcmpl-\(id)"
        self.created = created
        self.model = request.model
        self.promptTokens = request.promptTokens
        self.reasoning = request.isReasoningModel ? Self.reasoningText : nil
        self.chunkPrefix = Self.chunkPrefix(id: self.id, created: created, model: request.model)
        self.streamCarriesUsage = !request.directives.noStreamUsage

        let text: String
        if let words = request.directives.words ?? defaultWords {
            text = (0..<words).map { "w\($0 + 1)" }.joined(separator: " ")
        } else {
            text = "Echo: " + request.lastUserText
        }

        if let toolName = request.toolName {
            let arguments: JSONValue = ["echo": .string(text)]
            self.toolCall = ToolCall(name: toolName, arguments: arguments.serializedString())
            self.choices = [""]
        } else if request.choiceCount > 1 {
            self.toolCall = nil
            self.choices = (0..<request.choiceCount).map { "[\($0)] " + text }
        } else {
            self.toolCall = nil
            self.choices = [text]
        }
        self.usage = self.renderedUsage
    }

    var finishReason: String {
        self.toolCall == nil ? "stop" : "tool_calls"
    }

    // MARK: Usage

    /// Mock tokens are words (with their trailing whitespace), the same pieces streams are cut into.
    var completionTokens: Int {
        let answer: Int
        if let toolCall {
            answer = Self.words(toolCall.arguments).count
        } else {
            answer = self.choices.reduce(0) { $0 + Self.words($1).count }
        }
        return answer + self.reasoningTokens
    }

    var reasoningTokens: Int {
        self.reasoning.map { Self.words($0).count * self.choices.count } ?? 0
    }

    /// DeepSeek's usage object, including its cache counters.
    private var renderedUsage: JSONValue {
        var fields: JSONObject = [
            "prompt_tokens": .integer(self.promptTokens),
            "completion_tokens": .integer(self.completionTokens),
            "total_tokens": .integer(self.promptTokens + self.completionTokens),
            "prompt_tokens_details": ["cached_tokens": 0],
        ]
        if self.reasoning != nil {
            fields["completion_tokens_details"] = ["reasoning_tokens": .integer(self.reasoningTokens)]
        }
        fields["prompt_cache_hit_tokens"] = 0
        fields["prompt_cache_miss_tokens"] = .integer(self.promptTokens)
        return .object(fields)
    }

    // MARK: Non-streaming

    var completionBody: JSONValue {
        let choices = self.choices.enumerated().map { index, text -> JSONValue in
            var message: JSONObject = ["role": "assistant", "content": .string(text)]
            if let reasoning { message["reasoning_content"] = .string(reasoning) }
            if let toolCall {
                message["tool_calls"] = [self.toolCallJSON(arguments: toolCall.arguments)]
            }
            return [
                "index": .integer(index),
                "message": .object(message),
                "logprobs": .null,
                "finish_reason": .string(self.finishReason),
            ]
        }
        return [
            "id": .string(self.id),
            "object": "chat.completion",
            "created": .integer(self.created),
            "model": .string(self.model),
            "system_fingerprint": "fp_mock",
            "choices": .array(choices),
            "usage": self.usage,
        ]
    }

    // MARK: Streaming

    /// Every event of a complete, well-behaved stream, before directives cut it short.
    var streamSteps: [StreamStep] {
        var steps = self.choices.indices.map { StreamStep.role(choice: $0) }
        if let reasoning {
            steps += Self.interleave(Array(repeating: Self.words(reasoning), count: self.choices.count)) {
                .reasoning(choice: $0, text: $1)
            }
        }
        if let toolCall {
            steps.append(.toolCallStart)
            steps += Self.split(toolCall.arguments, into: 3).map { StreamStep.toolArguments($0) }
        } else {
            steps += Self.interleave(self.choices.map(Self.words)) { .content(choice: $0, text: $1) }
        }
        let usageChoice = self.streamCarriesUsage ? self.choices.count - 1 : nil
        steps += self.choices.indices.map { .finish(choice: $0, usage: $0 == usageChoice) }
        return steps
    }

    /// The SSE event (`data: …\n\n`) for a step. `sentAt` is the `stamp` directive's timestamp.
    func event(for step: StreamStep, sentAt: String? = nil) -> String {
        switch step {
        case .done:
            return "data: [DONE]\n\n"
        case .streamError:
            return "data: " + MockErrorBody.duringGeneration.json.serializedString() + "\n\n"
        case .drop:
            return ""
        default:
            break
        }
        let (choice, usage) = self.choiceAndUsage(for: step)
        var out: [UInt8] = []
        out.reserveCapacity(6 + self.chunkPrefix.count + 256)
        out += "data: ".utf8
        out += self.chunkPrefix
        choice.serialize(into: &out)
        out.append(UInt8(ascii: "]"))
        if let usage {
            out += #","usage":"#.utf8
            usage.serialize(into: &out)
        }
        if let sentAt {
            out += #","x_mock_sent_at_ms":"#.utf8
            out += sentAt.utf8
        }
        out += "}\n\n".utf8
        return String(decoding: out, as: UTF8.self)
    }

    /// `{"id":…,"object":"chat.completion.chunk",…,"choices":[`
    private static func chunkPrefix(id: String, created: Int, model: String) -> [UInt8] {
        let envelope: JSONValue = [
            "id": .string(id),
            "object": "chat.completion.chunk",
            "created": .integer(created),
            "model": .string(model),
            "system_fingerprint": "fp_mock",
        ]
        var out = envelope.serialized()
        out.removeLast()  // the closing brace
        return out + #","choices":["#.utf8
    }

    private func choiceAndUsage(for step: StreamStep) -> (choice: JSONValue, usage: JSONValue?) {
        let choice: Int
        let delta: JSONValue
        var finishReason: JSONValue = .null
        var usage: JSONValue?

        switch step {
        case .role(let index):
            choice = index
            delta =
                self.reasoning == nil
                ? ["role": "assistant", "content": ""]
                : ["role": "assistant", "content": .null, "reasoning_content": ""]
        case .reasoning(let index, let text):
            choice = index
            delta = ["content": .null, "reasoning_content": .string(text)]
        case .content(let index, let text):
            choice = index
            delta =
                self.reasoning == nil
                ? ["content": .string(text)]
                : ["content": .string(text), "reasoning_content": .null]
        case .toolCallStart:
            choice = 0
            delta = ["tool_calls": [self.toolCallJSON(arguments: "")]]
        case .toolArguments(let part):
            choice = 0
            delta = ["tool_calls": [["index": 0, "function": ["arguments": .string(part)]]]]
        case .finish(let index, let carriesUsage):
            choice = index
            delta = ["content": ""]
            finishReason = .string(self.finishReason)
            if carriesUsage { usage = self.usage }
        case .streamError, .done, .drop:
            preconditionFailure("\(step) is not a chunk")
        }
        return (["index": .integer(choice), "delta": delta, "logprobs": .null, "finish_reason": finishReason], usage)
    }

    private func toolCallJSON(arguments: String) -> JSONValue {
        [
            "index": 0,
            "id": "call_mock_0",
            "type": "function",
            "function": ["name": .string(self.toolCall?.name ?? ""), "arguments": .string(arguments)],
        ]
    }

    // MARK: Text pieces

    /// Cuts `text` into words that keep their trailing whitespace ("Echo: ", "hi ", "there"),
    /// so the stream's deltas concatenate to exactly the non-streamed content.
    static func words(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var sawWord = false
        var inTrailingSpace = false
        for character in text {
            if !character.isWhitespace && inTrailingSpace {
                pieces.append(current)
                current = ""
                inTrailingSpace = false
            }
            current.append(character)
            if character.isWhitespace {
                inTrailingSpace = sawWord
            } else {
                sawWord = true
            }
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }

    /// Splits `text` into `count` nearly equal parts (by characters).
    static func split(_ text: String, into count: Int) -> [String] {
        let characters = Array(text)
        let size = (characters.count + count - 1) / count
        return (0..<count).map { part in
            let start = min(part * size, characters.count)
            let end = min(start + size, characters.count)
            return String(characters[start..<end])
        }
    }

    /// Word 0 of every choice, then word 1 of every choice, and so on.
    private static func interleave(_ wordsPerChoice: [[String]], _ makeStep: (Int, String) -> StreamStep) -> [StreamStep] {
        let longest = wordsPerChoice.map(\.count).max() ?? 0
        var steps: [StreamStep] = []
        for position in 0..<longest {
            for (choice, words) in wordsPerChoice.enumerated() where position < words.count {
                steps.append(makeStep(choice, words[position]))
            }
        }
        return steps
    }
}
