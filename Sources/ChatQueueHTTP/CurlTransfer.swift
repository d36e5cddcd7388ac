import CCurl

/// Receives a transfer's response as libcurl delivers it, inside
/// `CurlMulti.socketAction`, on the event loop thread.
public protocol CurlTransferDelegate: AnyObject {
    /// One response header line, CRLF included (the status line too).
    func transfer(_ transfer: CurlTransfer, didReceiveHeaderLine line: UnsafeRawBufferPointer)
    /// Response body bytes: take them, abort the transfer (it then completes
    /// with a `TransferError` of kind `.other`), or pause it (the same bytes come again after
    /// `resume()`).
    func transfer(_ transfer: CurlTransfer, didReceive data: UnsafeRawBufferPointer) -> CurlWriteDecision
}

/// What a delegate does with body bytes.
public enum CurlWriteDecision: Sendable {
    case consumed
    /// libcurl keeps the bytes and stops reading the socket until `resume()`.
    case pause
    case abort
}

/// What a transfer needs that does not change between transfers.
public struct CurlRequestOptions: Sendable {
    public var url: String
    /// Seconds for TCP + TLS connect.
    public var connectTimeout: Double
    /// A CA bundle replacing the system's, for an upstream with a private CA.
    public var caFile: String?
    /// The proxy URL; nil means none, whatever the environment's proxy variables say.
    public var proxy: String?

    public init(url: String, connectTimeout: Double, caFile: String? = nil, proxy: String? = nil) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.caFile = caFile
        self.proxy = proxy
    }
}

/// An HTTP POST, owning its easy handle. Added to a `CurlMulti` to run.
/// Reusable: the options that never change are set once, and `prepare(body:)`
/// sets the next request's body, so a pooled transfer skips libcurl's
/// per-handle set-up (URL parsing, allocations) on every request.
public final class CurlTransfer {
    let easy: UnsafeMutableRawPointer
    public weak var delegate: CurlTransferDelegate?
    /// Kept alive for as long as the transfer may use it.
    private let headers: CurlHeaderList
    /// This request's own header list (a traced request's), instead of `headers`.
    private var requestHeaders: CurlHeaderList?
    /// The URL, parsed once: given as a string, libcurl would parse it again
    /// for every request.
    private let url: OpaquePointer

    public init(options: CurlRequestOptions, headers: CurlHeaderList) {
        guard let easy = curl_easy_init(), let url = curl_url() else { fatalError("curl_easy_init: out of memory") }
        self.easy = easy
        self.headers = headers
        self.url = url
        let me = Unmanaged.passUnretained(self).toOpaque()
        if curl_url_set(url, CURLUPART_URL, options.url, 0) == CURLUE_OK {
            checkSetopt(cq_curl_easy_setopt_pointer(easy, CURLOPT_CURLU, UnsafeMutableRawPointer(url)), "CURLU")
        } else {
            // Not a URL libcurl's parser accepts: let the request fail with libcurl's own error.
            checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_URL, options.url), "URL")
        }
        checkSetopt(cq_curl_easy_setopt_long(easy, CURLOPT_POST, 1), "POST")
        checkSetopt(cq_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headers.list), "HTTPHEADER")
        checkSetopt(
            cq_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(options.connectTimeout * 1000)),
            "CONNECTTIMEOUT_MS")
        // The worker is single-threaded and handles its own timeouts; signals must not be used.
        checkSetopt(cq_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        checkSetopt(cq_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1), "TCP_KEEPALIVE")
        // Only what configuration says: libcurl would otherwise take a proxy from http_proxy,
        // https_proxy or ALL_PROXY (and exceptions from NO_PROXY) in the worker's environment.
        // An empty CURLOPT_PROXY disables proxies; an empty CURLOPT_NOPROXY exempts no host.
        checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_PROXY, options.proxy ?? ""), "PROXY")
        checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_NOPROXY, ""), "NOPROXY")
        // HTTP(S) only, redirects included: no file://, ftp://, ... whatever the URL turns into.
        checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR")
        checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"), "REDIR_PROTOCOLS_STR")
        if let caFile = options.caFile {
            checkSetopt(cq_curl_easy_setopt_string(easy, CURLOPT_CAINFO, caFile), "CAINFO")
        }
        checkSetopt(cq_curl_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback), "WRITEFUNCTION")
        checkSetopt(cq_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me), "WRITEDATA")
        checkSetopt(cq_curl_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback), "HEADERFUNCTION")
        checkSetopt(cq_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me), "HEADERDATA")
    }

    /// The headers of the next request: `list` (kept alive until replaced),
    /// or nil for the list the transfer was made with. Costs nothing when
    /// the shared list stays in use.
    public func use(headers list: CurlHeaderList?) {
        if let list {
            checkSetopt(cq_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list.list), "HTTPHEADER")
            requestHeaders = list
        } else if requestHeaders != nil {
            checkSetopt(cq_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headers.list), "HTTPHEADER")
            requestHeaders = nil
        }
    }

    /// Sets the body of the next request (copied by libcurl).
    public func prepare(body: UnsafeRawBufferPointer) {
        // Size first: COPYPOSTFIELDS copies exactly that many bytes (bodies may hold NULs in theory).
        checkSetopt(cq_curl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "POSTFIELDSIZE")
        let bytes = UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)
        checkSetopt(cq_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, bytes), "COPYPOSTFIELDS")
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_url_cleanup(url)
    }

    /// Continues a transfer paused by a delegate; the kept bytes are
    /// delivered again, possibly before this returns. Not from inside a
    /// callback. Throws when the delegate refused the kept bytes: the
    /// transfer is then finished (libcurl will not drive it any more).
    public func resume() throws(TransferError) {
        let code = curl_easy_pause(easy, CQ_CURLPAUSE_CONT)
        guard code == CURLE_OK else { throw TransferError(code) }
    }

    /// The HTTP status of the last response (0 before headers arrived).
    public var responseCode: Int {
        var code = 0
        _ = cq_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    /// The response's Content-Type, if it had one.
    public var contentType: String? {
        var value: UnsafeMutablePointer<CChar>?
        guard cq_curl_easy_getinfo_string(easy, CURLINFO_CONTENT_TYPE, &value) == CURLE_OK, let value else {
            return nil
        }
        return String(cString: value)
    }
}

private func curlWriteCallback(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ userdata: UnsafeMutableRawPointer?
) -> Int {
    guard let userdata else { return 0 }  // never: WRITEDATA is set with the callback
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    guard let delegate = transfer.delegate else { return 0 }
    switch delegate.transfer(transfer, didReceive: UnsafeRawBufferPointer(start: data, count: length)) {
    case .consumed: return length
    case .pause: return CQ_CURL_WRITEFUNC_PAUSE
    case .abort: return 0
    }
}

private func curlHeaderCallback(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ userdata: UnsafeMutableRawPointer?
) -> Int {
    guard let userdata else { return 0 }  // never: HEADERDATA is set with the callback
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    transfer.delegate?.transfer(transfer, didReceiveHeaderLine: UnsafeRawBufferPointer(start: data, count: length))
    return length
}
