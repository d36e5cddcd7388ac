import CCurl

/// An HTTP POST run to its end on the calling thread (`curl_easy_perform`),
/// for a thread of its own that may block (the span exporter), never the
/// event loop. Owns its easy handle, so the connection is kept for the next
/// POST. One thread at a time.
public final class CurlBlockingPost {
    /// How a POST ended.
    public enum Outcome: Sendable, Equatable {
        /// A response came back with this HTTP status (any: the caller judges it).
        case status(Int)
        case failed(TransferError)
    }

    private let easy: UnsafeMutableRawPointer
    private let headers: CurlHeaderList

    /// `headers` are sent with every POST ("Content-Type: application/json").
    public init(url: String, headers: [String], connectTimeout: Double) {
        Curl.globalInit()
        guard let easy = curl_easy_init() else { fatalError("curl_easy_init: out of memory") }
        self.easy = easy
        self.headers = CurlHeaderList(headers + ["Expect:"])  // no 100-continue round trip for larger bodies
        checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_URL, url), "URL")
        checkSetopt(cq_curl_easy_setopt_long(easy, CURLOPT_POST, 1), "POST")
        checkSetopt(cq_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, self.headers.list), "HTTPHEADER")
        checkSetopt(
            cq_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(connectTimeout * 1000))),
            "CONNECTTIMEOUT_MS")
        // Other threads handle signals; libcurl must not use SIGALRM for its timeouts.
        checkSetopt(cq_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        // As for upstream transfers: no proxy from the environment, HTTP(S) only.
        checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_PROXY, ""), "PROXY")
        checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_NOPROXY, ""), "NOPROXY")
        checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR")
        // The response body (a collector's partial-success note) is not read: without a
        // write function libcurl would print it to stdout.
        checkSetopt(cq_curl_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, discardResponse), "WRITEFUNCTION")
    }

    deinit { curl_easy_cleanup(easy) }

    /// POSTs `body`, waiting at most `timeout` seconds (at least a millisecond) for the whole exchange.
    public func post(_ body: [UInt8], timeout: Double) -> Outcome {
        let milliseconds = timeout.isFinite ? max(1, Int(min(timeout, 86_400) * 1000)) : 86_400_000
        checkSetopt(cq_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, milliseconds), "TIMEOUT_MS")
        checkSetopt(cq_curl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "POSTFIELDSIZE")
        let code: CURLcode = body.withUnsafeBytes { bytes in
            // POSTFIELDS borrows the bytes: they outlive the transfer, which ends inside this closure.
            let pointer = UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)
            checkSetopt(cq_curl_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, pointer), "POSTFIELDS")
            let result = curl_easy_perform(easy)
            checkSetopt(cq_curl_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, nil), "POSTFIELDS")
            return result
        }
        guard code == CURLE_OK else { return .failed(TransferError(code)) }
        var status = 0
        _ = cq_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return .status(status)
    }
}

private func discardResponse(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ userdata: UnsafeMutableRawPointer?
) -> Int {
    size * count
}
