// The parts of a chat completion request the mock reacts to.

import ChatQueueCore

struct ChatRequest {
    var model: String
    var stream: Bool
    /// `n`: how many choices to generate.
    var choiceCount: Int
    /// Text of the last user message; what the reply echoes.
    var lastUserText: String
    var promptTokens: Int
    /// Set when the reply should be a call of this tool instead of text.
    var toolName: String?
    var directives: MockDirectives

    /// A request DeepSeek would reject before generating anything.
    struct Rejection: Error {
        var status: Int
        var message: String
    }

    /// The most choices one request may ask for; keeps a typo from allocating a huge reply.
    static let maximumChoiceCount = 128

    init(_ object: JSONObject) throws(Rejection) {
        // DeepSeek answers 422 with serde's wording when a required field is missing.
        guard let model = object["model"]?.stringValue else {
            throw Rejection(status: 422, message: Self.deserializeError("missing field `model`"))
        }
        guard let messages = object["messages"]?.arrayValue else {
            throw Rejection(status: 422, message: Self.deserializeError("missing field `messages`"))
        }
        self.model = model
        self.stream = object["stream"]?.boolValue ?? false
        self.choiceCount = min(max(object["n"]?.wholeNumber ?? 1, 1), Self.maximumChoiceCount)

        let messageObjects = messages.compactMap(\.objectValue)
        let lastUser = messageObjects.last { $0["role"]?.stringValue == "user" }
        self.lastUserText = lastUser.map { Self.text(of: $0["content"]) } ?? ""
        self.promptTokens = max(
            1,
            messageObjects.reduce(0) { $0 + Self.text(of: $1["content"]).split(whereSeparator: \.isWhitespace).count + 1 }
        )

        self.toolName = Self.toolName(tools: object["tools"], choice: object["tool_choice"])
        self.directives = object["mock"]?.objectValue.map(MockDirectives.init) ?? MockDirectives()
    }

    /// DeepSeek's reasoning models stream `reasoning_content` before the answer.
    var isReasoningModel: Bool {
        let name = self.model.lowercased()
        return name.contains("reasoner") || name.contains("r1")
    }

    /// String content as is; array content (OpenAI "parts") as its text parts joined by spaces.
    private static func text(of content: JSONValue?) -> String {
        if let string = content?.stringValue { return string }
        guard let parts = content?.arrayValue else { return "" }
        return parts.compactMap { $0["text"]?.stringValue }.joined(separator: " ")
    }

    private static func toolName(tools: JSONValue?, choice: JSONValue?) -> String? {
        guard let firstTool = tools?.arrayValue?.first?.objectValue else { return nil }
        if choice?.stringValue == "none" { return nil }
        if let forced = choice?["function"]?["name"]?.stringValue {
            return forced
        }
        return firstTool["function"]?["name"]?.stringValue ?? "function"
    }

    private static func deserializeError(_ detail: String) -> String {
        "Failed to deserialize the JSON body into the target type: \(detail)"
    }
}
