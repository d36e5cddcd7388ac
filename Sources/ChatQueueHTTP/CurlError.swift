import CCurl

/// An error from the multi handle (adding a transfer, a socket action): the
/// failing call (`context`), libcurl's code and its words.
public struct CurlError: Error, Sendable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var context: String

    public var description: String { "\(context): \(message)" }

    static func multi(_ code: CURLMcode, _ context: String) -> CurlError {
        CurlError(code: Int(code.rawValue), message: String(cString: curl_multi_strerror(code)), context: context)
    }
}

/// Checks an option setter. A setter fails only for a bad option or value,
/// i.e. a programmer error, or when memory runs out: both are fatal.
@inline(__always)
func checkSetopt(_ code: CURLcode, _ option: @autoclosure () -> String) {
    precondition(code == CURLE_OK, "curl_easy_setopt(\(option())): \(String(cString: curl_easy_strerror(code)))")
}

/// Initializes libcurl once per process, before any other thread exists.
public enum Curl {
    nonisolated(unsafe) private static var initialized = false

    public static func globalInit() {
        guard !initialized else { return }
        initialized = true
        let code = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        precondition(code == CURLE_OK, "curl_global_init failed: \(code)")
    }

    public static var version: String { String(cString: curl_version()) }
}
