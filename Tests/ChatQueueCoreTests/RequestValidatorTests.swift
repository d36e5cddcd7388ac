import ChatQueueCore
import Testing

private let validMessages = #""messages":[{"role":"user","content":"hi"}]"#

/// A request body with a valid model and messages plus `extra` members.
private func request(_ extra: String = "") -> [UInt8] {
    bytes(#"{"model":"deepseek-chat","# + validMessages + (extra.isEmpty ? "" : "," + extra) + "}")
}

private func validate(
    _ body: [UInt8], contentType: String? = "application/json", allowedModels: Set<String>? = nil
) -> Result<ValidatedRequest, ChatError> {
    RequestValidator.validate(body: body, contentType: contentType, allowedModels: allowedModels)
}

private func failure(_ result: Result<ValidatedRequest, ChatError>) -> ChatError? {
    if case .failure(let error) = result { return error }
    return nil
}

@Suite("Request validation")
struct RequestValidatorTests {
    @Test("a valid request with the defaults")
    func validRequestWithDefaults() {
        #expect(validate(request()) == .success(ValidatedRequest(model: "deepseek-chat", stream: false, n: 1)))
    }

    @Test("a valid request reports stream and n")

    func validRequestReportsStreamAndN() {
        let result = validate(request(#""stream":true,"n":3"#))
        #expect(result == .success(ValidatedRequest(model: "deepseek-chat", stream: true, n: 3)))
    }

    @Test("optional fields at their bounds, or null, pass")

    func optionalFieldsAtTheirBoundsAndNullPass() {
        let bounds = [
            #""n":1,"temperature":0,"top_p":0,"max_tokens":1"#,
            #""n":128,"temperature":2,"top_p":1,"max_tokens":100000"#,
            #""temperature":0.7,"top_p":0.95,"temperature":1.5e0"#,
            #""stream":null,"n":null,"temperature":null,"top_p":null,"max_tokens":null,"response_format":null"#,
            #""response_format":{"type":"text"}"#,
            #""response_format":{"type":"json_object"}"#,
            #""response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}"#,
            #""tools":"anything","stop":[1,2],"user":5,"frequency_penalty":99"#,  // other fields are not checked
        ]
        for extra in bounds {
            #expect(failure(validate(request(extra))) == nil, "\(extra)")
        }
        // Null optional fields fall back to the defaults.
        #expect(validate(request(#""stream":null,"n":null"#)) == .success(ValidatedRequest(model: "deepseek-chat", stream: false, n: 1)))
    }

    // MARK: Content type

    @Test("accepted content types", arguments: [nil, "", "application/json", "APPLICATION/JSON", "application/json; charset=utf-8", " Application/Json ;charset=UTF-8", "application/json;"] as [String?])
    func acceptedContentTypes(_ contentType: String?) {
        #expect(failure(validate(request(), contentType: contentType)) == nil)
    }

    @Test("rejected content types", arguments: ["text/plain", "application/jsonx", "application/json-patch+json", "application/x-www-form-urlencoded", "; charset=utf-8", "json"])
    func rejectedContentTypes(_ contentType: String) throws {
        let error = try #require(failure(validate(request(), contentType: contentType)))
        #expect(error.status == 400)
        #expect(error.type == "invalid_request_error")
        #expect(error.code == "unsupported_content_type")
        #expect(error.disposition == .deadLetter)
        #expect(error.message.contains(contentType))
    }

    @Test("content type is checked before JSON")

    func contentTypeIsCheckedBeforeJSON() {
        #expect(failure(validate(bytes("not json"), contentType: "text/plain"))?.code == "unsupported_content_type")
    }

    // MARK: JSON

    @Test("invalid JSON is reported with its byte offset")

    func invalidJSONIsReportedWithOffset() throws {
        let error = try #require(failure(validate(bytes(#"{"model": }"#))))
        #expect(error.code == "invalid_json")
        #expect(error.status == 400)
        #expect(error.type == "invalid_request_error")
        #expect(error.param == nil)
        #expect(error.disposition == .deadLetter)
        #expect(error.message.contains("unexpected character"))
        #expect(error.message.contains("offset 10"))
        #expect(failure(validate([]))?.code == "invalid_json")
        #expect(failure(validate(request() + bytes("x")))?.code == "invalid_json")
        #expect(failure(validate([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]))?.code == "invalid_json")
    }

    @Test("the body must be a JSON object", arguments: ["[]", "\"text\"", "1", "null", "[{\"model\":\"x\"}]"])
    func bodyMustBeAnObject(_ body: String) {
        #expect(failure(validate(bytes(body))) == .invalidJSON("request body must be a JSON object"))
    }

    @Test("JSON is checked before fields")

    func jsonIsCheckedBeforeFields() {
        #expect(failure(validate(bytes(#"{"n":0"#)))?.code == "invalid_json")
    }

    // MARK: Fields

    @Test("each broken required field gets its invalid_field error", arguments: [
        // model
        (#"{"# + validMessages + "}", "model", "model is required"),
        (#"{"model":null,"# + validMessages + "}", "model", "model is required"),
        (#"{"model":"","# + validMessages + "}", "model", "model must not be empty"),
        (#"{"model":7,"# + validMessages + "}", "model", "model must be a string"),
        (#"{"model":["x"],"# + validMessages + "}", "model", "model must be a string"),
        // messages
        (#"{"model":"m"}"#, "messages", "messages is required"),
        (#"{"model":"m","messages":null}"#, "messages", "messages is required"),
        (#"{"model":"m","messages":{"role":"user"}}"#, "messages", "messages must be an array"),
        (#"{"model":"m","messages":[]}"#, "messages", "messages must contain at least one message"),
        (#"{"model":"m","messages":["hi"]}"#, "messages[0]", "messages[0] must be an object"),
        (#"{"model":"m","messages":[{"role":"user"},null]}"#, "messages[1]", "messages[1] must be an object"),
        (#"{"model":"m","messages":[{"content":"hi"}]}"#, "messages[0].role", "messages[0].role must be a string"),
        (#"{"model":"m","messages":[{"role":"user"},{"role":"assistant"},{"role":1}]}"#, "messages[2].role", "messages[2].role must be a string"),
        (#"{"model":"m","messages":[{"role":null}]}"#, "messages[0].role", "messages[0].role must be a string"),
    ])
    func requiredFieldRules(body: String, param: String, message: String) {
        #expect(failure(validate(bytes(body))) == .invalidField(param: param, message: message))
    }

    @Test("each invalid optional field gets its invalid_field error", arguments: [
        (#""stream":"true""#, "stream", "stream must be a boolean"),
        (#""stream":1"#, "stream", "stream must be a boolean"),
        (#""n":0"#, "n", "n must be an integer between 1 and 128"),
        (#""n":129"#, "n", "n must be an integer between 1 and 128"),
        (#""n":-1"#, "n", "n must be an integer between 1 and 128"),
        (#""n":1.5"#, "n", "n must be an integer between 1 and 128"),
        (#""n":2.0"#, "n", "n must be an integer between 1 and 128"),
        (#""n":1e1"#, "n", "n must be an integer between 1 and 128"),
        (#""n":"2""#, "n", "n must be an integer between 1 and 128"),
        (#""n":99999999999999999999999"#, "n", "n must be an integer between 1 and 128"),
        (#""temperature":-0.1"#, "temperature", "temperature must be a number between 0 and 2"),
        (#""temperature":2.01"#, "temperature", "temperature must be a number between 0 and 2"),
        (#""temperature":"1""#, "temperature", "temperature must be a number between 0 and 2"),
        (#""temperature":1e400"#, "temperature", "temperature must be a number between 0 and 2"),
        (#""top_p":1.1"#, "top_p", "top_p must be a number between 0 and 1"),
        (#""top_p":-1"#, "top_p", "top_p must be a number between 0 and 1"),
        (#""top_p":true"#, "top_p", "top_p must be a number between 0 and 1"),
        (#""max_tokens":0"#, "max_tokens", "max_tokens must be an integer of at least 1"),
        (#""max_tokens":-5"#, "max_tokens", "max_tokens must be an integer of at least 1"),
        (#""max_tokens":10.5"#, "max_tokens", "max_tokens must be an integer of at least 1"),
        (#""max_tokens":"10""#, "max_tokens", "max_tokens must be an integer of at least 1"),
        (#""response_format":"json_object""#, "response_format", "response_format must be an object"),
        (#""response_format":[]"#, "response_format", "response_format must be an object"),
        (#""response_format":{}"#, "response_format.type", "response_format.type must be one of text, json_object, json_schema"),
        (#""response_format":{"type":"xml"}"#, "response_format.type", "response_format.type must be one of text, json_object, json_schema"),
        (#""response_format":{"type":null}"#, "response_format.type", "response_format.type must be one of text, json_object, json_schema"),
        (#""response_format":{"type":"JSON_OBJECT"}"#, "response_format.type", "response_format.type must be one of text, json_object, json_schema"),
    ])
    func optionalFieldRules(extra: String, param: String, message: String) throws {
        let error = try #require(failure(validate(request(extra))))
        #expect(error == .invalidField(param: param, message: message))
        #expect(error.status == 400)
        #expect(error.type == "invalid_request_error")
        #expect(error.code == "invalid_field")
        #expect(error.disposition == .deadLetter)
        #expect(!error.retryable)
    }

    // MARK: Allow-list

    @Test("the model allow-list rejects unknown models")

    func allowListRejectsUnknownModels() throws {
        #expect(failure(validate(request(), allowedModels: ["deepseek-chat", "deepseek-reasoner"])) == nil)
        #expect(failure(validate(request(), allowedModels: nil)) == nil)
        let error = try #require(failure(validate(request(), allowedModels: ["deepseek-reasoner"])))
        #expect(error == .modelNotFound("deepseek-chat"))
        #expect(error.status == 404)
        #expect(error.type == "not_found_error")
        #expect(error.code == "model_not_found")
        #expect(error.param == "model")
        #expect(error.disposition == .acknowledge)
        #expect(failure(validate(request(), allowedModels: []))?.code == "model_not_found")
    }

    @Test("fields are checked before the model allow-list")

    func fieldsAreCheckedBeforeTheAllowList() {
        let error = failure(validate(request(#""n":0"#), allowedModels: ["other"]))
        #expect(error?.code == "invalid_field")
    }
}
