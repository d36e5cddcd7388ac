import ChatQueueCore
import FuzzSupport

runLibFuzzer(fuzzRequestValidator)

/// RequestValidator on arbitrary bodies and content types, checked against a
/// plain reference built on the JSON tree from its documented rules: the
/// scanning validator must reach the same verdict (it forwards the body
/// byte-for-byte, so reading a member differently from a tree, e.g. a
/// repeated `model`, would let a request past the model allow-list).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzRequestValidator(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let contentType: String?
    switch mode % 8 {
    case 0: contentType = nil
    case 1: contentType = ""
    case 2: contentType = "application/json"
    case 3: contentType = "Application/JSON; charset=utf-8"
    case 4: contentType = "text/plain"
    default: contentType = String(decoding: input.field(until: 10), as: UTF8.self)
    }
    let allowedModels: Set<String>? = mode & 8 == 0 ? nil : ["deepseek-chat", "deepseek-reasoner"]
    let body = Array(input.takeRest())

    let result = RequestValidator.validate(body: body, contentType: contentType, allowedModels: allowedModels)
    let expected = reference(body: body, contentType: contentType, allowedModels: allowedModels)
    switch (result, expected) {
    case (.success(let got), .success(let want)):
        fuzzCheck(got == want, "validated \(got), the reference says \(want)")
    case (.failure(let got), .failure(let want)):
        fuzzCheck(got.code == want.code && got.param == want.param, "error \(got), the reference says \(want)")
        fuzzCheck(got.disposition == .deadLetter || got.code == "model_not_found", "invalid request not dead-lettered: \(got)")
    default:
        fuzzCheck(false, "validator says \(result), the reference says \(expected)")
    }
    return 0
}

/// RequestValidator.validate's documented rules, on a parsed tree.
private func reference(body: [UInt8], contentType: String?, allowedModels: Set<String>?) -> Result<ValidatedRequest, ChatError> {
    if let contentType, !RequestValidator.isJSONContentType(contentType) {
        return .failure(.unsupportedContentType(contentType))
    }
    guard let document = try? JSONValue(parsing: body) else { return .failure(.invalidJSON("")) }
    guard let object = document.objectValue else { return .failure(.invalidJSON("")) }
    func invalid(_ param: String) -> Result<ValidatedRequest, ChatError> {
        .failure(.invalidField(param: param, message: ""))
    }
    func present(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }
    guard let model = present("model") else { return invalid("model") }
    guard let modelName = model.stringValue, !modelName.isEmpty else { return invalid("model") }
    guard let messagesValue = present("messages") else { return invalid("messages") }
    guard let messages = messagesValue.arrayValue, !messages.isEmpty else { return invalid("messages") }
    for (position, message) in messages.enumerated() {
        guard let fields = message.objectValue else { return invalid("messages[\(position)]") }
        guard fields["role"]?.stringValue != nil else { return invalid("messages[\(position)].role") }
    }
    var stream = false
    if let value = present("stream") {
        guard let flag = value.boolValue else { return invalid("stream") }
        stream = flag
    }
    var n = 1
    if let value = present("n") {
        guard let count = value.integerValue, (1...128).contains(count) else { return invalid("n") }
        n = count
    }
    if let value = present("temperature") {
        guard let number = value.doubleValue, (0...2).contains(number) else { return invalid("temperature") }
    }
    if let value = present("top_p") {
        guard let number = value.doubleValue, (0...1).contains(number) else { return invalid("top_p") }
    }
    if let value = present("max_tokens") {
        guard let count = value.integerValue, count >= 1 else { return invalid("max_tokens") }
    }
    if let value = present("response_format") {
        guard let format = value.objectValue else { return invalid("response_format") }
        guard let type = format["type"]?.stringValue, RequestValidator.responseFormatTypes.contains(type) else {
            return invalid("response_format.type")
        }
    }
    if let allowedModels, !allowedModels.contains(modelName) {
        return .failure(.modelNotFound(modelName))
    }
    return .success(ValidatedRequest(model: modelName, stream: stream, n: n))
}
