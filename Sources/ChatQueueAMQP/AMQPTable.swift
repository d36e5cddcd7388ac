import CRabbitMQ

/// A value in a field table handed to rabbitmq-c: a scalar, or a table of
/// scalars (the login's `capabilities`).
enum AMQPTableValue {
    case field(AMQPFieldValue)
    case table([(String, AMQPFieldValue)])
}

/// The one place that lays out AMQP field tables for rabbitmq-c: queue
/// arguments, the headers of a library publish and the login's client
/// properties. (Our own frame encoder writes reply headers straight into
/// the frame instead: `AMQPTableWriter`.)
enum AMQPTable {
    /// Calls `body` with `entries` as an `amqp_table_t`, and the arena's base
    /// address for strings the caller appended to `arena` before. Keys and
    /// strings are copied into `arena`, the entries into one allocation; both
    /// are valid only inside `body`, where rabbitmq-c reads (and encodes) them.
    static func with<R>(
        _ entries: [(String, AMQPTableValue)], in arena: inout ByteArena,
        _ body: (_ base: UnsafeMutableRawPointer, _ table: amqp_table_t) -> R
    ) -> R {
        // Keys and string values go in first, in the order they are read back below.
        var strings: [Range<Int>] = []
        var nestedCount = 0
        func appendStrings(_ key: String, _ value: AMQPFieldValue) {
            strings.append(arena.append(key))
            if case .string(let text) = value { strings.append(arena.append(text)) }
        }
        for (key, value) in entries {
            switch value {
            case .field(let field):
                appendStrings(key, field)
            case .table(let inner):
                strings.append(arena.append(key))
                for (innerKey, field) in inner { appendStrings(innerKey, field) }
                nestedCount += inner.count
            }
        }
        return arena.withBytes { base in
            // The top-level entries first, each nested table's after them.
            let count = entries.count + nestedCount
            let storage = UnsafeMutablePointer<amqp_table_entry_t>.allocate(capacity: max(count, 1))
            storage.initialize(repeating: amqp_table_entry_t(), count: max(count, 1))
            defer {
                storage.deinitialize(count: max(count, 1))
                storage.deallocate()
            }
            var nextString = 0
            func next() -> amqp_bytes_t {
                defer { nextString += 1 }
                return base.amqpBytes(strings[nextString])
            }
            func fill(_ entry: UnsafeMutablePointer<amqp_table_entry_t>, _ value: AMQPFieldValue) {
                entry.pointee.key = next()
                entry.pointee.value = fieldValue(value, string: next)
            }
            var nextNested = entries.count
            for (index, (_, value)) in entries.enumerated() {
                switch value {
                case .field(let field):
                    fill(storage + index, field)
                case .table(let inner):
                    storage[index].key = next()
                    let start = nextNested
                    for (_, field) in inner {
                        fill(storage + nextNested, field)
                        nextNested += 1
                    }
                    storage[index].value.kind = UInt8(ascii: "F")
                    storage[index].value.value.table = amqp_table_t(
                        num_entries: Int32(inner.count), entries: storage + start)
                }
            }
            return body(base, amqp_table_t(num_entries: Int32(entries.count), entries: storage))
        }
    }

    /// One scalar as rabbitmq-c encodes it; `string` gives a string value's bytes.
    static func fieldValue(_ value: AMQPFieldValue, string: () -> amqp_bytes_t) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string:
            field.kind = UInt8(ascii: "S")
            field.value.bytes = string()
        case .int(let number):
            field.kind = UInt8(ascii: "l")
            field.value.i64 = number
        case .unsigned(let number):
            field.kind = UInt8(ascii: "T")  // the only unsigned 64-bit kind RabbitMQ accepts
            field.value.u64 = number
        case .bool(let flag):
            field.kind = UInt8(ascii: "t")
            field.value.boolean = flag ? 1 : 0
        case .double(let number):
            field.kind = UInt8(ascii: "d")
            field.value.f64 = number
        case .other:
            field.kind = UInt8(ascii: "V")  // void
        }
        return field
    }
}
