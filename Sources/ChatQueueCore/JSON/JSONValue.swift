/// A parsed JSON document.
///
/// Numbers keep their literal text so that values pass through the worker
/// unchanged (no `Double` rounding of ids, timestamps or big integers).
public enum JSONValue: Sendable, Equatable {
    /// JSON `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// The number literal exactly as written, e.g. `"1"`, `"0.7"`, `"-2e3"`.
    /// When constructing one yourself, the text must be a valid RFC 8259
    /// number: it is serialized verbatim.
    case number(String)
    /// A string (already unescaped).
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object, members in their written order.
    case object(JSONObject)
}

// MARK: - Accessors

extension JSONValue {
    /// The member named `key`; nil unless this is an object holding that key.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The element at `index`; nil unless this is an array with that index.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// The string, if this is a string.
    public var stringValue: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    /// The boolean, if this is `true` or `false`.
    public var boolValue: Bool? {
        guard case .bool(let value) = self else { return nil }
        return value
    }

    /// The number converted to `Double`, if this is a number.
    /// Literals beyond `Double`'s range become ±infinity.
    public var doubleValue: Double? {
        guard case .number(let literal) = self else { return nil }
        return Double(literal)
    }

    /// The number as `Int`, only for a literal with no fraction and no
    /// exponent that fits `Int` (`"2"` yes; `"2.0"`, `"2e0"` no).
    public var integerValue: Int? {
        guard case .number(let literal) = self else { return nil }
        // Int(_:) alone would accept "+2"; JSON never produces it, but
        // hand-built values might, so check the literal's shape first.
        for byte in literal.utf8 where !(byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) && byte != UInt8(ascii: "-") {
            return nil
        }
        return Int(literal)
    }

    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? {
        guard case .array(let elements) = self else { return nil }
        return elements
    }

    /// The members, if this is an object.
    public var objectValue: JSONObject? {
        guard case .object(let object) = self else { return nil }
        return object
    }

    /// Whether this is JSON `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

// MARK: - Building

extension JSONValue {
    /// A number from an integer, e.g. a count or a timestamp (`.integer(42)` is `42`).
    public static func integer(_ value: some BinaryInteger) -> JSONValue {
        .number(String(value))
    }
}

// MARK: - Literals (convenient for building replies and in tests)

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self = .number(String(value)) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .number(value.description) }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}

extension JSONValue: CustomStringConvertible {
    /// The compact serialization, so values read well in logs and test failures.
    public var description: String { serializedString() }
}
