import CRabbitMQ
import Testing

@testable import ChatQueueAMQP

/// The one table encoder for rabbitmq-c (`AMQPTable`): what it lays out is
/// what rabbitmq-c encodes, and it agrees byte for byte with the table our
/// own frame encoder writes for replies.
@Suite("AMQP tables for rabbitmq-c")
struct AMQPTableTests {
    /// rabbitmq-c's wire encoding of basic properties that carry only `table` as headers.
    private func encodedHeaders(_ entries: [(String, AMQPTableValue)]) -> [UInt8] {
        var arena = ByteArena()
        _ = arena.append("something appended before")
        return AMQPTable.with(entries, in: &arena) { _, table in
            var properties = amqp_basic_properties_t()
            properties._flags = CQ_FLAG_HEADERS
            properties.headers = table
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes {
                amqp_encode_properties(60, &properties, amqp_bytes_t(len: $0.count, bytes: $0.baseAddress))
            }
            #expect(count > 0)
            return Array(buffer.prefix(Int(max(count, 0))))
        }
    }

    @Test("reply headers laid out for rabbitmq-c encode to the bytes our frame encoder writes")
    func agreesWithFrameEncoder() {
        let ours: [UInt8] = {
            var out: [UInt8] = []
            let status = [UInt8]().withUnsafeBytes { body in
                AMQPFrameEncoder.appendPublish(
                    routingKey: "q", mandatory: false, body: body, channel: 1, frameMax: 4096, to: &out
                ) {
                    $0.headers { headers in
                        headers.string("x-request-id", "req-é1")
                        headers.int64("x-seq", -3)
                        headers.int64("x-attempt", 2)
                    }
                }
            }
            #expect(status == 0)
            // Skip the method frame, then the header frame's envelope, class, weight and body size.
            let methodSize = out[3..<7].reduce(0) { $0 << 8 | Int($1) }
            let headerFrame = 8 + methodSize
            let payloadStart = headerFrame + 7
            let size = out[(headerFrame + 3)..<(headerFrame + 7)].reduce(0) { $0 << 8 | Int($1) }
            return Array(out[(payloadStart + 12)..<(payloadStart + size)])
        }()
        let library = encodedHeaders([
            ("x-request-id", .field(.string("req-é1"))), ("x-seq", .field(.int(-3))), ("x-attempt", .field(.int(2))),
        ])
        #expect(library == ours)
    }

    @Test("every field kind and a nested table decode back as laid out")
    func kindsAndNesting() throws {
        let encoded = encodedHeaders([
            ("s", .field(.string("text"))), ("i", .field(.int(.min))), ("u", .field(.unsigned(.max))),
            ("b", .field(.bool(true))), ("d", .field(.double(2.5))), ("v", .field(.other)),
            ("capabilities", .table([("connection.blocked", .bool(true)), ("basic.nack", .bool(false))])),
            ("after", .field(.string("nested tables leave the order alone"))),
        ])
        let decoder = RabbitMQDecoder()
        defer { withExtendedLifetime(decoder) {} }  // what it decoded points into its memory
        let headers = try #require(decoder.properties(encoded)).headers
        #expect(
            decodeTable(headers) == [
                "s": .string("text"), "i": .int(.min), "u": .unsigned(.max), "b": .bool(true), "d": .double(2.5),
                "v": .other, "capabilities": .other, "after": .string("nested tables leave the order alone"),
            ])
        let entries = UnsafeBufferPointer(start: headers.entries, count: Int(headers.num_entries))
        #expect(entries.map { String(amqpBytes: $0.key) } == ["s", "i", "u", "b", "d", "v", "capabilities", "after"])
        let nested = entries[6].value
        #expect(nested.kind == UInt8(ascii: "F"))
        #expect(decodeTable(nested.value.table) == ["connection.blocked": .bool(true), "basic.nack": .bool(false)])
    }

    @Test("an empty table is valid for rabbitmq-c")
    func emptyTable() {
        #expect(!encodedHeaders([]).isEmpty)
    }
}
