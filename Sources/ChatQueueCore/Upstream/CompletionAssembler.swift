/// Builds the final `chat.completion` of a stream from its chunks (each chunk
/// is one SSE event's JSON object), so a streamed request can also be
/// answered with one complete response.
///
/// A chunk is read without building a JSON tree: the members the answer
/// needs are picked out while the whole chunk is still checked as strict
/// JSON, content deltas are appended as decoded bytes, and the response is
/// built once at the end.
public struct CompletionAssembler: Sendable {
    /// What the caller needs to know about one chunk.
    public struct ChunkFacts: Sendable, Equatable {
        /// The chunk is a JSON object (anything else is not a chunk; nothing was added).
        public var isObject = true
        /// The chunk has a top-level `error` member: the stream reports a failure.
        public var hasError = false
        /// A choice in the chunk has a non-null `finish_reason`.
        public var hasFinishReason = false

        public init(isObject: Bool = true, hasError: Bool = false, hasFinishReason: Bool = false) {
            self.isObject = isObject
            self.hasError = hasError
            self.hasFinishReason = hasFinishReason
        }
    }

    /// Chunks added so far.
    public private(set) var chunkCount: Int = 0

    private var id: JSONValue?
    private var model: JSONValue?
    private var created: JSONValue?
    private var systemFingerprint: JSONValue?
    /// The last non-null `usage` a chunk carried (DeepSeek: the last chunk; OpenAI: only
    /// with `stream_options.include_usage`).
    public private(set) var usage: JSONValue?
    /// In order of first appearance; sorted by index only in `response()`.
    private var choices: [ChoiceState] = []
    /// The delta being read (reused from chunk to chunk, so reading one allocates nothing).
    private var delta = DeltaFields()

    private struct ChoiceState: Sendable {
        var index: Int
        var role: String?
        /// UTF-8; nil until a content string arrives (then JSON null becomes "").
        var content: [UInt8]?
        var reasoningContent: [UInt8]?
        var toolCalls: [ToolCallState] = []
        var finishReason: JSONValue?
    }

    private struct ToolCallState: Sendable {
        var index: Int
        var id: String?
        var type: String?
        var name: String?
        var arguments: String = ""
    }

    /// One choice's `delta`, as read from a chunk.
    private struct DeltaFields: Sendable {
        var role: String?
        var hasContent = false
        var content: [UInt8] = []
        var hasReasoningContent = false
        var reasoningContent: [UInt8] = []
        var toolCalls: JSONValue?

        mutating func reset() {
            role = nil
            hasContent = false
            content.removeAll(keepingCapacity: true)
            hasReasoningContent = false
            reasoningContent.removeAll(keepingCapacity: true)
            toolCalls = nil
        }
    }

    /// An assembler that has seen no chunks yet.
    public init() {}

    /// Folds one `chat.completion.chunk` (the event's JSON text) into the
    /// answer. Throws when the text is not strict JSON; a JSON value that is
    /// not an object is reported in the facts and adds nothing.
    public mutating func add(chunk bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> ChunkFacts {
        var parser = JSONParser(bytes: bytes)
        var facts = ChunkFacts()
        guard parser.peek() == ASCII.openBrace else {
            try parser.skipValue()
            try parser.expectEnd()
            facts.isObject = false
            return facts
        }
        chunkCount += 1
        try parser.scanObject { parser, key throws(JSONParseError) in
            if key.equals("choices") {
                try self.addChoices(&parser, &facts)
            } else if key.equals("id") {
                try Self.keepFirst(&self.id, &parser)
            } else if key.equals("model") {
                try Self.keepFirst(&self.model, &parser)
            } else if key.equals("created") {
                try Self.keepFirst(&self.created, &parser)
            } else if key.equals("system_fingerprint") {
                try Self.keepFirst(&self.systemFingerprint, &parser)
            } else if key.equals("usage") {
                if parser.nextIsNull() {
                    try parser.skipValue()
                } else {
                    self.usage = try parser.parseValue()
                }
            } else {
                if key.equals("error") { facts.hasError = true }
                try parser.skipValue()
            }
        }
        try parser.expectEnd()
        return facts
    }

    /// `add(chunk:)` for bytes in an array.
    public mutating func add(chunk bytes: [UInt8]) throws(JSONParseError) -> ChunkFacts {
        let result: Result<ChunkFacts, JSONParseError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) -> ChunkFacts in try self.add(chunk: buffer) }
        }
        return try result.get()
    }

    /// Reads `choices`. A choice's members may come in any order (its
    /// `index` after its `delta`), so each is read whole and then applied.
    private mutating func addChoices(_ parser: inout JSONParser, _ facts: inout ChunkFacts) throws(JSONParseError) {
        guard parser.peek() == ASCII.openBracket else {
            try parser.skipValue()
            return
        }
        try parser.scanArray { parser, position throws(JSONParseError) in
            guard parser.peek() == ASCII.openBrace else {
                try parser.skipValue()
                return
            }
            var index: Int?
            var finishReason: JSONValue?
            var hasDelta = false
            self.delta.reset()
            try parser.scanObject { parser, key throws(JSONParseError) in
                if key.equals("index") {
                    index = try parser.integer()
                } else if key.equals("finish_reason") {
                    if parser.nextIsNull() {
                        finishReason = nil
                        try parser.skipValue()
                    } else {
                        finishReason = try parser.parseValue()
                    }
                } else if key.equals("delta") {
                    // A repeated member counts once, as its last occurrence (as in a parsed tree).
                    self.delta.reset()
                    hasDelta = parser.peek() == ASCII.openBrace
                    if hasDelta { try self.readDelta(&parser) } else { try parser.skipValue() }
                } else {
                    try parser.skipValue()
                }
            }
            let slot = self.choiceSlot(for: index ?? position)
            if let finishReason {
                self.choices[slot].finishReason = finishReason
                facts.hasFinishReason = true
            }
            if hasDelta { self.applyDelta(toChoiceAt: slot) }
        }
    }

    private mutating func readDelta(_ parser: inout JSONParser) throws(JSONParseError) {
        try parser.scanObject { parser, key throws(JSONParseError) in
            if key.equals("content") {
                self.delta.content.removeAll(keepingCapacity: true)
                self.delta.hasContent = try parser.appendString(to: &self.delta.content)
            } else if key.equals("reasoning_content") {
                self.delta.reasoningContent.removeAll(keepingCapacity: true)
                self.delta.hasReasoningContent = try parser.appendString(to: &self.delta.reasoningContent)
            } else if key.equals("role") {
                self.delta.role = try parser.parseValue().stringValue
            } else if key.equals("tool_calls") {
                self.delta.toolCalls = try parser.parseValue()
            } else {
                try parser.skipValue()
            }
        }
    }

    private mutating func applyDelta(toChoiceAt slot: Int) {
        if choices[slot].role == nil, let role = delta.role {
            choices[slot].role = role
        }
        if delta.hasContent {
            if choices[slot].content == nil {
                choices[slot].content = delta.content
            } else {
                choices[slot].content!.append(contentsOf: delta.content)
            }
        }
        if delta.hasReasoningContent {
            if choices[slot].reasoningContent == nil {
                choices[slot].reasoningContent = delta.reasoningContent
            } else {
                choices[slot].reasoningContent!.append(contentsOf: delta.reasoningContent)
            }
        }
        guard case .array(let calls)? = delta.toolCalls else { return }
        for (position, call) in calls.enumerated() {
            guard case .object(let callObject) = call else { continue }
            let index = callObject["index"]?.integerValue ?? position
            let callSlot: Int
            if let existing = choices[slot].toolCalls.firstIndex(where: { $0.index == index }) {
                callSlot = existing
            } else {
                callSlot = choices[slot].toolCalls.count
                choices[slot].toolCalls.append(ToolCallState(index: index))
            }
            // The id, type and name come once, in the call's first piece.
            if choices[slot].toolCalls[callSlot].id == nil {
                choices[slot].toolCalls[callSlot].id = callObject["id"]?.stringValue
            }
            if choices[slot].toolCalls[callSlot].type == nil {
                choices[slot].toolCalls[callSlot].type = callObject["type"]?.stringValue
            }
            guard case .object(let function)? = callObject["function"] else { continue }
            if choices[slot].toolCalls[callSlot].name == nil {
                choices[slot].toolCalls[callSlot].name = function["name"]?.stringValue
            }
            if let pieceOfArguments = function["arguments"]?.stringValue {
                choices[slot].toolCalls[callSlot].arguments += pieceOfArguments
            }
        }
    }

    private mutating func choiceSlot(for index: Int) -> Int {
        if let existing = choices.firstIndex(where: { $0.index == index }) {
            return existing
        }
        choices.append(ChoiceState(index: index))
        return choices.count - 1
    }

    /// Reads the value into `stored` if nothing non-null is stored yet, else skips it.
    private static func keepFirst(_ stored: inout JSONValue?, _ parser: inout JSONParser) throws(JSONParseError) {
        guard stored == nil, !parser.nextIsNull() else {
            try parser.skipValue()
            return
        }
        stored = try parser.parseValue()
    }

    /// The assembled `chat.completion`:
    /// `{"id","object":"chat.completion","created","model","system_fingerprint"(only if seen),"choices":[...],"usage"(only if seen)}`.
    ///
    /// id, model, created (as its number literal) and system_fingerprint are
    /// the first non-null values seen. Choices are sorted by index, each
    /// `{"index","message":{"role","content","reasoning_content"(only if any arrived),"tool_calls"(only if any)},"finish_reason"}`:
    /// role is the first delta role (default "assistant"); content and
    /// reasoning_content concatenate their delta strings (content is null when
    /// none arrived); tool calls are merged by index with id, type (default
    /// "function") and name from their first appearance and arguments
    /// concatenated; finish_reason is the last non-null one. usage is the last
    /// non-null usage seen.
    public func response() -> JSONValue {
        var result = JSONObject()
        result["id"] = id ?? .null
        result["object"] = .string("chat.completion")
        result["created"] = created ?? .null
        result["model"] = model ?? .null
        if let systemFingerprint {
            result["system_fingerprint"] = systemFingerprint
        }
        let sortedChoices = choices.sorted { $0.index < $1.index }
        result["choices"] = .array(sortedChoices.map(Self.choiceObject))
        if let usage {
            result["usage"] = usage
        }
        return .object(result)
    }

    private static func choiceObject(_ choice: ChoiceState) -> JSONValue {
        var message = JSONObject()
        message["role"] = .string(choice.role ?? "assistant")
        message["content"] = choice.content.map { .string(String(decoding: $0, as: UTF8.self)) } ?? .null
        if let reasoning = choice.reasoningContent {
            message["reasoning_content"] = .string(String(decoding: reasoning, as: UTF8.self))
        }
        if !choice.toolCalls.isEmpty {
            let calls = choice.toolCalls.sorted { $0.index < $1.index }.map { call -> JSONValue in
                let function: JSONObject = [
                    "name": call.name.map(JSONValue.string) ?? .null,
                    "arguments": .string(call.arguments),
                ]
                return .object([
                    "id": call.id.map(JSONValue.string) ?? .null,
                    "type": .string(call.type ?? "function"),
                    "function": .object(function),
                ])
            }
            message["tool_calls"] = .array(calls)
        }
        return .object([
            "index": .number(String(choice.index)),
            "message": .object(message),
            "finish_reason": choice.finishReason ?? .null,
        ])
    }
}
