import CRabbitMQ

/// A header value as the worker uses them: the scalar kinds of AMQP field
/// tables. Nested tables and arrays (e.g. `x-death`) are kept as `.other`.
public enum AMQPFieldValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    /// An unsigned 64-bit field ('L', or 'T' timestamp) above Int64.max; smaller ones are `.int`.
    /// Sent as a timestamp, the only unsigned 64-bit kind RabbitMQ accepts.
    case unsigned(UInt64)
    case bool(Bool)
    case double(Double)
    case other

    /// The value as an integer, saturated at Int64's bounds: any integer kind,
    /// a decimal string of any length (optional sign, ASCII digits only), or a
    /// whole double. Nil for anything else (fractions, NaN, booleans, tables).
    /// A header from a publisher can hold any of these: callers range-check
    /// the result, and a saturated value is outside every range they accept.
    public var saturatedInteger: Int64? {
        switch self {
        case .int(let value):
            return value
        case .unsigned:
            return .max
        case .string(let text):
            if let value = Int64(text) { return value }
            let negative = text.hasPrefix("-")
            let digits = text.utf8.dropFirst(negative || text.hasPrefix("+") ? 1 : 0)
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return nil
            }
            return negative ? .min : .max
        case .double(let value) where value.rounded() == value:  // false for NaN
            return Int64(exactly: value) ?? (value < 0 ? .min : .max)
        default:
            return nil
        }
    }

    public var stringValue: String? {
        switch self {
        case .string(let text): return text
        case .int(let value): return String(value)
        case .unsigned(let value): return String(value)
        default: return nil
        }
    }
}

extension AMQPFieldValue {
    /// Copies a decoded field value out of rabbitmq-c's pool memory.
    init(_ field: amqp_field_value_t) {
        switch Int(field.kind) {
        case Int(UInt8(ascii: "S")), Int(UInt8(ascii: "x")):  // long string, bytes
            self = .string(String(amqpBytes: field.value.bytes))
        case Int(UInt8(ascii: "t")):
            self = .bool(field.value.boolean != 0)
        case Int(UInt8(ascii: "b")): self = .int(Int64(field.value.i8))
        case Int(UInt8(ascii: "B")): self = .int(Int64(field.value.u8))
        case Int(UInt8(ascii: "s")): self = .int(Int64(field.value.i16))
        case Int(UInt8(ascii: "u")): self = .int(Int64(field.value.u16))
        case Int(UInt8(ascii: "I")): self = .int(Int64(field.value.i32))
        case Int(UInt8(ascii: "i")): self = .int(Int64(field.value.u32))
        case Int(UInt8(ascii: "l")): self = .int(field.value.i64)
        case Int(UInt8(ascii: "L")), Int(UInt8(ascii: "T")):
            let value = field.value.u64
            self = value <= UInt64(Int64.max) ? .int(Int64(value)) : .unsigned(value)
        case Int(UInt8(ascii: "f")): self = .double(Double(field.value.f32))
        case Int(UInt8(ascii: "d")): self = .double(field.value.f64)
        default: self = .other
        }
    }
}

extension String {
    /// Copies an amqp_bytes_t (not NUL-terminated) into a String.
    init(amqpBytes bytes: amqp_bytes_t) {
        guard let base = bytes.bytes, bytes.len > 0 else {
            self = ""
            return
        }
        self = String(decoding: UnsafeRawBufferPointer(start: base, count: bytes.len), as: UTF8.self)
    }
}

/// Decodes a field table into a dictionary (last key wins).
func decodeTable(_ table: amqp_table_t) -> [String: AMQPFieldValue] {
    guard table.num_entries > 0, let entries = table.entries else { return [:] }
    var result: [String: AMQPFieldValue] = [:]
    result.reserveCapacity(Int(table.num_entries))
    for index in 0..<Int(table.num_entries) {
        let entry = entries[index]
        result[String(amqpBytes: entry.key)] = AMQPFieldValue(entry.value)
    }
    return result
}
