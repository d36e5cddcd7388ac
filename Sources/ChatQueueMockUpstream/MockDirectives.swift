// The "mock" object a test puts in a request body to script the reply.
// DeepSeek ignores unknown top-level fields and the worker forwards bodies
// byte-for-byte, so this is how a test reaches through the worker to here.

import ChatQueueCore

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
    /// nil: the mock's default latency (``MockUpstreamOptions/latency``).
    var firstByteDelayMilliseconds: Int?
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
    /// A stream without `usage` in its last chunk, as OpenAI streams unless
    /// the request asked for it (`stream_options.include_usage`).
    var noStreamUsage = false

    init() {}

    init(_ object: JSONObject) {
        self.status = object["status"]?.wholeNumber.flatMap(Self.errorStatus)
        self.retryAfter = Self.text(object["retry_after"])
        self.retryAfterMilliseconds = Self.text(object["retry_after_ms"])
        self.errorBody = object["error_body"]?.stringValue
        self.errorContentType = object["content_type"]?.stringValue
        self.failFirst = object["fail_first"]?.wholeNumber
        self.key = object["key"]?.stringValue
        self.failStatus = object["fail_status"]?.wholeNumber.flatMap(Self.errorStatus) ?? 503
        self.intervalMilliseconds = Self.milliseconds(object["interval_ms"])
        self.firstByteDelayMilliseconds = Self.milliseconds(object["first_byte_delay_ms"])
        self.keepaliveMilliseconds = Self.milliseconds(object["keepalive_ms"]).flatMap { $0 > 0 ? $0 : nil }
        self.keepaliveOnly = object["keepalive_only"]?.boolValue ?? false
        self.dropAfter = object["drop_after"]?.wholeNumber.map { max(0, $0) }
        self.emptyStream = object["empty_stream"]?.boolValue ?? false
        self.badResponse = object["bad_response"]?.boolValue ?? false
        self.streamError = object["stream_error"]?.boolValue ?? false
        self.words = object["words"]?.wholeNumber.map { max(0, $0) }
        self.padLines = max(0, object["pad_lines"]?.wholeNumber ?? 0)
        self.stamp = object["stamp"]?.boolValue ?? false
        self.noDone = object["no_done"]?.boolValue ?? false
        self.noStreamUsage = object["no_stream_usage"]?.boolValue ?? false
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
    private static func milliseconds(_ value: JSONValue?) -> Int? {
        guard let double = value?.doubleValue, double.isFinite else { return nil }
        return Int(min(max(0, double), Self.longestDelayMilliseconds).rounded(.up))
    }

    private static func text(_ value: JSONValue?) -> String? {
        if let string = value?.stringValue { return string }
        if let int = value?.wholeNumber { return String(int) }
        if let double = value?.doubleValue { return String(double) }
        return nil
    }
}
