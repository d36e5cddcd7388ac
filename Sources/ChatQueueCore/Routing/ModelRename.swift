/// The one rewrite of a request body: a route's upstream that knows the
/// model by another name gets the body with the top-level `model` member's
/// value replaced, every other byte as the requester sent it.
public enum ModelRename {
    /// `body` with the value of each top-level `model` member replaced by
    /// `model` as a JSON string (a duplicate key is replaced too, so the
    /// upstream sees the new name whichever duplicate it reads). Nil when the
    /// body is not a JSON object (validated requests always are).
    public static func body(_ body: [UInt8], withModel model: String) -> [UInt8]? {
        let spans: [Range<Int>]? = body.withUnsafeBytes { bytes in
            var parser = JSONParser(bytes: bytes)
            var spans: [Range<Int>] = []
            do {
                try parser.scanObject { (parser, key) throws(JSONParseError) in
                    if key.equals("model") {
                        spans.append(try parser.skipValueReturningRange())
                    } else {
                        try parser.skipValue()
                    }
                }
                try parser.expectEnd()
            } catch {
                return nil
            }
            return spans
        }
        guard let spans else { return nil }
        var replacement: [UInt8] = []
        JSONValue.serializeString(model, into: &replacement)
        var rewritten: [UInt8] = []
        rewritten.reserveCapacity(body.count + spans.count * replacement.count)
        var copied = 0
        for span in spans {
            rewritten.append(contentsOf: body[copied..<span.lowerBound])
            rewritten.append(contentsOf: replacement)
            copied = span.upperBound
        }
        rewritten.append(contentsOf: body[copied...])
        return rewritten
    }
}
