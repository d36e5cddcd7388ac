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
        var start = body.startIndex
        var end = body.endIndex
        while start < end, ASCII.isWhitespace(body[start]) { start += 1 }
        while end > start, ASCII.isWhitespace(body[end - 1]) { end -= 1 }
        let trimmed = body[start..<end]
        guard let document = try? JSONValue(parsing: trimmed), case .object(let object) = document else {
            return .failure(.badResponse("response is not a JSON object"))
        }
        // `"error": null` is no error (some compatible servers always send the key).
        if let error = object["error"], !error.isNull {
            return .failure(.streamError(document))
        }
        return .success(trimmed)
    }
}
