import FuzzSupport

@testable import ChatQueueCore

runLibFuzzer(fuzzJSON)

/// The JSON tree parser and the scanner that picks members out without a
/// tree (RequestValidator, CompletionAssembler, UpstreamBody): neither may
/// trap, they accept exactly the same documents, and what the tree parser
/// accepts serializes back to JSON that parses to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)

    let parsed = Result { () throws(JSONParseError) -> JSONValue in try JSONValue(parsing: bytes) }
    let value = try? parsed.get()
    if let value {
        let text = value.serialized()
        let again = try? JSONValue(parsing: text)
        fuzzCheck(again == value, "round trip changed \(value) into \(String(describing: again))")
    }

    var scanner = JSONParser(bytes: bytes)
    let scanned = Result { () throws(JSONParseError) in
        try scanner.skipValue()
        try scanner.expectEnd()
    }
    fuzzCheck(((try? scanned.get()) != nil) == (value != nil), "scanner and tree parser disagree: \(scanned) vs \(parsed)")

    var assembler = CompletionAssembler()
    let facts = try? assembler.add(chunk: bytes)
    fuzzCheck((facts != nil) == (value != nil), "assembler and tree parser disagree on \(parsed)")
    if let facts, let value {
        fuzzCheck(facts.isObject == (value.objectValue != nil), "isObject wrong for \(value)")
        fuzzCheck(facts.hasError == (value["error"] != nil), "hasError wrong for \(value)")
        let response = assembler.response().serialized()
        fuzzCheck((try? JSONValue(parsing: response)) != nil, "assembled response is not JSON")
    }

    let body = Array(bytes)
    let checked = UpstreamBody.checkCompletion(body)
    switch checked {
    case .success(let document):
        fuzzCheck(value?["error"] == nil || value?["error"] == .null, "error object accepted as completion")
        fuzzCheck(value?.objectValue != nil, "non-object accepted as completion: \(parsed)")
        fuzzCheck(try! JSONValue(parsing: document) == value!, "trimmed completion parses differently")
    case .failure(.streamError):
        fuzzCheck(value?["error"] != nil, "streamError without an error member")
    case .failure:
        fuzzCheck(value?.objectValue == nil, "object rejected as completion: \(String(describing: value))")
    }
    // The one-scan check and usage read agrees with the separate ones.
    let raw = UpstreamBody.tokenUsage(body)
    switch UpstreamBody.checkCompletionReadingUsage(body) {
    case .success(let both):
        fuzzCheck(checked == .success(both.document), "the one-scan check disagrees")
        fuzzCheck(both.usage == raw.map { TokenUsage(prompt: $0.prompt, completion: $0.completion) }, "the one-scan usage disagrees")
    case .failure(let failure):
        fuzzCheck(checked == .failure(failure), "the one-scan check disagrees")
    }

    // The scanner's integer reader agrees with JSONValue.integerValue.
    if case .number? = value {
        var reader = JSONParser(bytes: bytes)
        let integer = try? reader.integer()
        fuzzCheck(integer == value?.integerValue, "integer() read \(String(describing: integer)) for \(value!)")
    }
    return 0
}
