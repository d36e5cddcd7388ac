/// What validation learned about a request (the body itself is forwarded
/// byte-for-byte, never re-encoded).
public struct ValidatedRequest: Sendable, Equatable {
    /// The requested model.
    public var model: String
    /// Whether the client asked for a streamed answer (`stream: true`).
    public var stream: Bool
    /// How many choices were asked for (`n`, default 1).
    public var n: Int

    /// What a validated request asked for.
    public init(model: String, stream: Bool, n: Int) {
        self.model = model
        self.stream = stream
        self.n = n
    }
}

/// Checks a chat completion request before it is sent upstream, so malformed
/// requests fail fast (and are dead-lettered) instead of costing an API call.
public enum RequestValidator {
    /// The `response_format.type` values the API accepts.
    public static let responseFormatTypes = ["text", "json_object", "json_schema"]

    /// Order: content type, then JSON, then fields, then the allow-list.
    ///
    /// - Content type: nil, "" or application/json (case-insensitive,
    ///   parameters like "; charset=utf-8" allowed), else unsupportedContentType.
    /// - Body: must parse (strict JSON) else invalidJSON (with the parse error
    ///   and offset); must be an object else invalidJSON.
    /// - Fields: `model` required non-empty string; `messages` required array
    ///   of >= 1 objects, each with a string `role`; checked only when present
    ///   and not null: `stream` bool, `n` integer 1...128, `temperature` number
    ///   0...2, `top_p` number 0...1, `max_tokens` integer >= 1,
    ///   `response_format` object whose `type` is text, json_object or
    ///   json_schema. All other fields pass unchecked.
    /// - allowedModels non-nil and not containing the model → modelNotFound.
    public static func validate(body: [UInt8], contentType: String?, allowedModels: Set<String>?) -> Result<ValidatedRequest, ChatError> {
        if let contentType, !isJSONContentType(contentType) {
            return .failure(.unsupportedContentType(contentType))
        }

        let fields: RequestFields
        switch RequestFields.read(body) {
        case .success(let read):
            fields = read
        case .failure(let error):
            return .failure(.invalidJSON("request body is not valid JSON: \(error.message) at byte offset \(error.offset)"))
        }
        guard fields.isObject else {
            return .failure(.invalidJSON("request body must be a JSON object"))
        }

        let validated: ValidatedRequest
        switch validateFields(fields) {
        case .success(let value): validated = value
        case .failure(let error): return .failure(error)
        }

        if let allowedModels, !allowedModels.contains(validated.model) {
            return .failure(.modelNotFound(validated.model))
        }
        return .success(validated)
    }

    /// Whether a content type names JSON: empty, or `application/json` with
    /// any parameters, compared case-insensitively.
    public static func isJSONContentType(_ contentType: String) -> Bool {
        let bytes = Array(contentType.utf8)
        let parametersStart = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
        var start = 0
        var end = parametersStart
        while start < end, ASCII.isWhitespace(bytes[start]) { start += 1 }
        while end > start, ASCII.isWhitespace(bytes[end - 1]) { end -= 1 }
        if start == end {
            // Blank means "not given"; parameters without a media type are not JSON.
            return parametersStart == bytes.count
        }
        return ASCII.equalsIgnoringCase(bytes[start..<end], "application/json")
    }

    // MARK: Fields

    private static func validateFields(_ request: RequestFields) -> Result<ValidatedRequest, ChatError> {
        // model
        let model: String
        switch request.model {
        case nil, .null?:
            return .failure(.invalidField(param: "model", message: "model is required"))
        case .string(let value)?:
            guard !value.isEmpty else {
                return .failure(.invalidField(param: "model", message: "model must not be empty"))
            }
            model = value
        default:
            return .failure(.invalidField(param: "model", message: "model must be a string"))
        }

        // messages
        switch request.messages {
        case .absentOrNull:
            return .failure(.invalidField(param: "messages", message: "messages is required"))
        case .notAnArray:
            return .failure(.invalidField(param: "messages", message: "messages must be an array"))
        case .array(count: 0, firstProblem: _):
            return .failure(.invalidField(param: "messages", message: "messages must contain at least one message"))
        case .array(_, firstProblem: .some(let problem)):
            let param = "messages[\(problem.position)]"
            if problem.notAnObject {
                return .failure(.invalidField(param: param, message: "\(param) must be an object"))
            }
            return .failure(.invalidField(param: "\(param).role", message: "\(param).role must be a string"))
        case .array(_, firstProblem: nil):
            break
        }

        // Optional fields: checked only when present and not null.
        var stream = false
        if let value = present(request.stream) {
            guard let flag = value.boolValue else {
                return .failure(.invalidField(param: "stream", message: "stream must be a boolean"))
            }
            stream = flag
        }

        var n = 1
        if let value = present(request.n) {
            guard let count = value.integerValue, (1...128).contains(count) else {
                return .failure(.invalidField(param: "n", message: "n must be an integer between 1 and 128"))
            }
            n = count
        }

        if let value = present(request.temperature) {
            guard let number = value.doubleValue, (0...2).contains(number) else {
                return .failure(.invalidField(param: "temperature", message: "temperature must be a number between 0 and 2"))
            }
        }

        if let value = present(request.topP) {
            guard let number = value.doubleValue, (0...1).contains(number) else {
                return .failure(.invalidField(param: "top_p", message: "top_p must be a number between 0 and 1"))
            }
        }

        if let value = present(request.maxTokens) {
            guard let count = value.integerValue, count >= 1 else {
                return .failure(.invalidField(param: "max_tokens", message: "max_tokens must be an integer of at least 1"))
            }
        }

        if let value = present(request.responseFormat) {
            guard case .object(let format) = value else {
                return .failure(.invalidField(param: "response_format", message: "response_format must be an object"))
            }
            guard let type = format["type"]?.stringValue, responseFormatTypes.contains(type) else {
                return .failure(.invalidField(
                    param: "response_format.type",
                    message: "response_format.type must be one of \(responseFormatTypes.joined(separator: ", "))"))
            }
        }

        return .success(ValidatedRequest(model: model, stream: stream, n: n))
    }

    /// The value unless it is absent or JSON null.
    private static func present(_ value: JSONValue?) -> JSONValue? {
        guard let value, !value.isNull else { return nil }
        return value
    }
}

/// The members of a request body the validator checks, read without building
/// a tree of the rest (`messages` can be large: each message is only checked
/// for a string `role`). A repeated member counts as its last occurrence, as
/// in a parsed tree.
struct RequestFields {
    enum Messages {
        case absentOrNull
        case notAnArray
        case array(count: Int, firstProblem: (position: Int, notAnObject: Bool)?)
    }

    var isObject = true
    var model: JSONValue?
    var messages = Messages.absentOrNull
    var stream: JSONValue?
    var n: JSONValue?
    var temperature: JSONValue?
    var topP: JSONValue?
    var maxTokens: JSONValue?
    var responseFormat: JSONValue?

    /// Reads `body`, which must be strict JSON (as `JSONValue(parsing:)` accepts).
    static func read(_ body: [UInt8]) -> Result<RequestFields, JSONParseError> {
        body.withUnsafeBytes { bytes in
            Result { () throws(JSONParseError) -> RequestFields in
                var parser = JSONParser(bytes: bytes)
                var fields = RequestFields()
                guard parser.peek() == ASCII.openBrace else {
                    try parser.skipValue()
                    try parser.expectEnd()
                    fields.isObject = false
                    return fields
                }
                try parser.scanObject { parser, key throws(JSONParseError) in
                    if key.equals("messages") {
                        fields.messages = try readMessages(&parser)
                    } else if key.equals("model") {
                        fields.model = try parser.parseValue()
                    } else if key.equals("stream") {
                        fields.stream = try parser.parseValue()
                    } else if key.equals("n") {
                        fields.n = try parser.parseValue()
                    } else if key.equals("temperature") {
                        fields.temperature = try parser.parseValue()
                    } else if key.equals("top_p") {
                        fields.topP = try parser.parseValue()
                    } else if key.equals("max_tokens") {
                        fields.maxTokens = try parser.parseValue()
                    } else if key.equals("response_format") {
                        fields.responseFormat = try parser.parseValue()
                    } else {
                        try parser.skipValue()
                    }
                }
                try parser.expectEnd()
                return fields
            }
        }
    }

    private static func readMessages(_ parser: inout JSONParser) throws(JSONParseError) -> Messages {
        switch parser.peek() {
        case UInt8(ascii: "n"):
            try parser.skipValue()
            return .absentOrNull
        case ASCII.openBracket:
            var count = 0
            var firstProblem: (position: Int, notAnObject: Bool)?
            try parser.scanArray { parser, position throws(JSONParseError) in
                count += 1
                guard parser.peek() == ASCII.openBrace else {
                    if firstProblem == nil { firstProblem = (position, true) }
                    try parser.skipValue()
                    return
                }
                var roleIsString = false
                try parser.scanObject { parser, key throws(JSONParseError) in
                    if key.equals("role") { roleIsString = parser.peek() == ASCII.quote }
                    try parser.skipValue()
                }
                if !roleIsString, firstProblem == nil { firstProblem = (position, false) }
            }
            return .array(count: count, firstProblem: firstProblem)
        default:
            try parser.skipValue()
            return .notAnArray
        }
    }
}
