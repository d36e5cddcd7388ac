/// A route's model pattern: an exact model name, or a glob where each `*`
/// stands for any run of characters (none included). Matched over UTF-8
/// bytes, case-sensitively, in time linear in the model's length times the
/// pattern's (the pattern is bounded by ``maximumLength``).
public struct ModelPattern: Sendable, Equatable, CustomStringConvertible {
    /// The pattern as written.
    public let text: String
    /// The literal pieces between the stars; one piece when there is no star.
    private let pieces: [[UInt8]]
    private let hasStar: Bool

    /// Longer patterns are refused: no model name is that long, and matching cost stays bounded.
    public static let maximumLength = 256

    /// Why a pattern was refused.
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        case tooLong(Int)
        case badCharacter
        public var description: String {
            switch self {
            case .empty: "an empty model pattern"
            case .tooLong(let length): "a model pattern of \(length) bytes (at most \(ModelPattern.maximumLength))"
            case .badCharacter: "a model pattern with whitespace, a comma or a control character"
            }
        }
    }

    public init(_ text: String) throws(Problem) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count <= Self.maximumLength else { throw .tooLong(bytes.count) }
        // Whitespace and commas separate route entries and targets; control characters are never model names.
        guard !bytes.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ",") }) else {
            throw .badCharacter
        }
        self.text = text
        self.pieces = bytes.split(separator: UInt8(ascii: "*"), omittingEmptySubsequences: false).map(Array.init)
        self.hasStar = pieces.count > 1
    }

    public var description: String { text }

    /// Whether every model matches (the pattern is only stars).
    public var matchesEverything: Bool { hasStar && pieces.allSatisfy(\.isEmpty) }

    /// Whether `model` matches.
    public func matches(_ model: String) -> Bool {
        var model = model
        return model.withUTF8 { matches(UnsafeRawBufferPointer($0)) }
    }

    /// Whether the UTF-8 bytes of a model name match.
    public func matches(_ model: UnsafeRawBufferPointer) -> Bool {
        guard hasStar else { return model.elementsEqual(pieces[0]) }
        let first = pieces[0]
        let last = pieces[pieces.count - 1]
        guard model.count >= first.count + last.count else { return false }
        guard Self.equal(model, at: 0, first), Self.equal(model, at: model.count - last.count, last) else {
            return false
        }
        // The pieces between: each at its leftmost place after the one before
        // (leftmost is always right when `*` is the only wildcard).
        var position = first.count
        let end = model.count - last.count
        for piece in pieces[1..<(pieces.count - 1)] where !piece.isEmpty {
            guard let found = Self.find(piece, in: model, from: position, before: end) else { return false }
            position = found + piece.count
        }
        return true
    }

    private static func equal(_ bytes: UnsafeRawBufferPointer, at offset: Int, _ piece: [UInt8]) -> Bool {
        for index in 0..<piece.count where bytes[offset + index] != piece[index] { return false }
        return true
    }

    private static func find(_ piece: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int, before end: Int) -> Int? {
        guard end - start >= piece.count else { return nil }
        for offset in start...(end - piece.count) where equal(bytes, at: offset, piece) { return offset }
        return nil
    }
}
