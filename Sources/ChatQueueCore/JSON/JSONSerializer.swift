extension JSONValue {
    /// Compact JSON: object keys in their order, numbers as their literal,
    /// strings escaped per RFC 8259 (`\"` `\\` `\n` `\r` `\t` `\b` `\f`, other
    /// control characters below 0x20 as `\u00XX`; everything else, including
    /// non-ASCII and `/`, as raw UTF-8).
    public func serialized() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(64)
        serialize(into: &buffer)
        return buffer
    }

    /// The compact serialization as a `String`.
    public func serializedString() -> String {
        String(decoding: serialized(), as: UTF8.self)
    }

    /// Appends the compact serialization to `buffer` (lets callers reuse one
    /// buffer across messages).
    public func serialize(into buffer: inout [UInt8]) {
        switch self {
        case .null:
            buffer.append(contentsOf: "null".utf8)
        case .bool(let value):
            buffer.append(contentsOf: value ? "true".utf8 : "false".utf8)
        case .number(let literal):
            buffer.append(contentsOf: literal.utf8)
        case .string(let text):
            JSONValue.serializeString(text, into: &buffer)
        case .array(let elements):
            buffer.append(ASCII.openBracket)
            for (offset, element) in elements.enumerated() {
                if offset > 0 { buffer.append(ASCII.comma) }
                element.serialize(into: &buffer)
            }
            buffer.append(ASCII.closeBracket)
        case .object(let object):
            buffer.append(ASCII.openBrace)
            for (offset, member) in object.members.enumerated() {
                if offset > 0 { buffer.append(ASCII.comma) }
                JSONValue.serializeString(member.key, into: &buffer)
                buffer.append(ASCII.colon)
                member.value.serialize(into: &buffer)
            }
            buffer.append(ASCII.closeBrace)
        }
    }

    /// Appends `text` as a quoted, escaped JSON string. Runs of bytes that
    /// need no escaping are copied in one go.
    static func serializeString(_ text: String, into buffer: inout [UInt8]) {
        buffer.append(ASCII.quote)
        var text = text
        text.withUTF8 { utf8 in
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == ASCII.quote || byte == ASCII.backslash else { continue }
                if runStart < index {
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                }
                runStart = index + 1
                buffer.append(ASCII.backslash)
                switch byte {
                case ASCII.quote: buffer.append(ASCII.quote)
                case ASCII.backslash: buffer.append(ASCII.backslash)
                case ASCII.lineFeed: buffer.append(UInt8(ascii: "n"))
                case ASCII.carriageReturn: buffer.append(UInt8(ascii: "r"))
                case ASCII.tab: buffer.append(UInt8(ascii: "t"))
                case 0x08: buffer.append(UInt8(ascii: "b"))
                case 0x0C: buffer.append(UInt8(ascii: "f"))
                default:
                    buffer.append(contentsOf: "u00".utf8)
                    buffer.append(hexDigit(byte >> 4))
                    buffer.append(hexDigit(byte & 0x0F))
                }
            }
            if runStart < utf8.count {
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
            }
        }
        buffer.append(ASCII.quote)
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? ASCII.zero + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
