/// Why a JSON text was rejected.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset into the input where the problem was detected.
    public var offset: Int
    /// What is wrong, e.g. "unterminated string".
    public var message: String

    /// An error at byte `offset`.
    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) at byte offset \(offset)" }
}

extension JSONValue {
    /// The deepest nesting of arrays and objects accepted; deeper input is
    /// rejected so hostile bodies cannot exhaust the stack.
    public static let maximumNestingDepth = 512

    /// Parses strict RFC 8259 JSON: one value, surrounding whitespace allowed,
    /// nothing else; invalid UTF-8 anywhere in strings is an error; lone
    /// surrogate `\u` escapes are an error; nesting depth > 512 is an error;
    /// duplicate keys: last wins.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(JSONParseError) {
        var parser = JSONParser(bytes: bytes)
        self = try parser.parseDocument()
    }

    /// Parses strict RFC 8259 JSON (same rules as the raw-buffer initializer).
    public init(parsing bytes: [UInt8]) throws(JSONParseError) {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try JSONValue(parsing: buffer) }
        }
        self = try result.get()
    }

    /// Parses strict RFC 8259 JSON (same rules as the raw-buffer initializer).
    /// Error offsets are relative to the start of the slice.
    public init(parsing bytes: ArraySlice<UInt8>) throws(JSONParseError) {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try JSONValue(parsing: buffer) }
        }
        self = try result.get()
    }

    /// Parses the UTF-8 of `text` as strict RFC 8259 JSON.
    public init(parsing text: String) throws(JSONParseError) {
        var text = text
        let result: Result<JSONValue, JSONParseError> = text.withUTF8 { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try JSONValue(parsing: UnsafeRawBufferPointer(buffer)) }
        }
        self = try result.get()
    }
}

/// A recursive-descent parser over raw bytes. Strings without escapes are
/// decoded straight from the input; escaped ones go through one reused
/// scratch buffer, so parsing allocates only for the values it returns.
struct JSONParser {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var depth = 0
    private var scratch: [UInt8] = []
    /// Elements of the arrays being parsed, innermost last.
    private var valueStack: [JSONValue] = []
    /// Members of the objects being parsed, innermost last.
    private var memberStack: [JSONObject.Member] = []

    /// Objects with more members than this get a hash index while parsing,
    /// so duplicate-key checks stay linear on hostile input.
    private static let indexedObjectThreshold = 16

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        // Typical chat payloads nest a few levels with a handful of members;
        // starting with room for them avoids repeated regrowth. (Not in init:
        // scanning with `scanObject` needs no stacks.)
        valueStack.reserveCapacity(16)
        memberStack.reserveCapacity(32)
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard position == bytes.count else {
            throw failure("unexpected data after the JSON value")
        }
        return value
    }

    // MARK: Values

    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard position < bytes.count else { throw failure("unexpected end of input") }
        switch bytes[position] {
        case ASCII.openBrace:
            return try parseObject()
        case ASCII.openBracket:
            return try parseArray()
        case ASCII.quote:
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectKeyword("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectKeyword("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectKeyword("null")
            return .null
        case ASCII.minus, ASCII.zero...ASCII.nine:
            return .number(try parseNumber())
        default:
            throw failure("unexpected character")
        }
    }

    private mutating func expectKeyword(_ keyword: StaticString) throws(JSONParseError) {
        let length = keyword.utf8CodeUnitCount
        guard bytes.count - position >= length else { throw failure("invalid literal") }
        let expected = UnsafeRawBufferPointer(start: keyword.utf8Start, count: length)
        for offset in 0..<length where bytes[position + offset] != expected[offset] {
            throw failure("invalid literal")
        }
        position += length
    }

    private mutating func enterContainer() throws(JSONParseError) {
        depth += 1
        guard depth <= JSONValue.maximumNestingDepth else {
            throw failure("nesting depth exceeds \(JSONValue.maximumNestingDepth)")
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        if try openContainer(closedBy: ASCII.closeBracket) { return .array([]) }
        // Elements collect on a stack shared by all arrays and are copied out
        // once, so each array costs one exactly sized allocation.
        let base = valueStack.count
        repeat {
            skipWhitespace()
            valueStack.append(try parseValue())
        } while try !endOfArrayElement()
        let elements = Array(valueStack[base...])
        valueStack.removeLast(valueStack.count - base)
        return .array(elements)
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        if try openContainer(closedBy: ASCII.closeBrace) { return .object(JSONObject()) }
        // Members collect on a shared stack like array elements do.
        let base = memberStack.count
        var index: [String: Int]? = nil
        repeat {
            try expectKeyStart()
            let key = try parseString()
            try expectColon()
            let value = try parseValue()
            addMember(key: key, value: value, base: base, index: &index)
        } while try !endOfObjectMember()
        let members = Array(memberStack[base...])
        memberStack.removeLast(memberStack.count - base)
        return .object(JSONObject(uniqueMembers: members))
    }

    // MARK: Container punctuation (shared by parsing, scanning and skipping)

    /// At an opening bracket or brace: enters the container and moves past it
    /// and any whitespace. Returns true, having left it again, when it is empty.
    private mutating func openContainer(closedBy close: UInt8) throws(JSONParseError) -> Bool {
        try enterContainer()
        position += 1
        skipWhitespace()
        guard position < bytes.count, bytes[position] == close else { return false }
        position += 1
        depth -= 1
        return true
    }

    /// Before a member: checks that a key string starts here.
    private mutating func expectKeyStart() throws(JSONParseError) {
        skipWhitespace()
        guard position < bytes.count else { throw failure("unterminated object") }
        guard bytes[position] == ASCII.quote else { throw failure("expected a string key in object") }
    }

    /// After a key: the colon, and whitespace up to the value.
    private mutating func expectColon() throws(JSONParseError) {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == ASCII.colon else {
            throw failure("expected ':' after object key")
        }
        position += 1
        skipWhitespace()
    }

    /// After a member: a comma (false: another member follows) or the closing
    /// brace (true: the object is left).
    private mutating func endOfObjectMember() throws(JSONParseError) -> Bool {
        try endOfElement(closedBy: ASCII.closeBrace, unterminated: "unterminated object", expected: "expected ',' or '}' in object")
    }

    /// After an element: a comma (false) or the closing bracket (true: the array is left).
    private mutating func endOfArrayElement() throws(JSONParseError) -> Bool {
        try endOfElement(closedBy: ASCII.closeBracket, unterminated: "unterminated array", expected: "expected ',' or ']' in array")
    }

    private mutating func endOfElement(
        closedBy close: UInt8, unterminated: StaticString, expected: StaticString
    ) throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard position < bytes.count else { throw failure("\(unterminated)") }
        let byte = bytes[position]
        if byte == ASCII.comma {
            position += 1
            return false
        }
        guard byte == close else { throw failure("\(expected)") }
        position += 1
        depth -= 1
        return true
    }

    /// Pushes a member of the object whose members start at `base`. Duplicate
    /// keys: the last value wins, at the first position. Large objects get a
    /// hash index so hostile input can't make this quadratic.
    private mutating func addMember(key: String, value: JSONValue, base: Int, index: inout [String: Int]?) {
        let memberCount = memberStack.count - base
        if index == nil, memberCount >= Self.indexedObjectThreshold {
            var built: [String: Int] = [:]
            built.reserveCapacity(memberCount * 2)
            for position in base..<memberStack.count { built[memberStack[position].key] = position }
            index = built
        }
        if index != nil {
            if let existing = index![key] {
                memberStack[existing].value = value
            } else {
                index![key] = memberStack.count
                memberStack.append(JSONObject.Member(key: key, value: value))
            }
            return
        }
        let length = key.utf8.count
        for position in base..<memberStack.count
        where memberStack[position].key.utf8.count == length && memberStack[position].key == key {
            memberStack[position].value = value
            return
        }
        memberStack.append(JSONObject.Member(key: key, value: value))
    }

    // MARK: Numbers

    /// Checks the RFC 8259 number grammar and returns the literal text:
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = try scanNumber()
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    /// Checks the number at `position`, moves past it and returns where it started.
    private mutating func scanNumber() throws(JSONParseError) -> Int {
        let start = position
        if bytes[position] == ASCII.minus { position += 1 }
        guard position < bytes.count, ASCII.isDigit(bytes[position]) else {
            throw failure("invalid number: expected a digit")
        }
        if bytes[position] == ASCII.zero {
            position += 1
        } else {
            skipDigits()
        }
        if position < bytes.count, bytes[position] == ASCII.dot {
            position += 1
            guard position < bytes.count, ASCII.isDigit(bytes[position]) else {
                throw failure("invalid number: expected a digit after '.'")
            }
            skipDigits()
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if position < bytes.count, bytes[position] == ASCII.plus || bytes[position] == ASCII.minus {
                position += 1
            }
            guard position < bytes.count, ASCII.isDigit(bytes[position]) else {
                throw failure("invalid number: expected a digit in the exponent")
            }
            skipDigits()
        }
        return start
    }

    private mutating func skipDigits() {
        while position < bytes.count, ASCII.isDigit(bytes[position]) { position += 1 }
    }

    // MARK: Strings

    /// Parses a string starting at its opening quote.
    private mutating func parseString() throws(JSONParseError) -> String {
        let scanned = try scanString()
        if scanned.escaped { return String(decoding: scratch, as: UTF8.self) }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[scanned.start..<scanned.end]), as: UTF8.self)
    }

    /// Checks the string at its opening quote and moves past it. Its text is
    /// `bytes[start..<end]` when it had no escapes, else the decoded text is in
    /// `scratch` (until the next string).
    private mutating func scanString() throws(JSONParseError) -> (start: Int, end: Int, escaped: Bool) {
        position += 1  // opening quote
        let start = position
        var runStart = position  // first byte not yet copied to `scratch`
        var hasEscapes = false
        while true {
            // Hot loop over plain ASCII, on locals so nothing is written back per byte.
            var index = position
            let end = bytes.count
            while end - index >= 8,
                !WordScan.needsJSONStringAttention(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            {
                index &+= 8
            }
            while index < end {
                let byte = bytes[index]
                guard byte != ASCII.quote, byte != ASCII.backslash, byte >= 0x20, byte < 0x80 else { break }
                index &+= 1
            }
            position = index
            guard position < end else { throw failure("unterminated string") }
            let byte = bytes[position]
            if byte == ASCII.quote {
                if hasEscapes {
                    scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
                }
                let end = position
                position += 1
                return (start, end, hasEscapes)
            } else if byte == ASCII.backslash {
                if !hasEscapes {
                    hasEscapes = true
                    scratch.removeAll(keepingCapacity: true)
                }
                scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
                try parseEscape()
                runStart = position
            } else if byte < 0x20 {
                throw failure("unescaped control character in string")
            } else {
                position += try validatedUTF8SequenceLength()
            }
        }
    }

    /// Decodes the escape at `position` (a backslash) into `scratch`.
    private mutating func parseEscape() throws(JSONParseError) {
        guard position + 1 < bytes.count else { throw failure("unterminated string") }
        let escaped = bytes[position + 1]
        switch escaped {
        case ASCII.quote, ASCII.backslash, ASCII.slash:
            scratch.append(escaped)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(ASCII.lineFeed)
        case UInt8(ascii: "r"): scratch.append(ASCII.carriageReturn)
        case UInt8(ascii: "t"): scratch.append(ASCII.tab)
        case UInt8(ascii: "u"):
            try parseUnicodeEscape()
            return
        default:
            throw failure("invalid escape sequence")
        }
        position += 2
    }

    /// Decodes `\uXXXX` (or a `\uD8xx\uDCxx` surrogate pair) at `position`.
    private mutating func parseUnicodeEscape() throws(JSONParseError) {
        let escapeStart = position
        var scalar = try hexQuad(at: position + 2)
        position += 6
        if scalar >= 0xDC00 && scalar <= 0xDFFF {
            position = escapeStart
            throw failure("lone low surrogate in \\u escape")
        }
        if scalar >= 0xD800 && scalar <= 0xDBFF {
            guard bytes.count - position >= 6,
                bytes[position] == ASCII.backslash,
                bytes[position + 1] == UInt8(ascii: "u")
            else {
                position = escapeStart
                throw failure("lone high surrogate in \\u escape")
            }
            let low = try hexQuad(at: position + 2)
            guard low >= 0xDC00 && low <= 0xDFFF else {
                position = escapeStart
                throw failure("lone high surrogate in \\u escape")
            }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            position += 6
        }
        appendUTF8(scalar)
    }

    private func hexQuad(at offset: Int) throws(JSONParseError) -> UInt32 {
        guard bytes.count - offset >= 4 else {
            throw JSONParseError(offset: offset, message: "incomplete \\u escape")
        }
        var value: UInt32 = 0
        for index in offset..<(offset + 4) {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONParseError(offset: index, message: "invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(0xC0 | UInt8(scalar >> 6))
            scratch.append(0x80 | UInt8(scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(0xE0 | UInt8(scalar >> 12))
            scratch.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            scratch.append(0x80 | UInt8(scalar & 0x3F))
        default:
            scratch.append(0xF0 | UInt8(scalar >> 18))
            scratch.append(0x80 | UInt8((scalar >> 12) & 0x3F))
            scratch.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            scratch.append(0x80 | UInt8(scalar & 0x3F))
        }
    }

    /// Validates the multi-byte UTF-8 sequence at `position` (Unicode Table 3-7:
    /// no overlong forms, no surrogates, nothing above U+10FFFF) and returns its length.
    private func validatedUTF8SequenceLength() throws(JSONParseError) -> Int {
        let lead = bytes[position]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: throw failure("invalid UTF-8 in string")
        }
        guard bytes.count - position >= length, secondRange.contains(bytes[position + 1]) else {
            throw failure("invalid UTF-8 in string")
        }
        for offset in 2..<length where bytes[position + offset] & 0xC0 != 0x80 {
            throw failure("invalid UTF-8 in string")
        }
        return length
    }

    // MARK: Scanning without building values

    // For hot paths that need a few members of a document: the caller walks
    // it with `scanObject` / `scanArray`, reads the members it wants and
    // `skipValue()`s the rest. Everything is still checked as strictly as by
    // `parseDocument()`; only the values nobody asked for are never built.

    /// A member's key. Compared before the member's value is read.
    struct Key {
        fileprivate var raw: UnsafeRawBufferPointer
        /// Set instead of `raw` for a key that had escapes (rare).
        fileprivate var decoded: String?

        func equals(_ name: StaticString) -> Bool {
            let expected = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
            if let decoded { return decoded.utf8.elementsEqual(expected) }
            // Lengths first: most keys differ in length from most names.
            guard raw.count == expected.count else { return false }
            for index in 0..<expected.count where raw[index] != expected[index] { return false }
            return true
        }
    }

    /// The first byte of the next value (after whitespace), or nil at the end.
    mutating func peek() -> UInt8? {
        skipWhitespace()
        return position < bytes.count ? bytes[position] : nil
    }

    /// Checks that only whitespace is left.
    mutating func expectEnd() throws(JSONParseError) {
        skipWhitespace()
        guard position == bytes.count else { throw failure("unexpected data after the JSON value") }
    }

    /// Checks the next value and moves past it without building it.
    mutating func skipValue() throws(JSONParseError) {
        skipWhitespace()
        guard position < bytes.count else { throw failure("unexpected end of input") }
        switch bytes[position] {
        case ASCII.openBrace:
            try skipObject()
        case ASCII.openBracket:
            try skipArray()
        case ASCII.quote:
            _ = try scanString()
        case UInt8(ascii: "t"):
            try expectKeyword("true")
        case UInt8(ascii: "f"):
            try expectKeyword("false")
        case UInt8(ascii: "n"):
            try expectKeyword("null")
        case ASCII.minus, ASCII.zero...ASCII.nine:
            _ = try scanNumber()
        default:
            throw failure("unexpected character")
        }
    }

    /// `skipValue`, returning the byte offsets of the value it moved past.
    mutating func skipValueReturningRange() throws(JSONParseError) -> Range<Int> {
        skipWhitespace()
        let start = position
        try skipValue()
        return start..<position
    }

    /// `scanObject` skipping every member, without the closure and key per member.
    private mutating func skipObject() throws(JSONParseError) {
        if try openContainer(closedBy: ASCII.closeBrace) { return }
        repeat {
            try expectKeyStart()
            _ = try scanString()
            try expectColon()
            try skipValue()
        } while try !endOfObjectMember()
    }

    /// `scanArray` skipping every element.
    private mutating func skipArray() throws(JSONParseError) {
        if try openContainer(closedBy: ASCII.closeBracket) { return }
        repeat {
            try skipValue()
        } while try !endOfArrayElement()
    }

    /// Walks the object at `position`: `member` gets each key with the parser
    /// at its value, and must read or skip exactly that value.
    mutating func scanObject(
        _ member: (inout JSONParser, Key) throws(JSONParseError) -> Void
    ) throws(JSONParseError) {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == ASCII.openBrace else { throw failure("expected an object") }
        if try openContainer(closedBy: ASCII.closeBrace) { return }
        repeat {
            try expectKeyStart()
            let scanned = try scanString()
            let key =
                scanned.escaped
                ? Key(raw: UnsafeRawBufferPointer(start: nil, count: 0), decoded: String(decoding: scratch, as: UTF8.self))
                : Key(raw: UnsafeRawBufferPointer(rebasing: bytes[scanned.start..<scanned.end]), decoded: nil)
            try expectColon()
            try member(&self, key)
        } while try !endOfObjectMember()
    }

    /// Walks the array at `position`: `element` gets each element's position
    /// with the parser at it, and must read or skip exactly that element.
    mutating func scanArray(_ element: (inout JSONParser, Int) throws(JSONParseError) -> Void) throws(JSONParseError) {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == ASCII.openBracket else { throw failure("expected an array") }
        if try openContainer(closedBy: ASCII.closeBracket) { return }
        var index = 0
        repeat {
            skipWhitespace()
            try element(&self, index)
            index += 1
        } while try !endOfArrayElement()
    }

    /// Reads a string and appends its decoded UTF-8 to `text` (no `String` is
    /// made); returns false, having skipped it, when the value is not a string.
    mutating func appendString(to text: inout [UInt8]) throws(JSONParseError) -> Bool {
        guard peek() == ASCII.quote else {
            try skipValue()
            return false
        }
        let scanned = try scanString()
        if scanned.escaped {
            text.append(contentsOf: scratch)
        } else {
            text.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[scanned.start..<scanned.end]))
        }
        return true
    }

    /// Reads an integer the way `JSONValue.integerValue` does; nil (having
    /// skipped it) for any other value.
    mutating func integer() throws(JSONParseError) -> Int? {
        guard let first = peek(), first == ASCII.minus || ASCII.isDigit(first) else {
            try skipValue()
            return nil
        }
        let start = try scanNumber()
        let negative = bytes[start] == ASCII.minus
        // Accumulated with the literal's sign, so Int.min (whose magnitude Int can't hold) is read too.
        var value = 0
        for offset in (negative ? start + 1 : start)..<position {
            let byte = bytes[offset]
            guard ASCII.isDigit(byte) else { return nil }  // a fraction or exponent
            let digit = Int(byte - ASCII.zero)
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) =
                negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }

    /// True when the next value is `null` (not consumed).
    mutating func nextIsNull() -> Bool { peek() == UInt8(ascii: "n") }

    // MARK: Helpers

    private mutating func skipWhitespace() {
        while position < bytes.count, ASCII.isWhitespace(bytes[position]) { position += 1 }
    }

    private func failure(_ message: String) -> JSONParseError {
        JSONParseError(offset: position, message: message)
    }
}
