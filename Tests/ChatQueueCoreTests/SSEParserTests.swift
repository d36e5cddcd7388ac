import ChatQueueCore
import Testing

/// Feeds `pieces` in order and returns the dispatched events and the parser.
private func parse(_ pieces: [[UInt8]], maxEventBytes: Int = 1 << 20) throws -> (events: [SSEEvent], parser: SSEParser) {
    var parser = SSEParser(maxEventBytes: maxEventBytes)
    var events: [SSEEvent] = []
    for piece in pieces {
        try parser.feed(piece) { events.append($0) }
    }
    return (events, parser)
}

private func parse(_ stream: String, maxEventBytes: Int = 1 << 20) throws -> (events: [SSEEvent], parser: SSEParser) {
    try parse([bytes(stream)], maxEventBytes: maxEventBytes)
}

/// The events' data as strings.
private func dataOf(_ events: [SSEEvent]) -> [String] {
    events.map { text($0.data) }
}

@Suite("SSE parser")
struct SSEParserTests {
    @Test("LF line ends")
    func lineFeedLineEnds() throws {
        let (events, parser) = try parse("data: one\n\ndata: two\n\n")
        #expect(dataOf(events) == ["one", "two"])
        #expect(parser.dispatchedCount == 2)
    }

    @Test("CRLF line ends")

    func carriageReturnLineFeedLineEnds() throws {
        let (events, _) = try parse("data: one\r\n\r\ndata: two\r\ndata: more\r\n\r\n")
        #expect(dataOf(events) == ["one", "two\nmore"])
    }

    @Test("CR-only line ends")

    func carriageReturnOnlyLineEnds() throws {
        let (events, _) = try parse("data: one\r\rdata: two\rdata: more\r\r")
        #expect(dataOf(events) == ["one", "two\nmore"])
    }

    @Test("mixed line ends")

    func mixedLineEnds() throws {
        let (events, _) = try parse("data: a\rdata: b\ndata: c\r\n\n")
        #expect(dataOf(events) == ["a\nb\nc"])
    }

    @Test("a CR ending one feed and an LF starting the next are one line end")

    func carriageReturnAtEndOfFeedAndLineFeedAtStartOfNextAreOneLineEnd() throws {
        // If the LF were a second line end, "a" would be dispatched on its own.
        let (events, _) = try parse([bytes("data: a\r"), bytes("\ndata: b\r"), bytes("\n\r"), bytes("\n")])
        #expect(dataOf(events) == ["a\nb"])
        // A CR at the end of a feed followed by other content is still a line end.
        let (others, _) = try parse([bytes("data: a\r"), bytes("data: b\r"), bytes("\r")])
        #expect(dataOf(others) == ["a\nb"])
        // An empty feed in between doesn't lose the pending CR.
        let (withEmpty, _) = try parse([bytes("data: a\r"), [], bytes("\n\r\n")])
        #expect(dataOf(withEmpty) == ["a"])
    }

    @Test("multi-line data is joined with LFs")

    func multiLineDataIsJoinedWithLineFeeds() throws {
        let (events, _) = try parse("data: {\"a\":\ndata: 1}\ndata:\ndata: end\n\n")
        #expect(dataOf(events) == ["{\"a\":\n1}\n\nend"])
    }

    @Test("comments are counted, not dispatched")

    func commentsAreCountedNotDispatched() throws {
        let (events, parser) = try parse(": keep-alive\n\n: keep-alive\n\n:\ndata: x\n: inside an event\n\n")
        #expect(dataOf(events) == ["x"])
        #expect(parser.commentCount == 4)
        #expect(parser.dispatchedCount == 1)
    }

    @Test("blank line padding dispatches nothing")

    func blankLinePaddingDispatchesNothing() throws {
        let (events, parser) = try parse("\n\n\r\n\r\r\n\n")
        #expect(events.isEmpty)
        #expect(parser.dispatchedCount == 0)
        // Padding between events doesn't create empty events either.
        let (padded, _) = try parse("\n\ndata: a\n\n\n\n\ndata: b\n\n\n")
        #expect(dataOf(padded) == ["a", "b"])
    }

    @Test("event without data is dropped and its type reset")

    func eventWithoutDataIsDroppedAndItsTypeReset() throws {
        let (events, _) = try parse("event: ping\n\ndata: x\n\n")
        #expect(events == [SSEEvent(event: nil, data: bytes("x"))])
    }

    @Test("event split across feeds at every byte position")

    func eventSplitAcrossFeedsAtEveryBytePosition() throws {
        let stream = bytes(
            "\u{FEFF}: keep-alive\r\n\r\nevent: delta\r\nid: 7\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"é😀\"}}]}\r\n\r\n"
                + "data: line1\rdata: line2\r\r: c\ndata: [DONE]\n\n")
        let expected = try parse([stream])
        #expect(dataOf(expected.events) == [#"{"choices":[{"delta":{"content":"é😀"}}]}"#, "line1\nline2", "[DONE]"])
        #expect(expected.events[0].event == "delta")
        #expect(expected.events[0].id == "7")

        for split in 0...stream.count {
            let result = try parse([Array(stream[..<split]), Array(stream[split...])])
            #expect(result.events == expected.events, "split at \(split)")
            #expect(result.parser.commentCount == 2, "split at \(split)")
        }
        for first in stride(from: 0, through: stream.count, by: 7) {
            for second in first...stream.count {
                let result = try parse([Array(stream[..<first]), Array(stream[first..<second]), Array(stream[second...])])
                #expect(result.events == expected.events, "splits at \(first), \(second)")
            }
        }
        let byteByByte = try parse(stream.map { [$0] })
        #expect(byteByByte.events == expected.events)
        #expect(byteByByte.parser.commentCount == 2)
    }

    @Test("byte order mark at start is skipped")

    func byteOrderMarkAtStartIsSkipped() throws {
        let (events, _) = try parse([[0xEF, 0xBB, 0xBF] + bytes("data: x\n\n")])
        #expect(dataOf(events) == ["x"])
        // Split BOM.
        let (split, _) = try parse([[0xEF], [0xBB], [0xBF, 0x64], bytes("ata: y\n\n")])
        #expect(dataOf(split) == ["y"])
        // Only at the very start: later it is part of the field name, so the line is ignored.
        let (later, _) = try parse([bytes("data: a\n\n") + [0xEF, 0xBB, 0xBF] + bytes("data: b\n\n")])
        #expect(dataOf(later) == ["a"])
        // A partial BOM is content, not skipped.
        let (partial, _) = try parse([[0xEF, 0xBB], bytes("data: z\n\n")])
        #expect(partial.isEmpty)  // the line's field name is "\u{EF}\u{BB}data", unknown
    }

    @Test("field values: one leading space dropped, colons kept")

    func fieldValueParsing() throws {
        let (events, _) = try parse("data:no-space\n\ndata:  two spaces\n\ndata\n\ndata:\n\n")
        #expect(dataOf(events) == ["no-space", " two spaces", "", ""])
        let (colonInValue, _) = try parse("data: a: b:c\n\n")
        #expect(dataOf(colonInValue) == ["a: b:c"])
    }

    @Test("event field is reported and reset after dispatch")

    func eventFieldIsReportedAndResetAfterDispatch() throws {
        let (events, _) = try parse("event: error\ndata: {}\n\ndata: next\n\nevent:\ndata: empty type\n\n")
        #expect(events.map(\.event) == ["error", nil, nil])
        // The last event field before dispatch wins.
        let (twice, _) = try parse("event: a\nevent: b\ndata: x\n\n")
        #expect(twice.first?.event == "b")
    }

    @Test("id persists across events")

    func idPersistsAcrossEvents() throws {
        let (events, _) = try parse("data: a\n\nid: 5\ndata: b\n\ndata: c\n\nid\ndata: d\n\n")
        #expect(events.map(\.id) == [nil, "5", "5", ""])
    }

    @Test("unknown fields are ignored")

    func unknownFieldsAreIgnored() throws {
        let (events, _) = try parse("retry: 1000\nfoo: bar\nDATA: shouted\nweird\ndata: kept\n\n")
        #expect(events == [SSEEvent(data: bytes("kept"))])
    }

    @Test("oversized event throws")

    func oversizedEventThrows() throws {
        // Many small lines adding up.
        #expect(throws: SSEParserError.eventTooLarge(limit: 16)) {
            _ = try parse("data: 0123456789\ndata: 0123456789\n\n", maxEventBytes: 16)
        }
        // One line arriving in pieces without its end.
        #expect(throws: SSEParserError.eventTooLarge(limit: 16)) {
            _ = try parse([bytes("data: 0123456"), bytes("789abcdefghij")], maxEventBytes: 16)
        }
        // Exactly at the limit is fine.
        let (events, _) = try parse("data: 0123456789abcdef\n\n", maxEventBytes: 16)
        #expect(events.first?.data.count == 16)
        // The limit applies per event, not per stream.
        let (many, _) = try parse(String(repeating: "data: 0123456789\n\n", count: 50), maxEventBytes: 16)
        #expect(many.count == 50)
    }

    @Test("unterminated final event is not dispatched")

    func unterminatedFinalEventIsNotDispatched() throws {
        let (events, parser) = try parse("data: done\n\ndata: cut off\n")
        #expect(dataOf(events) == ["done"])
        #expect(parser.hasPendingEvent)
        let (noNewline, unterminated) = try parse("data: cut")
        #expect(noNewline.isEmpty)
        #expect(!unterminated.hasPendingEvent)  // still an unfinished line, not event data
        let (complete, finished) = try parse("data: x\n\n")
        #expect(complete.count == 1)
        #expect(!finished.hasPendingEvent)
    }

    @Test("errors from the handler propagate")

    func errorsFromTheHandlerPropagate() {
        struct Stop: Error {}
        var parser = SSEParser()
        #expect(throws: Stop.self) {
            try parser.feed(bytes("data: a\n\ndata: b\n\n")) { _ in throw Stop() }
        }
        #expect(parser.dispatchedCount == 1)
    }

    @Test("feeds from raw buffers and slices")

    func feedsFromRawBuffersAndSlices() throws {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        let stream = bytes("xxdata: raw\n\n")
        try stream[2...].withUnsafeBytes { buffer in
            try parser.feed(buffer) { events.append($0) }
        }
        try parser.feed(bytes("data: slice\n\nyy")[...14]) { events.append($0) }
        #expect(dataOf(events) == ["raw", "slice"])
    }

    @Test("the [DONE] marker is an ordinary data event")

    func doneMarker() {
        #expect(SSEEvent(data: bytes("[DONE]")).isDoneMarker)
        #expect(!SSEEvent(data: bytes("[DONE] ")).isDoneMarker)
        #expect(!SSEEvent(data: bytes("{}")).isDoneMarker)
    }
}
