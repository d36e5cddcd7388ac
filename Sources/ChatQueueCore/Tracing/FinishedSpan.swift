/// A span the worker has ended, ready for export (OTLP). Pure data: the
/// worker fills it in when a request settles; the exporter encodes it.
public struct FinishedSpan: Sendable, Equatable {
    /// OpenTelemetry span kinds used here.
    public enum Kind: Sendable, Equatable {
        /// The worker processing a delivery (messaging `process`).
        case consumer
        /// An upstream HTTP try (GenAI `chat`).
        case client
        case `internal`
    }

    public enum Status: Sendable, Equatable {
        case unset
        case ok
        /// An error, with a short description (an error code, never upstream text).
        case error(String)
    }

    public enum AttributeValue: Sendable, Equatable {
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
    }

    public struct Attribute: Sendable, Equatable {
        public var key: String
        public var value: AttributeValue

        public init(_ key: String, _ value: AttributeValue) {
            self.key = key
            self.value = value
        }
    }

    /// Something that happened at a point in the span (first chunk, retry, final).
    public struct Event: Sendable, Equatable {
        public var name: String
        public var timeUnixNanoseconds: UInt64
        public var attributes: [Attribute]

        public init(name: String, timeUnixNanoseconds: UInt64, attributes: [Attribute] = []) {
            self.name = name
            self.timeUnixNanoseconds = timeUnixNanoseconds
            self.attributes = attributes
        }
    }

    public var name: String
    public var kind: Kind
    public var traceID: TraceID
    public var spanID: SpanID
    /// nil: a root span (the worker started the trace).
    public var parentSpanID: SpanID?
    /// The tracestate the span was created with (passed on unchanged).
    public var traceState: String?
    public var startUnixNanoseconds: UInt64
    public var endUnixNanoseconds: UInt64
    public var status: Status
    public var attributes: [Attribute]
    public var events: [Event]

    public init(
        name: String, kind: Kind, traceID: TraceID, spanID: SpanID, parentSpanID: SpanID?, traceState: String? = nil,
        startUnixNanoseconds: UInt64, endUnixNanoseconds: UInt64, status: Status = .unset,
        attributes: [Attribute] = [], events: [Event] = []
    ) {
        self.name = name
        self.kind = kind
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.traceState = traceState
        self.startUnixNanoseconds = startUnixNanoseconds
        self.endUnixNanoseconds = endUnixNanoseconds
        self.status = status
        self.attributes = attributes
        self.events = events
    }
}
