import ChatQueueCore
import Testing

@Suite("OTLP/HTTP JSON encoding of finished spans")
struct OTLPTraceEncodingTests {
    static let resource = OTLPResource(serviceName: "chatqueue-worker", serviceVersion: "0.1.0", serviceInstanceID: "w1")
    static let trace = TraceID(high: 0x4bf9_2f35_77b3_4da6, low: 0xa3ce_929d_0e0e_4736)
    static let requester = SpanID(0x00f0_67aa_0ba9_02b7)
    static let request = SpanID(0x1111_2222_3333_4444)
    static let attempt = SpanID(0xaaaa_bbbb_cccc_0001)

    /// A request span (child of the requester's) with one upstream try under it.
    static let tree: [FinishedSpan] = [
        FinishedSpan(
            name: "chat deepseek-chat", kind: .client, traceID: trace, spanID: attempt, parentSpanID: request,
            startUnixNanoseconds: 1_700_000_000_100_000_000, endUnixNanoseconds: 1_700_000_000_900_000_000,
            status: .error("http_503"),
            attributes: [
                FinishedSpan.Attribute("gen_ai.request.model", .string("deepseek-chat")),
                FinishedSpan.Attribute("http.response.status_code", .int(503)),
            ],
            events: [FinishedSpan.Event(name: "retry", timeUnixNanoseconds: 1_700_000_000_900_000_001)]),
        FinishedSpan(
            name: "process chat.requests", kind: .consumer, traceID: trace, spanID: request, parentSpanID: requester,
            traceState: "vendor=a",
            startUnixNanoseconds: 1_700_000_000_000_000_000, endUnixNanoseconds: 1_700_000_001_000_000_000, status: .ok,
            attributes: [
                FinishedSpan.Attribute("messaging.system", .string("rabbitmq")),
                FinishedSpan.Attribute("gen_ai.usage.input_tokens", .int(-12)),
                FinishedSpan.Attribute("chatqueue.ratio", .double(0.5)),
                FinishedSpan.Attribute("messaging.message.redelivered", .bool(false)),
            ],
            events: [
                FinishedSpan.Event(
                    name: "final", timeUnixNanoseconds: 1_700_000_000_999_999_999,
                    attributes: [FinishedSpan.Attribute("chatqueue.final.type", .string("chat.completion"))])
            ]),
    ]

    @Test("the exact body for a small span tree: resource, scope, hex ids, kinds, times as strings, AnyValues, events, status")
    func exactBody() {
        let body = String(decoding: OTLPTraceEncoding.exportRequest(Self.tree, resource: Self.resource), as: UTF8.self)
        let expected =
            #"{"resourceSpans":[{"resource":{"attributes":["#
            + #"{"key":"service.name","value":{"stringValue":"chatqueue-worker"}},"#
            + #"{"key":"service.version","value":{"stringValue":"0.1.0"}},"#
            + #"{"key":"service.instance.id","value":{"stringValue":"w1"}}]},"#
            + #""scopeSpans":[{"scope":{"name":"chatqueue","version":"0.1.0"},"spans":["#
            + #"{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"aaaabbbbcccc0001","parentSpanId":"1111222233334444","#
            + #""name":"chat deepseek-chat","kind":3,"#
            + #""startTimeUnixNano":"1700000000100000000","endTimeUnixNano":"1700000000900000000","#
            + #""attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"deepseek-chat"}},"#
            + #"{"key":"http.response.status_code","value":{"intValue":"503"}}],"#
            + #""events":[{"timeUnixNano":"1700000000900000001","name":"retry"}],"#
            + #""status":{"code":2,"message":"http_503"}},"#
            + #"{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"1111222233334444","traceState":"vendor=a","#
            + #""parentSpanId":"00f067aa0ba902b7","name":"process chat.requests","kind":5,"#
            + #""startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000","#
            + #""attributes":[{"key":"messaging.system","value":{"stringValue":"rabbitmq"}},"#
            + #"{"key":"gen_ai.usage.input_tokens","value":{"intValue":"-12"}},"#
            + #"{"key":"chatqueue.ratio","value":{"doubleValue":0.5}},"#
            + #"{"key":"messaging.message.redelivered","value":{"boolValue":false}}],"#
            + #""events":[{"timeUnixNano":"1700000000999999999","name":"final","attributes":["#
            + #"{"key":"chatqueue.final.type","value":{"stringValue":"chat.completion"}}]}],"#
            + #""status":{"code":1}}"#
            + #"]}]}]}"#
        #expect(body == expected)
    }

    @Test("the body is valid JSON whose spans keep their parentage")
    func parsesBack() throws {
        let document = try JSONValue(parsing: OTLPTraceEncoding.exportRequest(Self.tree, resource: Self.resource))
        let spans = try #require(document["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?.arrayValue)
        #expect(spans.count == 2)
        #expect(spans[0]["parentSpanId"] == spans[1]["spanId"])
        #expect(spans[1]["parentSpanId"] == .string(Self.requester.hex))
        #expect(spans.allSatisfy { $0["traceId"] == .string(Self.trace.hex) })
    }

    @Test("a root span has no parentSpanId; an unset status, no attributes and no events are left out")
    func rootSpan() {
        let span = FinishedSpan(
            name: "process q", kind: .internal, traceID: TraceID(high: 0, low: 1), spanID: SpanID(2), parentSpanID: nil,
            traceState: "", startUnixNanoseconds: 0, endUnixNanoseconds: UInt64.max)
        let body = String(decoding: OTLPTraceEncoding.exportRequest([span], resource: Self.resource), as: UTF8.self)
        #expect(
            body.contains(
                #""spans":[{"traceId":"00000000000000000000000000000001","spanId":"0000000000000002","name":"process q","#
                    + #""kind":1,"startTimeUnixNano":"0","endTimeUnixNano":"18446744073709551615"}]"#))
    }

    @Test("no spans: an empty spans array")
    func noSpans() throws {
        let document = try JSONValue(parsing: OTLPTraceEncoding.exportRequest([], resource: Self.resource))
        #expect(document["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"] == [])
    }

    @Test("hostile strings (quotes, backslashes, control bytes, non-ASCII) are escaped in names, keys, values and the resource")
    func hostileStrings() throws {
        let hostile = "a\"b\\c\n\u{0}\u{1F}</script>é😀"
        let span = FinishedSpan(
            name: hostile, kind: .client, traceID: Self.trace, spanID: Self.attempt, parentSpanID: nil,
            traceState: hostile, startUnixNanoseconds: 1, endUnixNanoseconds: 2, status: .error(hostile),
            attributes: [FinishedSpan.Attribute(hostile, .string(hostile))],
            events: [FinishedSpan.Event(name: hostile, timeUnixNanoseconds: 3, attributes: [FinishedSpan.Attribute(hostile, .bool(true))])])
        let resource = OTLPResource(serviceName: hostile, serviceVersion: hostile, serviceInstanceID: hostile)
        let bytes = OTLPTraceEncoding.exportRequest([span], resource: resource)
        let body = String(decoding: bytes, as: UTF8.self)
        #expect(body.contains(#""name":"a\"b\\c\n\u0000\u001f</script>é😀""#))
        #expect(!bytes.contains { $0 < 0x20 }, "no raw control byte reaches the body")
        let document = try JSONValue(parsing: bytes)
        let parsed = try #require(document["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?[0])
        #expect(parsed["name"] == .string(hostile))
        #expect(parsed["traceState"] == .string(hostile))
        #expect(parsed["status"]?["message"] == .string(hostile))
        #expect(parsed["attributes"]?[0]?["key"] == .string(hostile))
        #expect(parsed["attributes"]?[0]?["value"]?["stringValue"] == .string(hostile))
        #expect(parsed["events"]?[0]?["name"] == .string(hostile))
        #expect(document["resourceSpans"]?[0]?["resource"]?["attributes"]?[0]?["value"]?["stringValue"] == .string(hostile))
    }

    @Test("doubles: finite ones as JSON numbers, NaN and infinities as proto3 JSON's strings")
    func doubles() throws {
        #expect(OTLPTraceEncoding.doubleLiteral(0.5) == "0.5")
        #expect(OTLPTraceEncoding.doubleLiteral(2) == "2.0")
        #expect(OTLPTraceEncoding.doubleLiteral(1e-5) == "1e-05")
        #expect(OTLPTraceEncoding.doubleLiteral(.nan) == #""NaN""#)
        #expect(OTLPTraceEncoding.doubleLiteral(.infinity) == #""Infinity""#)
        #expect(OTLPTraceEncoding.doubleLiteral(-.infinity) == #""-Infinity""#)
        let span = FinishedSpan(
            name: "n", kind: .client, traceID: Self.trace, spanID: Self.attempt, parentSpanID: nil, startUnixNanoseconds: 1,
            endUnixNanoseconds: 2,
            attributes: [
                FinishedSpan.Attribute("a", .double(.nan)), FinishedSpan.Attribute("b", .double(1e300)),
                FinishedSpan.Attribute("c", .int(.min)),
            ])
        let document = try JSONValue(parsing: OTLPTraceEncoding.exportRequest([span], resource: Self.resource))
        let attributes = try #require(document["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?[0]?["attributes"])
        #expect(attributes[0]?["value"]?["doubleValue"] == "NaN")
        #expect(attributes[1]?["value"]?["doubleValue"]?.doubleValue == 1e300)
        #expect(attributes[2]?["value"]?["intValue"] == "-9223372036854775808")
    }

    @Test("span kinds are OTLP's SpanKind numbers")
    func kinds() {
        #expect(OTLPTraceEncoding.kindNumber(.internal) == 1)
        #expect(OTLPTraceEncoding.kindNumber(.client) == 3)
        #expect(OTLPTraceEncoding.kindNumber(.consumer) == 5)
    }

    @Test("appending reuses the caller's buffer and writes the same bytes")
    func appendReusesBuffer() {
        var buffer: [UInt8] = Array("stale".utf8)
        buffer.removeAll(keepingCapacity: true)
        OTLPTraceEncoding.appendExportRequest(Self.tree, resource: Self.resource, into: &buffer)
        #expect(buffer == OTLPTraceEncoding.exportRequest(Self.tree, resource: Self.resource))
    }
}
