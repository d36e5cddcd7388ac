// A tiny JSON writer that keeps object keys in insertion order, so the mock's
// bytes look like DeepSeek's (id, object, created, model, …) and stay stable
// across runs. Parsing requests is left to Foundation.

import Foundation

enum MockJSON {
    case null
    case bool(Bool)
    case int(Int)
    /// A number already rendered as JSON text (e.g. a timestamp with a fraction).
    case number(String)
    case string(String)
    case array([MockJSON])
    case object([(String, MockJSON)])

    /// Returns a copy with `key` appended (objects only).
    func appending(_ key: String, _ value: MockJSON) -> MockJSON {
        guard case .object(var fields) = self else { return self }
        fields.append((key, value))
        return .object(fields)
    }

    var serialized: String {
        var out = ""
        self.write(into: &out)
        return out
    }

    func write(into out: inout String) {
        switch self {
        case .null:
            out += "null"
        case .bool(let value):
            out += value ? "true" : "false"
        case .int(let value):
            out += String(value)
        case .number(let text):
            out += text
        case .string(let value):
            Self.writeString(value, into: &out)
        case .array(let elements):
            out += "["
            for (offset, element) in elements.enumerated() {
                if offset > 0 { out += "," }
                element.write(into: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (offset, (key, value)) in fields.enumerated() {
                if offset > 0 { out += "," }
                Self.writeString(key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ value: String, into out: inout String) {
        out += "\""
        // Most strings need no escaping; appending them whole is far cheaper than per scalar.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += value
            out += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

// No ExpressibleByNilLiteral: `nil` must stay Optional's, or a missing value would silently
// turn into a JSON null. Write `.null` for that.
extension MockJSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .int(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: MockJSON...) { self = .array(elements) }
    // Dictionary literals arrive in source order, which is exactly what we want to keep.
    init(dictionaryLiteral elements: (String, MockJSON)...) { self = .object(elements) }
}

/// Typed reads from the `Any` tree that `JSONSerialization` produces.
///
/// Numbers come back as `NSNumber` on Linux, and booleans are `NSNumber`s too,
/// so these helpers keep "true" from reading as 1 and 3.0 from being rejected.
enum ParsedJSON {
    static func parseObject(_ bytes: [UInt8]) throws -> [String: Any]? {
        let value = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        return value as? [String: Any]
    }

    static func bool(_ value: Any?) -> Bool? {
        guard let number = value as? NSNumber, Self.isBoolean(number) else { return nil }
        return number.boolValue
    }

    static func int(_ value: Any?) -> Int? {
        guard let value else { return nil }
        if let number = value as? NSNumber {
            guard !Self.isBoolean(number) else { return nil }
            let double = number.doubleValue
            guard double.isFinite, double.rounded() == double, abs(double) < 1e15 else { return nil }
            return Int(double)
        }
        if let int = value as? Int { return int }
        if let double = value as? Double, double.isFinite, double.rounded() == double { return Int(double) }
        return nil
    }

    static func double(_ value: Any?) -> Double? {
        guard let value else { return nil }
        if let number = value as? NSNumber {
            return Self.isBoolean(number) ? nil : number.doubleValue
        }
        return value as? Double
    }

    static func string(_ value: Any?) -> String? {
        value as? String
    }

    private static func isBoolean(_ number: NSNumber) -> Bool {
        // JSON booleans are CFBoolean-backed and report the ObjC type "c" (char);
        // JSON never yields a real char-sized number.
        String(cString: number.objCType) == "c"
    }
}
