import Testing

@testable import ChatQueueCore

private let validTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

@Suite("Trace context: W3C traceparent and tracestate, queue wait")
struct TraceContextTests {
    static let valid = validTraceparent

    static func parse(_ traceparent: String, _ tracestate: String? = nil) -> TraceContext? {
        TraceContext.parse(traceparent: traceparent.utf8, tracestate: tracestate?.utf8)
    }

    @Test("the spec's example parses: trace id, parent span, sampled")
    func valid() throws {
        let context = try #require(Self.parse(Self.valid))
        #expect(context.traceID.hex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.spanID.hex == "00f067aa0ba902b7")
        #expect(context.flags == 1 && context.isSampled)
        #expect(context.state == nil)
        #expect(Self.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.isSampled == false)
    }

    @Test(
        "invalid traceparents are refused",
        arguments: [
            "", "00", String(validTraceparent.dropLast()), validTraceparent + "-", validTraceparent + "0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  // not hex
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero span id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // separator
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",  // flags
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // a later version needs "-" after 55 bytes
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            String(repeating: "0", count: 100_000),
        ])
    func invalid(traceparent: String) {
        #expect(Self.parse(traceparent) == nil)
    }

    @Test("a later version's extra fields are ignored, the first four read; only the sampled flag is kept")
    func laterVersion() throws {
        let context = try #require(Self.parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-the-future-holds"))
        #expect(context.traceID.hex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.flags == 1)
        #expect(context.traceparent(span: SpanID(1)) == "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000001-01")
    }

    @Test("a child's traceparent: version 00, the same trace, the new span, the flags; it parses back")
    func child() throws {
        let context = try #require(Self.parse(Self.valid))
        let child = context.traceparent(span: SpanID(0xB7AD_6B71_6920_3331))
        #expect(child == "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01")
        #expect(Self.parse(child)?.spanID == SpanID(0xB7AD_6B71_6920_3331))
    }

    @Test(
        "a valid tracestate is kept as it came",
        arguments: [
            "rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", "tenant@system=v", " a=b ,, c=d",
            "1tenant@sys=v", "a_-*/9=v",
            "k=" + String(repeating: "v", count: 256),
        ])
    func tracestateKept(state: String) {
        #expect(Self.parse(Self.valid, state)?.state == state)
    }

    @Test(
        "an invalid tracestate is dropped while the traceparent is kept",
        arguments: [
            "", "=v", "k=", "K=v", "k=v=w", "k=a\u{7F}", "k=a\nb", "k\t=v", String(repeating: "a=b,", count: 33),
            "_k=v", "1k=v", "a@b@c=v", "@sys=v", "tenant@=v", "tenant@1sys=v", "t@" + String(repeating: "s", count: 15) + "=v",
            "a=1,a=2",
            "k=" + String(repeating: "v", count: 600),
        ])
    func tracestateDropped(state: String) throws {
        let context = try #require(Self.parse(Self.valid, state))
        #expect(context.state == nil)
    }

    @Test("generated ids are never zero and not repeated")
    func generator() {
        var zero = TraceIDGenerator(seed: (0, 0, 0, 0))
        var ids: Set<UInt64> = []
        for _ in 0..<10_000 {
            let span = SpanID.random(using: &zero)
            #expect(span.isValid)
            ids.insert(span.value)
            #expect(TraceID.random(using: &zero).isValid)
        }
        #expect(ids.count == 10_000)
        #expect(TraceID(high: 0, low: 0xAB).hex == "000000000000000000000000000000ab")
    }

    @Test(
        "queue wait from the AMQP timestamp: seconds or milliseconds, a future clock within a minute reads 0, nonsense is nil",
        arguments: [
            (UInt64(1_795_788_182), Int64(1_795_788_185_123), 3.123 as Double?),
            (1_795_788_182_000, 1_795_788_185_123, 3.123),
            (1_795_788_185, 1_795_788_185_000, 0),
            (1_795_788_200, 1_795_788_185_000, 0),  // 15 s ahead: skew
            (1_795_788_300, 1_795_788_185_000, nil),  // more than a minute ahead
            (0, 1_795_788_185_000, nil),
            (UInt64.max, 1_795_788_185_000, nil),
            (UInt64(Int64.max), Int64.min, nil),
            (99_999_999_999, Int64.max, 9.223272036854777e15),
        ])
    func queueWait(timestamp: UInt64, now: Int64, expected: Double?) {
        let wait = QueueWait.seconds(timestamp: timestamp, nowUnixMilliseconds: now)
        if let expected, let wait {
            #expect(abs(wait - expected) < 1e-6 * max(1, expected))
        } else {
            #expect(wait == expected)
        }
    }
}
