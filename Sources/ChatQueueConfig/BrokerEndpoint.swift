/// One broker to connect to, parsed from an `amqp://` or `amqps://` URL.
///
/// The URL form is RabbitMQ's: `amqp[s]://[user[:password]@]host[:port][/vhost]`,
/// with user, password and vhost percent-encoded (`%2f` is the vhost `/`).
/// Query parameters are rejected rather than ignored: heartbeat and the like are keys.
public struct BrokerEndpoint: Sendable, Equatable {
    /// Whether the connection uses TLS (`amqps://`).
    public var tls: Bool
    /// Host name or IP address (IPv6 without brackets).
    public var host: String
    /// TCP port: 5672 for amqp://, 5671 for amqps:// unless given.
    public var port: Int
    /// The virtual host, percent-decoded; `/` when the URL has no path.
    public var vhost: String
    /// User name; `guest` when the URL has none.
    public var user: String
    /// Password; `guest` when the URL has none. `broker.password` (or its file) replaces it.
    public var password: Secret

    public init(tls: Bool, host: String, port: Int, vhost: String, user: String, password: Secret) {
        self.tls = tls
        self.host = host
        self.port = port
        self.vhost = vhost
        self.user = user
        self.password = password
    }

    /// The URL with the password replaced by `***`, normalized (explicit port,
    /// vhost encoded), safe to log.
    public var redacted: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "amqps" : "amqp")://\(percentEncoded(user)):***@\(hostPart):\(port)/\(percentEncoded(vhost))"
    }

    /// Parses one broker URL; problems are reported against `key` (normally `broker.url`).
    public init(url: String, key: String = "broker.url") throws(ConfigError) {
        func invalid(_ problem: String) -> ConfigError {
            ConfigError(key: key, message: "\(problem) in \"\(redactedURL(url))\"")
        }
        let lowercased = url.lowercased()
        let rest: Substring
        if lowercased.hasPrefix("amqp://") {
            tls = false
            port = 5672
            rest = url.dropFirst("amqp://".count)
        } else if lowercased.hasPrefix("amqps://") {
            tls = true
            port = 5671
            rest = url.dropFirst("amqps://".count)
        } else {
            throw invalid("expected an amqp:// or amqps:// URL")
        }
        if rest.contains(where: \.isWhitespace) {
            throw invalid("expected no whitespace")
        }

        // The user info ends at the last "@": a password may hold a raw "/", "?", "#" or "@"
        // (so a vhost holding "@" must write it as %40).
        let at = rest.lastIndex(of: "@")
        let hostPortPath = at.map { rest[rest.index(after: $0)...] } ?? rest
        if hostPortPath.contains("?") || hostPortPath.contains("#") {
            throw invalid("expected no query or fragment (heartbeat and such are broker.* keys)")
        }
        let hostAndPort = hostPortPath.prefix { $0 != "/" }
        let path = hostPortPath.dropFirst(hostAndPort.count).dropFirst()  // without the leading "/"

        user = "guest"
        password = Secret("guest")
        if let at {
            let userInfo = rest[..<at]
            let userPart = userInfo.prefix { $0 != ":" }
            guard let decodedUser = percentDecoded(userPart) else {
                throw invalid("invalid percent-encoding in the user")
            }
            if !decodedUser.isEmpty { user = decodedUser }
            if userPart.endIndex < userInfo.endIndex {
                let passwordPart = userInfo[userInfo.index(after: userPart.endIndex)...]
                guard let decodedPassword = percentDecoded(passwordPart) else {
                    throw invalid("invalid percent-encoding in the password")
                }
                password = Secret(decodedPassword)
            }
        }

        var portPart: Substring?
        if hostAndPort.hasPrefix("[") {
            guard let close = hostAndPort.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            host = String(hostAndPort[hostAndPort.index(after: hostAndPort.startIndex)..<close])
            let afterHost = hostAndPort[hostAndPort.index(after: close)...]
            if !afterHost.isEmpty {
                guard afterHost.hasPrefix(":") else { throw invalid("unexpected text after the IPv6 address") }
                portPart = afterHost.dropFirst()
            }
        } else if let colon = hostAndPort.firstIndex(of: ":") {
            host = String(hostAndPort[..<colon])
            portPart = hostAndPort[hostAndPort.index(after: colon)...]
        } else {
            host = String(hostAndPort)
        }
        if host.isEmpty { throw invalid("missing host") }
        if let portPart {
            guard let parsed = Int(portPart), portPart.allSatisfy(\.isASCII), (1...65535).contains(parsed) else {
                throw invalid("expected a port in 1...65535, got \"\(portPart)\"")
            }
            port = parsed
        }

        if path.isEmpty {
            vhost = "/"
        } else {
            if path.contains("/") { throw invalid("expected the vhost as one path segment (write \"/\" as %2f)") }
            guard let decoded = percentDecoded(path) else { throw invalid("invalid percent-encoding in the vhost") }
            vhost = decoded
        }
    }
}

/// A URL from configuration, safe to quote in an error message. The user
/// info ends at the last `@` (passwords may hold a raw `/`, `?`, `#` or `@`):
/// its password (after the first `:`) becomes `***`, and with `hidingUser`
/// the whole user info (an upstream's "user" may be a token). A query or
/// fragment after the host, which may carry a key, becomes `?***` or `#***`.
func redactedURL(_ url: String, hidingUser: Bool = false) -> String {
    let afterScheme = url.range(of: "://")?.upperBound ?? url.startIndex
    var result = String(url[..<afterScheme])
    var rest = url[afterScheme...]
    if let at = rest.lastIndex(of: "@") {
        let userInfo = rest[..<at]
        if hidingUser {
            result += "***"
        } else if let colon = userInfo.firstIndex(of: ":") {
            result += userInfo[...colon] + "***"
        } else {
            result += userInfo
        }
        rest = rest[at...]
    }
    if let mark = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) {
        return result + rest[..<mark] + String(rest[mark]) + "***"
    }
    return result + rest
}

/// Decodes `%XX` escapes; nil for malformed escapes or invalid UTF-8.
private func percentDecoded(_ text: Substring) -> String? {
    var bytes: [UInt8] = []
    var utf8 = text.utf8.makeIterator()
    while let byte = utf8.next() {
        guard byte == UInt8(ascii: "%") else {
            bytes.append(byte)
            continue
        }
        guard let high = utf8.next().flatMap(hexDigitValue), let low = utf8.next().flatMap(hexDigitValue) else {
            return nil
        }
        bytes.append(high << 4 | low)
    }
    return String(validating: bytes, as: UTF8.self)
}

private func hexDigitValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
private func percentEncoded(_ text: String) -> String {
    var result = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            result.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16, uppercase: true)
            result += "%" + (hex.count == 1 ? "0" : "") + hex
        }
    }
    return result
}
