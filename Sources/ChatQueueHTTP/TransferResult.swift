import CCurl

/// How a transfer ended, in the terms its owner acts on. libcurl's codes stay
/// inside this module: the worker maps these cases, never a `CURLcode`.
public enum TransferResult: Sendable, Equatable {
    case completed
    case failed(TransferError)

    /// Reduces a finished transfer's libcurl code.
    init(_ code: CURLcode) {
        self = code == CURLE_OK ? .completed : .failed(TransferError(code))
    }
}

/// Why a transfer failed: the kind its owner tells apart, and libcurl's words.
public struct TransferError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No connection came about: refused, unreachable, the host or proxy
        /// name did not resolve, the TLS handshake or certificate check failed.
        case couldNotConnect
        /// libcurl's timeout fired. The only one a transfer sets is the connect
        /// timeout (`CurlRequestOptions.connectTimeout`); the worker times the rest itself.
        case timedOut
        /// Anything else (reset, truncated response, a delegate's abort, ...).
        case other
    }

    public var kind: Kind
    /// libcurl's description of the code (`curl_easy_strerror`).
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    init(_ code: CURLcode) {
        let kind: Kind
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SSL_CONNECT_ERROR,
            CURLE_PEER_FAILED_VERIFICATION:
            kind = .couldNotConnect
        case CURLE_OPERATION_TIMEDOUT:
            kind = .timedOut
        default:
            kind = .other
        }
        self.init(kind: kind, message: String(cString: curl_easy_strerror(code)))
    }

    public var description: String { message }
}
