import ChatQueueAMQP
import Testing

@Suite("AMQP field values")
struct AMQPFieldValueTests {
    @Test(
        "saturatedInteger: integer kinds, decimal strings of any length and whole doubles, clamped to Int64",
        arguments: [
            (AMQPFieldValue.int(42), Int64?.some(42)),
            (.int(.min), .min),
            (.unsigned(UInt64(Int64.max) + 1), .max),
            (.unsigned(.max), .max),
            (.string("-17"), -17),
            (.string("+17"), 17),
            (.string("9223372036854775808"), .max),
            (.string("-9223372036854775809"), .min),
            (.string(String(repeating: "9", count: 400)), .max),
            (.double(3), 3),
            (.double(-1e19), .min),
            (.double(9.3e18), .max),
            (.double(.infinity), .max),
            (.double(-.infinity), .min),
        ]
    )
    func saturated(value: AMQPFieldValue, expected: Int64?) {
        #expect(value.saturatedInteger == expected)
    }

    @Test(
        "saturatedInteger is nil for what is no integer",
        arguments: [
            AMQPFieldValue.string(""), .string("+"), .string("-"), .string("1e3"), .string("0x10"), .string("١٢"),
            .string("12 "), .string("--1"), .double(0.5), .double(.nan), .bool(false), .other,
        ]
    )
    func notInteger(value: AMQPFieldValue) {
        #expect(value.saturatedInteger == nil)
    }
}
