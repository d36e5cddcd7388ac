// The parts of a chat completion request the mock reacts to.

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

    init(_ object: [String: Any]) throws(Rejection) {
        // DeepSeek answers 422 with serde's wording when a required field is missing.
        guard let model = ParsedJSON.string(object["model"]) else {
            throw Rejection(status: 422, message: Self.deserializeError("missing field `model`"))
        }
        guard let messages = object["messages"] as? [Any] else {
            throw Rejection(status: 422, message: Self.deserializeError("missing field `messages`"))
        }
        self.model = model
        self.stream = ParsedJSON.bool(object["stream"]) ?? false
        self.choiceCount = min(max(ParsedJSON.int(object["n"]) ?? 1, 1), Self.maximumChoiceCount)

        let messageObjects = messages.compactMap { $0 as? [String: Any] }
        let lastUser = messageObjects.last { ParsedJSON.string($0["role"]) == "user" }
        self.lastUserText = lastUser.map { Self.text(of: $0["content"]) } ?? ""
        self.promptTokens = max(
            1,
            messageObjects.reduce(0) { $0 + Self.text(of: $1["content"]).split(whereSeparator: \.isWhitespace).count + 1 }
        )

        self.toolName = Self.toolName(tools: object["tools"], choice: object["tool_choice"])
        self.directives = (object["mock"] as? [String: Any]).map(MockDirectives.init) ?? MockDirectives()
    }

    /// DeepSeek's reasoning models stream `reasoning_content` before the answer.
    var isReasoningModel: Bool {
        let name = self.model.lowercased()
        return name.contains("reasoner") || name.contains("r1")
    }

    /// String content as is; array content (OpenAI "parts") as its text parts joined by spaces.
    private static func text(of content: Any?) -> String {
        if let string = ParsedJSON.string(content) { return string }
        guard let parts = content as? [Any] else { return "" }
        return parts.compactMap { part in
            ParsedJSON.string((part as? [String: Any])?["text"])
        }.joined(separator: " ")
    }

    private static func toolName(tools: Any?, choice: Any?) -> String? {
        guard let tools = tools as? [Any], let firstTool = tools.first as? [String: Any] else { return nil }
        if ParsedJSON.string(choice) == "none" { return nil }
        if let forced = ((choice as? [String: Any])?["function"] as? [String: Any])?["name"] as? String {
            return forced
        }
        return ParsedJSON.string((firstTool["function"] as? [String: Any])?["name"]) ?? "function"
    }

    private static func deserializeError(_ detail: String) -> String {
        "Failed to deserialize the JSON body into the target type: \(detail)"
    }
}
