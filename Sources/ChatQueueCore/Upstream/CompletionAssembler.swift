/// Builds the final `chat.completion` of a stream from its chunks (each chunk
/// is one SSE event's parsed JSON object), so a streamed request can also be
/// answered with one complete response.
///
/// Adding a chunk costs a few small-object lookups and string appends; the
/// response is built once at the end.
public struct CompletionAssembler: Sendable {
    /// Chunks added so far.
    public private(set) var chunkCount: Int = 0

    private var id: JSONValue?
    private var model: JSONValue?
    private var created: JSONValue?
    private var systemFingerprint: JSONValue?
    private var usage: JSONValue?
    /// In order of first appearance; sorted by index only in `response()`.
    private var choices: [ChoiceState] = []

    private struct ChoiceState: Sendable {
        var index: Int
        var role: String?
        /// nil until a content string arrives (then JSON null becomes "").
        var content: String?
        var reasoningContent: String?
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

    /// An assembler that has seen no chunks yet.
    public init() {}

    /// Folds one `chat.completion.chunk` object into the answer.
    public mutating func add(chunk: JSONValue) {
        chunkCount += 1
        guard case .object(let object) = chunk else { return }

        Self.keepFirst(&id, object["id"])
        Self.keepFirst(&model, object["model"])
        Self.keepFirst(&created, object["created"])
        Self.keepFirst(&systemFingerprint, object["system_fingerprint"])
        if let chunkUsage = object["usage"], !chunkUsage.isNull {
            usage = chunkUsage
        }

        guard case .array(let chunkChoices)? = object["choices"] else { return }
        for (position, choice) in chunkChoices.enumerated() {
            guard case .object(let choiceObject) = choice else { continue }
            let index = choiceObject["index"]?.integerValue ?? position
            let slot = choiceSlot(for: index)
            if let reason = choiceObject["finish_reason"], !reason.isNull {
                choices[slot].finishReason = reason
            }
            if case .object(let delta)? = choiceObject["delta"] {
                apply(delta: delta, toChoiceAt: slot)
            }
        }
    }

    private mutating func apply(delta: JSONObject, toChoiceAt slot: Int) {
        if choices[slot].role == nil, let role = delta["role"]?.stringValue {
            choices[slot].role = role
        }
        if let text = delta["content"]?.stringValue {
            Self.append(text, to: &choices[slot].content)
        }
        if let text = delta["reasoning_content"]?.stringValue {
            Self.append(text, to: &choices[slot].reasoningContent)
        }
        guard case .array(let calls)? = delta["tool_calls"] else { return }
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

    private static func keepFirst(_ stored: inout JSONValue?, _ candidate: JSONValue?) {
        guard stored == nil, let candidate, !candidate.isNull else { return }
        stored = candidate
    }

    private static func append(_ text: String, to stored: inout String?) {
        if stored == nil {
            stored = text
        } else {
            stored!.append(text)
        }
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
        message["content"] = choice.content.map(JSONValue.string) ?? .null
        if let reasoning = choice.reasoningContent {
            message["reasoning_content"] = .string(reasoning)
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
