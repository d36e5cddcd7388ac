import ChatQueueCore
import FuzzSupport

runLibFuzzer(fuzzUpstreamResponse)

/// One HTTP try's response as libcurl hands it over: arbitrary header lines,
/// then arbitrary body bytes in arbitrary pieces, under a status and
/// Content-Type the first byte chooses. Nothing may trap; every forwarded
/// chunk is a JSON object; a completion is a JSON object; limits hold.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzUpstreamResponse(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let status = [200, 200, 200, 429, 503, 500, 400, 0][Int(mode & 7)]
    let contentType = ["text/event-stream", "Text/Event-Stream; charset=utf-8", "application/json", nil][Int(mode >> 3 & 3)]
    let forwardChunks = mode & 32 == 0
    let maxResponseBytes = mode & 64 == 0 ? 1 << 20 : 96
    let transport: UpstreamResponse.TransportResult = mode & 128 == 0 ? .ok : .failed("reset")
    let lengths = input.chunkLengths()

    var response = UpstreamResponse(forwardChunks: forwardChunks, maxResponseBytes: maxResponseBytes)
    // Header lines up to the first NUL, one per LF (kept, as libcurl keeps CRLF), then the body.
    let headers = input.field(until: 0)
    var lineStart = 0
    // A reference reading of the rate-limit headers: a remaining-requests or
    // -tokens value of zeros only (around spaces, tabs, CR, LF) since the last status line.
    var expectExhausted = false
    while lineStart < headers.count {
        let end = headers[lineStart...].firstIndex(of: 10).map { $0 + 1 } ?? headers.count
        let line = Array(headers[lineStart..<end])
        response.headerLine(UnsafeRawBufferPointer(rebasing: headers[lineStart..<end]))
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
            let value = line[(colon + 1)...].filter { ![0x20, 0x09, 0x0D, 0x0A].contains($0) }
            if name == "x-ratelimit-remaining-requests" || name == "x-ratelimit-remaining-tokens",
                !value.isEmpty, value.allSatisfy({ $0 == UInt8(ascii: "0") })
            {
                expectExhausted = true
            }
        } else if line.starts(with: Array("HTTP/".utf8)) {
            expectExhausted = false
        }
        lineStart = end
    }
    fuzzCheck(response.rateLimitExhausted == expectExhausted, "x-ratelimit-remaining-* read as \(response.rateLimitExhausted)")

    var published: [[UInt8]] = []
    var aborted = false
    for piece in chunks(of: input.takeRest(), lengths: lengths) where !aborted {
        let step = response.receive(piece, status: status, contentType: contentType) { published.append($0) }
        if step == .abort { aborted = true }
    }
    fuzzCheck(aborted == (response.failure != nil), "abort without a failure, or the reverse")
    fuzzCheck(forwardChunks || published.isEmpty, "chunk forwarded while forwarding is off")
    fuzzCheck(published.count == response.publishedChunks, "published count")
    fuzzCheck(response.publishedChunks <= response.dataEvents, "more chunks published than seen")
    for chunk in published {
        fuzzCheck(chunk.count <= maxResponseBytes, "chunk of \(chunk.count) bytes over the limit")
        fuzzCheck((try? JSONValue(parsing: chunk))?.objectValue != nil, "forwarded chunk is not a JSON object")
    }
    switch response.outcome(transport, status: status, contentType: contentType) {
    case .completion(let body):
        fuzzCheck(status == 200 && transport == .ok, "completion from status \(status), \(transport)")
        fuzzCheck((try? JSONValue(parsing: body))?.objectValue != nil, "completion is not a JSON object")
    case .failure(let failure):
        _ = ChatError(upstream: failure)
    }
    return 0
}
