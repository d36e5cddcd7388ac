/// One dispatched server-sent event.
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field, nil when absent.
    public var event: String?
    /// The `data:` lines joined with "\n" (the trailing newline removed).
    public var data: [UInt8]
    /// The last `id:` field seen in the stream so far (it persists across
    /// events, as in EventSource), nil when none was sent.
    public var id: String?

    /// An event as the parser would dispatch it (handy for tests and fakes).
    public init(event: String? = nil, data: [UInt8], id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }

    /// Whether the data is exactly `[DONE]`, the OpenAI/DeepSeek end-of-stream marker.
    public var isDoneMarker: Bool {
        data.elementsEqual("[DONE]".utf8)
    }
}

/// Why an event stream was rejected.
public enum SSEParserError: Error, Sendable, Equatable {
    /// A pending event (or a single unterminated line) exceeded `limit` bytes.
    case eventTooLarge(limit: Int)
}
