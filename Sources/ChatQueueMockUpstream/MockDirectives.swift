// The "mock" object a test puts in a request body to script the reply.
// DeepSeek ignores unknown top-level fields and the worker forwards bodies
// byte-for-byte, so this is how a test reaches through the worker to here.

struct MockDirectives {
    /// Answer with this HTTP status (300...599) and its OpenAI-shaped error.
    var status: Int?
    /// Value of `Retry-After` (seconds, or any text such as an HTTP date).
    var retryAfter: String?
    /// Value of `retry-after-ms`.
    var retryAfterMilliseconds: String?
    /// A raw body sent instead of the generated error JSON.
    var errorBody: String?
    /// Content-Type for `error_body` (default: JSON if it looks like JSON, else text/plain).
    var errorContentType: String?

    /// The first `failFirst` calls carrying `key` fail with `failStatus`.
    var failFirst: Int?
    var key: String?
    var failStatus: Int = 503

    var intervalMilliseconds: Int?
    var firstByteDelayMilliseconds: Int = 0
    var keepaliveMilliseconds: Int?
    var keepaliveOnly = false
    var dropAfter: Int?
    var emptyStream = false
    var badResponse = false
    var streamError = false
    var words: Int?
    var padLines: Int = 0
    var stamp = false
    var noDone = false

    init() {}

    init(_ object: [String: Any]) {
        self.status = ParsedJSON.int(object["status"]).flatMap(Self.errorStatus)
        self.retryAfter = Self.text(object["retry_after"])
        self.retryAfterMilliseconds = Self.text(object["retry_after_ms"])
        self.errorBody = ParsedJSON.string(object["error_body"])
        self.errorContentType = ParsedJSON.string(object["content_type"])
        self.failFirst = ParsedJSON.int(object["fail_first"])
        self.key = ParsedJSON.string(object["key"])
        self.failStatus = ParsedJSON.int(object["fail_status"]).flatMap(Self.errorStatus) ?? 503
        self.intervalMilliseconds = Self.milliseconds(object["interval_ms"])
        self.firstByteDelayMilliseconds = Self.milliseconds(object["first_byte_delay_ms"]) ?? 0
        self.keepaliveMilliseconds = Self.milliseconds(object["keepalive_ms"]).flatMap { $0 > 0 ? $0 : nil }
        self.keepaliveOnly = ParsedJSON.bool(object["keepalive_only"]) ?? false
        self.dropAfter = ParsedJSON.int(object["drop_after"]).map { max(0, $0) }
        self.emptyStream = ParsedJSON.bool(object["empty_stream"]) ?? false
        self.badResponse = ParsedJSON.bool(object["bad_response"]) ?? false
        self.streamError = ParsedJSON.bool(object["stream_error"]) ?? false
        self.words = ParsedJSON.int(object["words"]).map { max(0, $0) }
        self.padLines = max(0, ParsedJSON.int(object["pad_lines"]) ?? 0)
        self.stamp = ParsedJSON.bool(object["stamp"]) ?? false
        self.noDone = ParsedJSON.bool(object["no_done"]) ?? false
    }

    /// Headers that go with an error answer.
    var retryHeaders: [(String, String)] {
        var headers: [(String, String)] = []
        if let retryAfter { headers.append(("Retry-After", retryAfter)) }
        if let retryAfterMilliseconds { headers.append(("retry-after-ms", retryAfterMilliseconds)) }
        return headers
    }

    /// Statuses a scripted error may use. 2xx means "answer normally"; 1xx is not a final answer.
    private static func errorStatus(_ status: Int) -> Int? {
        (300...599).contains(status) ? status : nil
    }

    /// About 31 years: long enough to mean "forever", short enough not to overflow nanoseconds.
    private static let longestDelayMilliseconds = 1e12

    // Fractional milliseconds are rounded up so "0.5" still means "some delay".
    private static func milliseconds(_ value: Any?) -> Int? {
        guard let double = ParsedJSON.double(value), double.isFinite else { return nil }
        return Int(min(max(0, double), Self.longestDelayMilliseconds).rounded(.up))
    }

    private static func text(_ value: Any?) -> String? {
        if let string = ParsedJSON.string(value) { return string }
        if let int = ParsedJSON.int(value) { return String(int) }
        if let double = ParsedJSON.double(value) { return String(double) }
        return nil
    }
}
