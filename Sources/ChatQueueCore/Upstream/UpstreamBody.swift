/// Checks on upstream answers that arrive with HTTP 200.
public enum UpstreamBody {
    /// Checks a non-stream 200 body.
    ///
    /// Surrounding ASCII whitespace (DeepSeek pads with blank lines under load)
    /// is removed; the rest must be a JSON object, else
    /// `badResponse("response is not a JSON object")`. An object with a
    /// top-level, non-null `error` member is an error answer despite the 200:
    /// `.streamError(object)`. On success the trimmed bytes are returned
    /// unchanged (never re-encoded).
    public static func checkCompletion(_ body: [UInt8]) -> Result<ArraySlice<UInt8>, UpstreamFailure> {
        checkCompletionReadingUsage(body).map(\.document)
    }

    /// `checkCompletion`, reading the `usage` token counts in the same scan
    /// (nil without a usage object), so a document is scanned once.
    public static func checkCompletionReadingUsage(
        _ body: [UInt8]
    ) -> Result<(document: ArraySlice<UInt8>, usage: TokenUsage?), UpstreamFailure> {
        var start = body.startIndex
        var end = body.endIndex
        while start < end, ASCII.isWhitespace(body[start]) { start += 1 }
        while end > start, ASCII.isWhitespace(body[end - 1]) { end -= 1 }
        let trimmed = body[start..<end]
        // Checked without building a tree: only `error` and `usage` matter here.
        let scan: Result<(hasError: Bool, usage: TokenUsage?), JSONParseError> = trimmed.withUnsafeBytes { bytes in
            Result { () throws(JSONParseError) -> (hasError: Bool, usage: TokenUsage?) in
                var parser = JSONParser(bytes: bytes)
                guard parser.peek() == ASCII.openBrace else { throw JSONParseError(offset: 0, message: "not an object") }
                var hasError = false
                var usage: TokenUsage?
                try parser.scanObject { parser, key throws(JSONParseError) in
                    if key.equals("usage"), parser.peek() == ASCII.openBrace {
                        let counts = try readUsage(&parser)
                        usage = TokenUsage(prompt: counts.prompt, completion: counts.completion)
                        return
                    }
                    // `"error": null` is no error (some compatible servers always send the key).
                    if key.equals("error") { hasError = !parser.nextIsNull() }
                    try parser.skipValue()
                }
                try parser.expectEnd()
                return (hasError, usage)
            }
        }
        switch scan {
        case .failure:
            return .failure(.badResponse("response is not a JSON object"))
        case .success(let checked) where checked.hasError:
            // Rare: parsed once more, whole, for the error mapping.
            return .failure(.streamError((try? JSONValue(parsing: trimmed)) ?? .null))
        case .success(let checked):
            return .success((trimmed, checked.usage))
        }
    }

    /// The counts of the `usage` object the parser is at (0 for a count that is missing).
    private static func readUsage(_ parser: inout JSONParser) throws(JSONParseError) -> (prompt: Int, completion: Int) {
        var counts = (prompt: 0, completion: 0)
        try parser.scanObject { parser, key throws(JSONParseError) in
            if key.equals("prompt_tokens") {
                counts.prompt = try parser.integer() ?? 0
            } else if key.equals("completion_tokens") {
                counts.completion = try parser.integer() ?? 0
            } else {
                try parser.skipValue()
            }
        }
        return counts
    }

    /// The `usage` token counts of a chat.completion body (0 for a count that
    /// is missing), read without building a tree; nil without a usage object
    /// or when the body is not JSON.
    public static func tokenUsage(_ body: [UInt8]) -> (prompt: Int, completion: Int)? {
        let scan: Result<(prompt: Int, completion: Int)?, JSONParseError> = body.withUnsafeBytes { bytes in
            Result { () throws(JSONParseError) -> (prompt: Int, completion: Int)? in
                var parser = JSONParser(bytes: bytes)
                var usage: (prompt: Int, completion: Int)?
                try parser.scanObject { parser, key throws(JSONParseError) in
                    guard key.equals("usage"), parser.peek() == ASCII.openBrace else { return try parser.skipValue() }
                    usage = try readUsage(&parser)
                }
                return usage
            }
        }
        return (try? scan.get()) ?? nil
    }
}
