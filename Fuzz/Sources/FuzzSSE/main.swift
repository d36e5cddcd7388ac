import ChatQueueCore
import FuzzSupport

runLibFuzzer(fuzzSSE)

/// The SSE parser fed one stream in arbitrary pieces (the first input bytes
/// choose where it is cut): it must dispatch exactly what it dispatches for
/// the whole stream in one feed, so no chunk boundary (a CRLF or a BOM cut
/// in two, a line spanning many feeds) changes the events.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzSSE(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    // A small limit exercises eventTooLarge; chunked and whole feeds may then
    // legitimately fail at different points (a long comment line is only
    // buffered when it spans feeds).
    let limit = input.byte() & 1 == 1 ? 64 : 1 << 24
    let lengths = input.chunkLengths()
    let stream = input.takeRest()

    let whole = parse(pieces: [stream], limit: limit)
    let pieces = parse(pieces: chunks(of: stream, lengths: lengths), limit: limit)
    for run in [whole, pieces] {
        fuzzCheck(run.dispatched == run.events.count, "dispatchedCount \(run.dispatched) for \(run.events.count) events")
        for event in run.events {
            fuzzCheck(!event.data.contains(13), "CR in event data")
            fuzzCheck(event.data.count <= limit, "event of \(event.data.count) bytes passed the limit \(limit)")
            fuzzCheck(event.event?.utf8.contains { $0 == 10 || $0 == 13 } != true, "line end in event type")
        }
    }
    if whole.failed || pieces.failed {
        fuzzCheck(limit < 1 << 24, "a small stream failed under the large limit")
        return 0
    }
    fuzzCheck(whole.events == pieces.events, "events differ when cut at \(lengths): \(whole.events) vs \(pieces.events)")
    fuzzCheck(whole.comments == pieces.comments, "comment count differs when cut at \(lengths)")
    fuzzCheck(whole.pending == pieces.pending, "pending event differs when cut at \(lengths)")
    return 0
}

private struct Run {
    var events: [SSEEvent] = []
    var comments = 0
    var dispatched = 0
    var pending = false
    var failed = false
}

private func parse(pieces: [UnsafeRawBufferPointer], limit: Int) -> Run {
    var parser = SSEParser(maxEventBytes: limit)
    var run = Run()
    do {
        for piece in pieces {
            try parser.feed(piece) { run.events.append($0) }
        }
    } catch {
        run.failed = true
    }
    run.comments = parser.commentCount
    run.dispatched = parser.dispatchedCount
    run.pending = parser.hasPendingEvent
    return run
}
