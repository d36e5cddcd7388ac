/// Incremental `text/event-stream` parser following the WHATWG EventSource rules.
///
/// - Lines end in CRLF, LF or CR; a CR at the end of one feed followed by an
///   LF at the start of the next is one line end.
/// - Lines starting with `:` are comments (DeepSeek sends `: keep-alive`
///   while a request is queued): counted in ``commentCount``, never dispatched.
/// - `field:value` has one leading space of the value stripped; a line
///   without `:` is a field with an empty value; unknown fields (and `retry`)
///   are ignored.
/// - A blank line dispatches the pending event, but only if its data buffer
///   is non-empty, so blank-line padding dispatches nothing.
/// - A UTF-8 BOM at the very start is skipped.
/// - An event cut off by the end of the stream is never dispatched (check
///   ``hasPendingEvent`` when the transfer ends if that matters).
///
/// Bytes are scanned in place: a line is copied only when it spans two feeds,
/// and the only per-event allocation is the dispatched event's data.
public struct SSEParser: Sendable {
    /// The largest event data (and the longest unterminated line) accepted.
    public let maxEventBytes: Int
    /// Comment lines seen so far (keep-alives).
    public private(set) var commentCount: Int = 0
    /// Events handed to `onEvent` so far.
    public private(set) var dispatchedCount: Int = 0

    /// The start of a line whose end has not arrived yet.
    private var partialLine: [UInt8] = []
    /// `data` field values of the pending event, each followed by "\n".
    private var dataBuffer: [UInt8] = []
    private var eventType: String? = nil
    /// Persists across events, like EventSource's last event ID.
    private var lastEventID: String? = nil
    /// The previous feed ended in CR, so a leading LF belongs to that line end.
    private var skipLeadingLineFeed = false
    /// How many bytes of a leading BOM matched so far; nil once past the start.
    private var byteOrderMarkMatched: Int? = 0

    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// - Parameter maxEventBytes: a pending event whose data exceeds this, or a
    ///   single unterminated line longer than this, makes `feed` throw
    ///   ``SSEParserError/eventTooLarge(limit:)``.
    public init(maxEventBytes: Int = 16 * 1024 * 1024) {
        self.maxEventBytes = maxEventBytes
    }

    /// Whether data of an event not yet terminated by a blank line is buffered.
    public var hasPendingEvent: Bool { !dataBuffer.isEmpty }

    /// Parses the next bytes of the stream, calling `onEvent` for each
    /// completed event in order.
    ///
    /// If `onEvent` throws, the error propagates and the rest of `bytes` is not
    /// parsed. After any error the parser should be discarded.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, onEvent: (SSEEvent) throws -> Void) throws {
        let count = bytes.count
        var index = 0

        if let matched = byteOrderMarkMatched {
            index = skipByteOrderMark(bytes, alreadyMatched: matched)
        }
        if skipLeadingLineFeed, index < count {
            skipLeadingLineFeed = false
            if bytes[index] == ASCII.lineFeed { index += 1 }
        }

        var lineStart = index
        while index < count {
            // Hot loop: most bytes are line content; skip them a word at a time.
            while count - index >= 8,
                !WordScan.containsLineEnd(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            {
                index &+= 8
            }
            guard index < count else { break }
            let byte = bytes[index]
            guard byte == ASCII.lineFeed || byte == ASCII.carriageReturn else {
                index += 1
                continue
            }
            try completeLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<index]), onEvent: onEvent)
            index += 1
            if byte == ASCII.carriageReturn {
                if index < count {
                    if bytes[index] == ASCII.lineFeed { index += 1 }
                } else {
                    skipLeadingLineFeed = true
                }
            }
            lineStart = index
        }

        if lineStart < count {
            partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[lineStart..<count]))
            if partialLine.count > maxEventBytes {
                throw SSEParserError.eventTooLarge(limit: maxEventBytes)
            }
        }
    }

    /// Parses the next bytes of the stream; see the raw-buffer overload.
    public mutating func feed(_ bytes: [UInt8], onEvent: (SSEEvent) throws -> Void) throws {
        try bytes.withUnsafeBytes { buffer in
            try feed(buffer, onEvent: onEvent)
        }
    }

    /// Parses the next bytes of the stream; see the raw-buffer overload.
    public mutating func feed(_ bytes: ArraySlice<UInt8>, onEvent: (SSEEvent) throws -> Void) throws {
        try bytes.withUnsafeBytes { buffer in
            try feed(buffer, onEvent: onEvent)
        }
    }

    // MARK: Lines

    /// Skips a (possibly split) BOM at the stream start; returns the index of
    /// the first byte after it. A partial match that fails is line content.
    private mutating func skipByteOrderMark(_ bytes: UnsafeRawBufferPointer, alreadyMatched: Int) -> Int {
        var matched = alreadyMatched
        var index = 0
        while index < bytes.count {
            guard bytes[index] == Self.byteOrderMark[matched] else {
                partialLine.append(contentsOf: Self.byteOrderMark[0..<matched])
                byteOrderMarkMatched = nil
                return index
            }
            matched += 1
            index += 1
            if matched == Self.byteOrderMark.count {
                byteOrderMarkMatched = nil
                return index
            }
        }
        byteOrderMarkMatched = matched
        return index
    }

    /// Handles a line whose terminator was just found; `tail` is its part in
    /// the current feed.
    private mutating func completeLine(_ tail: UnsafeRawBufferPointer, onEvent: (SSEEvent) throws -> Void) throws {
        if partialLine.isEmpty {
            try processLine(tail, onEvent: onEvent)
            return
        }
        // Move the buffer out so processing can mutate `self`; put it back to keep its capacity.
        var line = partialLine
        partialLine = []
        line.append(contentsOf: tail)
        defer {
            line.removeAll(keepingCapacity: true)
            partialLine = line
        }
        try line.withUnsafeBytes { try processLine($0, onEvent: onEvent) }
    }

    private mutating func processLine(_ line: UnsafeRawBufferPointer, onEvent: (SSEEvent) throws -> Void) throws {
        guard let first = line.first else {
            try dispatch(onEvent: onEvent)
            return
        }
        if first == ASCII.colon {
            commentCount += 1
            return
        }
        let colonIndex = line.firstIndex(of: ASCII.colon) ?? line.count
        let name = UnsafeRawBufferPointer(rebasing: line[0..<colonIndex])
        var valueStart = Swift.min(colonIndex + 1, line.count)
        if valueStart < line.count, line[valueStart] == ASCII.space { valueStart += 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[valueStart...])

        if Self.fieldName(name, is: "data") {
            dataBuffer.append(contentsOf: value)
            dataBuffer.append(ASCII.lineFeed)
            if dataBuffer.count - 1 > maxEventBytes {
                throw SSEParserError.eventTooLarge(limit: maxEventBytes)
            }
        } else if Self.fieldName(name, is: "event") {
            // An empty type means the default type, as in EventSource.
            eventType = value.isEmpty ? nil : String(decoding: value, as: UTF8.self)
        } else if Self.fieldName(name, is: "id") {
            if !value.contains(0) {
                lastEventID = String(decoding: value, as: UTF8.self)
            }
        }
    }

    private mutating func dispatch(onEvent: (SSEEvent) throws -> Void) throws {
        guard !dataBuffer.isEmpty else {
            eventType = nil
            return
        }
        // An exactly sized copy; the buffer keeps its capacity for the next event.
        let data = Array(dataBuffer[0..<(dataBuffer.count - 1)])
        dataBuffer.removeAll(keepingCapacity: true)
        let event = SSEEvent(event: eventType, data: data, id: lastEventID)
        eventType = nil
        dispatchedCount += 1
        try onEvent(event)
    }

    private static func fieldName(_ name: UnsafeRawBufferPointer, is expected: StaticString) -> Bool {
        guard name.count == expected.utf8CodeUnitCount else { return false }
        return name.elementsEqual(UnsafeRawBufferPointer(start: expected.utf8Start, count: expected.utf8CodeUnitCount))
    }
}
