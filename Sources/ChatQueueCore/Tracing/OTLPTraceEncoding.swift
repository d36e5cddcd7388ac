/// OTLP/HTTP JSON encoding of finished spans: the body of a
/// `POST <collector>/v1/traces` (an `ExportTraceServiceRequest`), as the
/// OTLP specification maps the protobuf messages to JSON: keys in
/// lowerCamelCase, trace and span ids as hex (not base64), enums as
/// integers, 64-bit integers (times, `intValue`) as decimal strings, unset
/// fields left out. Written straight into a byte buffer (no JSON tree per
/// span), strings escaped by Core's JSON serializer. Pure.

/// Who sent the spans: the `resource` of every exported batch.
public struct OTLPResource: Sendable, Equatable {
    /// `service.name` (`tracing.service_name`).
    public var serviceName: String
    /// `service.version` (chatqueue's version).
    public var serviceVersion: String
    /// `service.instance.id` (the worker's instance name).
    public var serviceInstanceID: String

    public init(serviceName: String, serviceVersion: String, serviceInstanceID: String) {
        self.serviceName = serviceName
        self.serviceVersion = serviceVersion
        self.serviceInstanceID = serviceInstanceID
    }
}

public enum OTLPTraceEncoding {
    /// The instrumentation scope name of every span.
    public static let scopeName = "chatqueue"

    /// The request body for `spans` (one resource, one scope).
    public static func exportRequest(_ spans: [FinishedSpan], resource: OTLPResource) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(256 + spans.count * 640)
        appendExportRequest(spans, resource: resource, into: &buffer)
        return buffer
    }

    /// Appends the request body for `spans` to `buffer` (reused across batches).
    public static func appendExportRequest(_ spans: [FinishedSpan], resource: OTLPResource, into buffer: inout [UInt8]) {
        var writer = Writer(buffer: buffer)
        buffer = []
        writer.raw("{\"resourceSpans\":[{\"resource\":{\"attributes\":[")
        writer.attribute("service.name", .string(resource.serviceName))
        writer.comma()
        writer.attribute("service.version", .string(resource.serviceVersion))
        writer.comma()
        writer.attribute("service.instance.id", .string(resource.serviceInstanceID))
        writer.raw("]},\"scopeSpans\":[{\"scope\":{\"name\":")
        writer.string(scopeName)
        writer.raw(",\"version\":")
        writer.string(resource.serviceVersion)
        writer.raw("},\"spans\":[")
        for (index, span) in spans.enumerated() {
            if index > 0 { writer.comma() }
            writer.span(span)
        }
        writer.raw("]}]}]}")
        buffer = writer.buffer
    }

    /// OTLP's `Span.SpanKind` numbers.
    public static func kindNumber(_ kind: FinishedSpan.Kind) -> Int {
        switch kind {
        case .internal: return 1  // SPAN_KIND_INTERNAL (2 SERVER, 4 PRODUCER are not used here)
        case .client: return 3  // SPAN_KIND_CLIENT
        case .consumer: return 5  // SPAN_KIND_CONSUMER
        }
    }

    /// A double as proto3 JSON has it: a number, or one of the strings
    /// `"NaN"`, `"Infinity"`, `"-Infinity"` (JSON has no literal for them).
    public static func doubleLiteral(_ value: Double) -> String {
        if value.isNaN { return "\"NaN\"" }
        if value.isInfinite { return value < 0 ? "\"-Infinity\"" : "\"Infinity\"" }
        // Swift's shortest round-trip form ("0.5", "1e-05", "1e+20") is a valid JSON number.
        return value.description
    }

    private struct Writer {
        var buffer: [UInt8]

        mutating func raw(_ text: StaticString) {
            text.withUTF8Buffer { buffer.append(contentsOf: $0) }
        }

        mutating func comma() { buffer.append(ASCII.comma) }

        mutating func string(_ text: String) {
            JSONValue.serializeString(text, into: &buffer)
        }

        /// An unsigned 64-bit integer as a decimal string (`"1700000000000000000"`).
        mutating func quotedDecimal(_ value: UInt64) {
            buffer.append(ASCII.quote)
            buffer.append(contentsOf: String(value).utf8)
            buffer.append(ASCII.quote)
        }

        mutating func span(_ span: FinishedSpan) {
            raw("{\"traceId\":\"")
            buffer.append(contentsOf: span.traceID.hex.utf8)
            raw("\",\"spanId\":\"")
            buffer.append(contentsOf: span.spanID.hex.utf8)
            buffer.append(ASCII.quote)
            if let state = span.traceState, !state.isEmpty {
                raw(",\"traceState\":")
                string(state)
            }
            if let parent = span.parentSpanID {
                raw(",\"parentSpanId\":\"")
                buffer.append(contentsOf: parent.hex.utf8)
                buffer.append(ASCII.quote)
            }
            raw(",\"name\":")
            string(span.name)
            raw(",\"kind\":")
            buffer.append(contentsOf: String(OTLPTraceEncoding.kindNumber(span.kind)).utf8)
            raw(",\"startTimeUnixNano\":")
            quotedDecimal(span.startUnixNanoseconds)
            raw(",\"endTimeUnixNano\":")
            quotedDecimal(span.endUnixNanoseconds)
            if !span.attributes.isEmpty {
                raw(",\"attributes\":")
                attributes(span.attributes)
            }
            if !span.events.isEmpty {
                raw(",\"events\":[")
                for (index, event) in span.events.enumerated() {
                    if index > 0 { comma() }
                    raw("{\"timeUnixNano\":")
                    quotedDecimal(event.timeUnixNanoseconds)
                    raw(",\"name\":")
                    string(event.name)
                    if !event.attributes.isEmpty {
                        raw(",\"attributes\":")
                        attributes(event.attributes)
                    }
                    buffer.append(ASCII.closeBrace)
                }
                buffer.append(ASCII.closeBracket)
            }
            switch span.status {
            case .unset:
                break  // STATUS_CODE_UNSET (0): the field is left out
            case .ok:
                raw(",\"status\":{\"code\":1}")
            case .error(let message):
                raw(",\"status\":{\"code\":2")
                if !message.isEmpty {
                    raw(",\"message\":")
                    string(message)
                }
                buffer.append(ASCII.closeBrace)
            }
            buffer.append(ASCII.closeBrace)
        }

        mutating func attributes(_ attributes: [FinishedSpan.Attribute]) {
            buffer.append(ASCII.openBracket)
            for (index, attribute) in attributes.enumerated() {
                if index > 0 { comma() }
                self.attribute(attribute.key, attribute.value)
            }
            buffer.append(ASCII.closeBracket)
        }

        /// A `KeyValue` whose value is an `AnyValue`.
        mutating func attribute(_ key: String, _ value: FinishedSpan.AttributeValue) {
            raw("{\"key\":")
            string(key)
            raw(",\"value\":{")
            switch value {
            case .string(let text):
                raw("\"stringValue\":")
                string(text)
            case .int(let number):
                // int64: a decimal string in proto3 JSON.
                raw("\"intValue\":\"")
                buffer.append(contentsOf: String(number).utf8)
                buffer.append(ASCII.quote)
            case .double(let number):
                raw("\"doubleValue\":")
                buffer.append(contentsOf: OTLPTraceEncoding.doubleLiteral(number).utf8)
            case .bool(let flag):
                raw(flag ? "\"boolValue\":true" : "\"boolValue\":false")
            }
            raw("}}")
        }
    }
}
