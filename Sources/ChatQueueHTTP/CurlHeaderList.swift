import CCurl

/// Owns a `curl_slist` of request headers. Transfers only borrow it, so one
/// list serves every transfer of the same kind (the API key is copied once).
public final class CurlHeaderList {
    private(set) var list: UnsafeMutablePointer<curl_slist>?

    public init(_ headers: [String]) {
        for header in headers {
            guard let appended = curl_slist_append(list, header) else {
                fatalError("curl_slist_append: out of memory")
            }
            list = appended
        }
    }

    deinit { curl_slist_free_all(list) }
}
