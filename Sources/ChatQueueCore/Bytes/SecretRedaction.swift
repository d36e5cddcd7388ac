extension String {
    /// The text with credentials replaced by `***`, for anything that leaves the
    /// process (the status file; error messages may quote URLs and headers):
    ///
    /// - the password of a URL's user info: `amqps://app:s3cret@host/` →
    ///   `amqps://app:***@host/` (any scheme: amqp, amqps, http, https...). The
    ///   user info ends at the last `@` before whitespace or a quote, so a
    ///   password with an unencoded `/` or `@` is still hidden whole;
    /// - a bearer token (RFC 6750 characters): `Bearer sk-123` → `Bearer ***` (any letter case).
    ///
    /// Pure; text without credentials comes back unchanged.
    public func redactingSecrets() -> String {
        var bytes = Array(utf8)
        var changed = Self.redactURLPasswords(&bytes)
        changed = Self.redactBearerTokens(&bytes) || changed
        return changed ? String(decoding: bytes, as: UTF8.self) : self
    }

    private static let mask = Array("***".utf8)

    /// Characters that end a URL or a token in running text.
    private static func endsToken(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
            UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "`"):
            return true
        default:
            return false
        }
    }

    /// RFC 6750's b64token characters, and the `=` padding.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        isSchemeCharacter(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
    }

    private static func isSchemeCharacter(_ byte: UInt8) -> Bool {
        isLetter(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
    }

    /// `scheme://user:password@` → `scheme://user:***@`.
    private static func redactURLPasswords(_ bytes: inout [UInt8]) -> Bool {
        var changed = false
        var index = 0
        while index + 3 <= bytes.count {
            guard bytes[index] == UInt8(ascii: ":"), bytes[index + 1] == UInt8(ascii: "/"),
                bytes[index + 2] == UInt8(ascii: "/"), index > 0, isSchemeCharacter(bytes[index - 1])
            else {
                index += 1
                continue
            }
            let start = index + 3
            var end = start
            while end < bytes.count, !endsToken(bytes[end]) { end += 1 }
            guard let at = bytes[start..<end].lastIndex(of: UInt8(ascii: "@")),
                let colon = bytes[start..<at].firstIndex(of: UInt8(ascii: ":")),
                bytes[(colon + 1)..<at].elementsEqual(mask) == false
            else {
                index = start
                continue
            }
            bytes.replaceSubrange((colon + 1)..<at, with: mask)
            changed = true
            index = colon + 1 + mask.count + 1
        }
        return changed
    }

    /// `Bearer token` → `Bearer ***` (the scheme name in any case, at a word start).
    private static func redactBearerTokens(_ bytes: inout [UInt8]) -> Bool {
        let word = Array("bearer".utf8)
        var changed = false
        var index = 0
        while index + word.count < bytes.count {
            let matches =
                (index == 0 || !isLetter(bytes[index - 1]))
                && zip(bytes[index..<(index + word.count)], word).allSatisfy { ($0 | 0x20) == $1 }
            guard matches else {
                index += 1
                continue
            }
            var start = index + word.count
            guard bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") else {
                index += 1
                continue
            }
            while start < bytes.count, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") {
                start += 1
            }
            var end = start
            while end < bytes.count, isTokenCharacter(bytes[end]) { end += 1 }
            if end > start, !bytes[start..<end].elementsEqual(mask) {
                bytes.replaceSubrange(start..<end, with: mask)
                changed = true
                end = start + mask.count
            }
            index = end
        }
        return changed
    }
}
