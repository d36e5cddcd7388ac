/// An extra header sent on every call to one upstream (`upstreams.<name>.headers`),
/// written `Name: value`. Checked so no value can inject another header or
/// line: the name is an RFC 9110 token, the value has no CR, LF or other
/// control character but tab.
public enum StaticHeader {
    /// At most this many extra headers per upstream.
    public static let maximumCount = 32
    /// At most this many bytes per header line.
    public static let maximumBytes = 4096
    /// Headers the worker sets itself (or libcurl does): set them another way.
    public static let reservedNames: Set<String> = [
        "authorization", "content-type", "content-length", "expect", "host", "transfer-encoding", "connection",
    ]

    /// The header line `Name: value` with the blanks around the value trimmed, or why it is refused.
    public static func line(parsing text: String) -> Result<String, Problem> {
        let bytes = Array(text.utf8)
        guard bytes.count <= maximumBytes else { return .failure(.tooLong(bytes.count)) }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return .failure(.noColon) }
        let name = bytes[..<colon]
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else { return .failure(.badName) }
        var value = bytes[(colon + 1)...]
        while let first = value.first, first == 0x20 || first == 0x09 { value.removeFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value.removeLast() }
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else { return .failure(.badValue) }
        let nameText = String(decoding: name, as: UTF8.self)
        guard !reservedNames.contains(nameText.lowercased()) else { return .failure(.reserved(nameText)) }
        return .success(nameText + ": " + String(decoding: value, as: UTF8.self))
    }

    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case tooLong(Int)
        case noColon
        case badName
        case badValue
        case reserved(String)

        public var description: String {
            switch self {
            case .tooLong(let bytes): "a header of \(bytes) bytes (at most \(StaticHeader.maximumBytes))"
            case .noColon: "a header without \"Name: value\""
            case .badName: "a header name that is not a token (letters, digits, !#$%&'*+-.^_`|~)"
            case .badValue: "a header value with CR, LF or another control character"
            case .reserved(let name): "\(name), which the worker sets itself"
            }
        }
    }

    /// RFC 9110 tchar.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        ASCII.isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}
