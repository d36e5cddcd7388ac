import ChatQueueCore

/// The UTF-8 bytes of `text`.
func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

/// `bytes` decoded as UTF-8 (lossily, which tests don't rely on).
func text<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    String(decoding: Array(bytes), as: UTF8.self)
}

/// Parses `json`, failing the calling test by throwing when it is invalid.
func json(_ json: String) throws -> JSONValue {
    try JSONValue(parsing: bytes(json))
}

/// The parse error for `json`, or nil when it parses.
func parseError(_ json: [UInt8]) -> JSONParseError? {
    do {
        _ = try JSONValue(parsing: json)
        return nil
    } catch {
        return error
    }
}

func parseError(_ json: String) -> JSONParseError? {
    parseError(bytes(json))
}
