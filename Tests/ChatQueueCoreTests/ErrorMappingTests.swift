import ChatQueueCore
import Testing

private func httpError(_ status: Int, _ body: String = "") -> ChatError {
    ChatError(upstream: .httpStatus(status, body: bytes(body)))
}

private let openAIErrorBody = #"{"error":{"message":"bad thing","type":"whatever_type","param":"messages","code":"some_code"}}"#

@Suite("Error mapping")
struct ErrorMappingTests {
    // MARK: HTTP statuses

    @Test("each upstream HTTP status maps to its error reply", arguments: [
        (400, 400, "invalid_request_error", false),
        (422, 422, "invalid_request_error", false),
        (401, 401, "authentication_error", false),
        (402, 402, "payment_required", false),
        (403, 403, "permission_error", false),
        (404, 404, "not_found_error", false),
        (405, 405, "invalid_request_error", false),
        (409, 409, "invalid_request_error", false),
        (413, 413, "invalid_request_error", false),
        (499, 499, "invalid_request_error", false),
        (408, 408, "upstream_error", true),
        (429, 429, "rate_limit_error", true),
        (500, 500, "upstream_error", true),
        (501, 501, "upstream_error", true),
        (502, 502, "upstream_error", true),
        (503, 503, "upstream_error", true),
        (504, 504, "upstream_error", true),
        (599, 599, "upstream_error", true),
    ])
    func httpStatusTable(upstream: Int, status: Int, type: String, retryable: Bool) {
        let error = httpError(upstream, openAIErrorBody)
        #expect(error.status == status)
        #expect(error.type == type)  // never the upstream's "whatever_type"
        #expect(error.code == "some_code")
        #expect(error.message == "bad thing")
        #expect(error.param == "messages")
        #expect(error.retryable == retryable)
        #expect(error.upstreamStatus == upstream)
        #expect(error.disposition == .acknowledge)
    }

    @Test("a non-error HTTP status is a bad response", arguments: [100, 200, 201, 204, 301, 302, 304])
    func nonErrorStatusesAreBadResponses(_ status: Int) {
        let error = httpError(status, openAIErrorBody)
        #expect(error.status == 502)
        #expect(error.type == "upstream_error")
        #expect(error.code == "bad_response")
        #expect(!error.retryable)
        #expect(error.upstreamStatus == status)
        #expect(error.disposition == .acknowledge)
    }

    @Test("DeepSeek's 402 Insufficient Balance maps to payment_required")

    func deepSeekInsufficientBalance() {
        let body = #"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#
        let error = httpError(402, body)
        #expect(
            error
                == ChatError(
                    status: 402, type: "payment_required", code: "invalid_request_error", message: "Insufficient Balance",
                    param: nil, retryable: false, upstreamStatus: 402, disposition: .acknowledge))
    }

    @Test("upstream error codes: numbers as text, null and missing as none; padding around the body")

    func upstreamCodeVariants() {
        #expect(httpError(400, #"{"error":{"message":"m","code":400}}"#).code == "400")
        #expect(httpError(400, #"{"error":{"message":"m","code":null}}"#).code == nil)
        #expect(httpError(400, #"{"error":{"message":"m"}}"#).code == nil)
        #expect(httpError(400, #"{"error":{"message":"m","param":5}}"#).param == nil)
        #expect(httpError(503, "  \n" + #"{"error":{"message":"overloaded","code":"busy"}}"# + "\n").message == "overloaded")
    }

    @Test("generic message when the body is not an error object")

    func genericMessageWhenTheBodyIsNotAnErrorObject() {
        #expect(httpError(503).message == "upstream returned HTTP 503")
        #expect(httpError(503, " \n\t ").message == "upstream returned HTTP 503")
        #expect(httpError(502, "\n  <html>Bad Gateway</html>\n").message == "upstream returned HTTP 502: <html>Bad Gateway</html>")
        #expect(httpError(500, #"{"detail":"nope"}"#).message == #"upstream returned HTTP 500: {"detail":"nope"}"#)
        #expect(httpError(500, #"{"error":"just a string"}"#).message == #"upstream returned HTTP 500: {"error":"just a string"}"#)
        #expect(httpError(500, #"{"error":{"code":"x"}}"#).message == #"upstream returned HTTP 500: {"error":{"code":"x"}}"#)
        #expect(httpError(500, #"{"error":{"code":"x"}}"#).code == "x")
        #expect(httpError(500, "plain").code == nil)
    }

    @Test("a generic message keeps only the first 200 bytes of the body")

    func genericMessageKeepsOnlyTheFirst200Bytes() {
        let long = String(repeating: "a", count: 199) + "bcdefgh"
        #expect(httpError(500, long).message == "upstream returned HTTP 500: " + String(repeating: "a", count: 199) + "b")
        // A multi-byte character across the cut is dropped whole, not mangled.
        let multiByte = String(repeating: "a", count: 199) + "é tail"
        #expect(httpError(500, multiByte).message == "upstream returned HTTP 500: " + String(repeating: "a", count: 199))
        // Invalid UTF-8 is decoded lossily.
        let invalid = ChatError(upstream: .httpStatus(500, body: [0x6F, 0x6B, 0xFF]))
        #expect(invalid.message == "upstream returned HTTP 500: ok\u{FFFD}")
    }

    // MARK: Other failures

    @Test("connection failures are retryable 502 upstream_error replies")

    func transportFailures() {
        let connection = ChatError(upstream: .connectionFailed("Could not resolve host: api.deepseek.com"))
        #expect(connection.status == 502)
        #expect(connection.type == "upstream_error")
        #expect(connection.code == "connection_failed")
        #expect(connection.retryable)
        #expect(connection.message.contains("Could not resolve host: api.deepseek.com"))
        #expect(connection.upstreamStatus == nil)

        let bad = ChatError(upstream: .badResponse("response is not a JSON object"))
        #expect((bad.status, bad.type, bad.code, bad.retryable) == (502, "upstream_error", "bad_response", false))
        #expect(bad.message.contains("response is not a JSON object"))

        let empty = ChatError(upstream: .emptyStream)
        #expect((empty.status, empty.type, empty.code, empty.retryable) == (502, "upstream_error", "empty_stream", true))

        let interrupted = ChatError(upstream: .streamInterrupted("connection reset"))
        #expect((interrupted.status, interrupted.type, interrupted.code, interrupted.retryable) == (502, "upstream_error", "stream_interrupted", true))
        #expect(interrupted.message.contains("connection reset"))
    }

    @Test("an error event in a stream keeps the upstream's code, message and param")

    func streamErrors() throws {
        let event = try json(#"{"error":{"message":"Content Exists Risk","type":"x","param":"messages","code":"content_filter"}}"#)
        let error = ChatError(upstream: .streamError(event))
        #expect(
            error
                == ChatError(
                    status: 502, type: "upstream_error", code: "content_filter", message: "Content Exists Risk",
                    param: "messages", retryable: false, upstreamStatus: nil, disposition: .acknowledge))
        let bare = ChatError(upstream: .streamError(try json(#"{"error":{}}"#)))
        #expect(bare.code == "upstream_error")
        #expect(!bare.message.isEmpty)
        #expect(bare.param == nil)
        #expect(ChatError(upstream: .streamError(try json(#"{"error":{"code":42}}"#))).code == "42")
    }

    @Test("timeouts are 504 timeout_error replies with their own codes", arguments: [
        (UpstreamFailure.connectTimeout, "connect_timeout", true),
        (.firstByteTimeout, "first_byte_timeout", true),
        (.idleTimeout, "idle_timeout", true),
        (.requestTimeout, "request_timeout", true),
        (.deadlineExceeded, "deadline_exceeded", false),
    ])
    func timeouts(failure: UpstreamFailure, code: String, retryable: Bool) {
        let error = ChatError(upstream: failure)
        #expect(error.status == 504)
        #expect(error.type == "timeout_error")
        #expect(error.code == code)
        #expect(error.retryable == retryable)
        #expect(error.upstreamStatus == nil)
        #expect(error.disposition == .acknowledge)
        #expect(!error.message.isEmpty)
    }

    @Test("every upstream failure's request is acked, not dead-lettered")

    func everyUpstreamFailureIsAcknowledged() {
        let failures: [UpstreamFailure] = [
            .httpStatus(400, body: []), .httpStatus(500, body: []), .connectionFailed("x"), .connectTimeout,
            .firstByteTimeout, .idleTimeout, .requestTimeout, .deadlineExceeded, .badResponse("x"), .emptyStream,
            .streamError(["error": [:]]), .streamInterrupted("x"),
        ]
        for failure in failures {
            #expect(ChatError(upstream: failure).disposition == .acknowledge, "\(failure)")
        }
    }

    // MARK: Retry decisions

    @Test("which failures are retried: 408, 429, 5xx but 501 and 505, transport and timeouts")

    func isRetryable() {
        for status in [408, 429, 500, 502, 503, 504] {
            #expect(UpstreamFailure.httpStatus(status, body: []).isRetryable, "\(status)")
        }
        for status in [200, 400, 401, 402, 403, 404, 422, 501, 505, 529] {
            #expect(!UpstreamFailure.httpStatus(status, body: []).isRetryable, "\(status)")
        }
        #expect(UpstreamFailure.connectionFailed("x").isRetryable)
        #expect(UpstreamFailure.connectTimeout.isRetryable)
        #expect(UpstreamFailure.firstByteTimeout.isRetryable)
        let notRetried: [UpstreamFailure] = [
            .idleTimeout, .requestTimeout, .deadlineExceeded, .badResponse("x"), .emptyStream, .streamError(.null), .streamInterrupted("x"),
        ]
        for failure in notRetried {
            #expect(!failure.isRetryable, "\(failure)")
        }
    }

    // MARK: Request errors and the wire body

    @Test("request errors: status, type, code and dead-lettering")

    func requestErrorFactories() {
        let invalid = ChatError.invalidJSON("bad")
        #expect(invalid == ChatError(status: 400, type: "invalid_request_error", code: "invalid_json", message: "bad", disposition: .deadLetter))
        let field = ChatError.invalidField(param: "n", message: "n is wrong")
        #expect(field == ChatError(status: 400, type: "invalid_request_error", code: "invalid_field", message: "n is wrong", param: "n", disposition: .deadLetter))
        let contentType = ChatError.unsupportedContentType("text/plain")
        #expect((contentType.status, contentType.code, contentType.disposition) == (400, "unsupported_content_type", .deadLetter))
        #expect(contentType.type == "invalid_request_error")
        let tooLarge = ChatError.requestTooLarge(size: 2_000_000, limit: 1_048_576)
        #expect((tooLarge.status, tooLarge.type, tooLarge.code, tooLarge.disposition) == (413, "invalid_request_error", "request_too_large", .deadLetter))
        #expect(tooLarge.message.contains("2000000") && tooLarge.message.contains("1048576"))
        let model = ChatError.modelNotFound("gpt-9")
        #expect((model.status, model.type, model.code, model.param, model.disposition) == (404, "not_found_error", "model_not_found", "model", .acknowledge))
        #expect(model.message.contains("gpt-9"))
        for error in [invalid, field, contentType, tooLarge, model] {
            #expect(!error.retryable)
            #expect(error.upstreamStatus == nil)
        }
    }

    @Test("the error reply body, byte for byte")

    func responseBodyExactBytes() {
        let error = ChatError.invalidField(param: "messages[0].role", message: "messages[0].role must be a \"string\"")
        #expect(
            text(error.responseBody(requestID: "req-1", attempts: 1))
                == #"{"error":{"message":"messages[0].role must be a \"string\"","type":"invalid_request_error","code":"invalid_field","param":"messages[0].role"},"status":400,"request_id":"req-1","retryable":false,"attempts":1}"#
        )
    }

    @Test("the error reply body with an upstream status and null fields")

    func responseBodyWithUpstreamStatusAndNulls() {
        let error = httpError(402, #"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":null}}"#)
        #expect(
            text(error.responseBody(requestID: "r/é", attempts: 3))
                == #"{"error":{"message":"Insufficient Balance","type":"payment_required","code":null,"param":null},"status":402,"request_id":"r/é","retryable":false,"attempts":3,"upstream_status":402}"#
        )
        let retryable = httpError(503)
        #expect(
            text(retryable.responseBody(requestID: "x", attempts: 2))
                == #"{"error":{"message":"upstream returned HTTP 503","type":"upstream_error","code":null,"param":null},"status":503,"request_id":"x","retryable":true,"attempts":2,"upstream_status":503}"#
        )
    }

    // MARK: Non-stream 200 bodies

    @Test("a completion body is trimmed, not re-encoded")

    func completionBodyIsTrimmedNotReencoded() throws {
        let object = #"{"id":"x", "choices" : [ ],"n":1.50}"#
        let body = bytes("\n\n" + object + "\n")
        let trimmed = try UpstreamBody.checkCompletion(body).get()
        #expect(Array(trimmed) == bytes(object))
        #expect(try UpstreamBody.checkCompletion(bytes(" \r\n\t" + object)).get().count == bytes(object).count)
        #expect(try UpstreamBody.checkCompletion(bytes(object)).get().startIndex == 0)
    }

    @Test("a completion body must be a JSON object", arguments: ["", "\n\n", "[]", "\"x\"", "{", "{} {}", "<html></html>", "data: {}\n\n"])
    func completionBodyMustBeAJSONObject(_ body: String) {
        #expect(UpstreamBody.checkCompletion(bytes(body)) == .failure(.badResponse("response is not a JSON object")))
    }

    @Test("completion body with an error member is an error")

    func completionBodyWithAnErrorMemberIsAnError() throws {
        let body = #"{"error":{"message":"Model overloaded","code":"overloaded"}}"#
        #expect(UpstreamBody.checkCompletion(bytes("\n" + body)) == .failure(.streamError(try json(body))))
        // A null error member is no error.
        #expect((try? UpstreamBody.checkCompletion(bytes(#"{"error":null,"id":"x"}"#)).get()) != nil)
    }
}
