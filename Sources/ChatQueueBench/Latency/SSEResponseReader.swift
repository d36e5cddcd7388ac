import ChatQueueCore

/// Why a direct response could not be read.
public struct SSEResponseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Reads one HTTP/1.1 response carrying a server-sent event stream as its
/// bytes arrive, for the latency scenario's direct path: the status line and
/// headers, then the body (chunked, `Content-Length`, or up to the close),
/// whose events go through the worker's own SSE parser. Pure: the client
/// feeds what `recv` returned and stamps the arrival itself, before feeding.
/// Bounded: a head over 64 KiB, a chunk-size line over 1 KiB, a chunk over
/// 16 MiB or an event over 1 MiB is an error, never a trap.
public struct SSEResponseReader: Sendable {
    private enum Phase: Sendable, Equatable {
        case head
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case lengthBody(remaining: Int)
        case untilClose
        case complete
    }

    static let maxHeadBytes = 64 * 1024
    static let maxLineBytes = 1024
    static let maxChunkBytes = 16 * 1024 * 1024
    private static var lineFeed: UInt8 { UInt8(ascii: "\n") }
    private static var carriageReturn: UInt8 { UInt8(ascii: "\r") }

    private var phase = Phase.head
    /// The head so far, or the chunk-size / trailer line so far.
    private var pending: [UInt8] = []
    private var events = SSEParser(maxEventBytes: 1024 * 1024)

    /// The response's status code, once the head arrived.
    public private(set) var status: Int?
    /// The server said `Connection: close` (or the body runs to the close).
    public private(set) var closesConnection = false
    /// Data events other than `[DONE]`: the chunks a worker would forward.
    public private(set) var chunks = 0
    public private(set) var sawDone = false

    public init() {}

    /// The whole response has been read.
    public var isComplete: Bool { phase == .complete }

    /// Reads the next bytes; returns how many chunks they completed (all of
    /// them arrived with these bytes). Throws for anything malformed and for
    /// a status other than 200.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(SSEResponseError) -> Int {
        let before = chunks
        var index = 0
        while index < bytes.count {
            switch phase {
            case .head:
                index = try readHead(bytes, from: index)
            case .chunkSize:
                guard let line = try readLine(bytes, from: &index) else { continue }
                let size = try Self.chunkSize(line)
                phase = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let take = min(remaining, bytes.count - index)
                try parseEvents(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
                index += take
                phase = remaining == take ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            case .chunkDataEnd:
                guard let line = try readLine(bytes, from: &index) else { continue }
                guard line.isEmpty else { throw SSEResponseError("chunk not followed by CRLF") }
                phase = .chunkSize
            case .trailers:
                guard let line = try readLine(bytes, from: &index) else { continue }
                if line.isEmpty { phase = .complete }
            case .lengthBody(let remaining):
                let take = min(remaining, bytes.count - index)
                try parseEvents(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
                index += take
                phase = remaining == take ? .complete : .lengthBody(remaining: remaining - take)
            case .untilClose:
                try parseEvents(UnsafeRawBufferPointer(rebasing: bytes[index...]))
                index = bytes.count
            case .complete:
                throw SSEResponseError("\(bytes.count - index) bytes after the end of the response")
            }
        }
        return chunks - before
    }

    /// The server closed the connection: the end of a body that runs to the
    /// close, else (if the response is not complete) a cut-off response.
    public mutating func endOfInput() throws(SSEResponseError) {
        if phase == .untilClose {
            phase = .complete
            return
        }
        guard phase == .complete else { throw SSEResponseError("connection closed before the response ended") }
    }

    // MARK: Head

    private mutating func readHead(_ bytes: UnsafeRawBufferPointer, from start: Int) throws(SSEResponseError) -> Int {
        var index = start
        while index < bytes.count {
            pending.append(bytes[index])
            index += 1
            if pending.count >= 4, pending[pending.count - 4..<pending.count].elementsEqual(Self.headEnd) {
                try parseHead()
                pending.removeAll(keepingCapacity: true)
                return index
            }
            guard pending.count <= Self.maxHeadBytes else { throw SSEResponseError("response head over 64 KiB") }
        }
        return index
    }

    private static let headEnd: [UInt8] = Array("\r\n\r\n".utf8)

    private mutating func parseHead() throws(SSEResponseError) {
        let lines = pending.dropLast(4).split(separator: Self.lineFeed, omittingEmptySubsequences: false).map {
            String(decoding: $0.last == Self.carriageReturn ? $0.dropLast() : $0, as: UTF8.self)
        }
        let statusLine = lines.first?.split(separator: " ", maxSplits: 2) ?? []
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let code = Int(statusLine[1]),
            (100...999).contains(code)
        else { throw SSEResponseError("not an HTTP/1.x status line") }
        status = code
        guard code == 200 else { throw SSEResponseError("status \(code)") }

        var chunked = false
        var length: Int?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw SSEResponseError("header line without a colon") }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces().lowercased()
            switch name {
            case "transfer-encoding": chunked = value.split(separator: ",").last?.trimmingSpaces() == "chunked"
            case "content-length":
                guard let parsed = Int(value), parsed >= 0 else { throw SSEResponseError("bad Content-Length") }
                length = parsed
            case "connection": closesConnection = closesConnection || value == "close"
            default: break
            }
        }
        if chunked {
            phase = .chunkSize
        } else if let length {
            phase = length == 0 ? .complete : .lengthBody(remaining: length)
        } else {
            phase = .untilClose
            closesConnection = true
        }
    }

    // MARK: Body

    /// The next CRLF- (or LF-) terminated line without its ending, or nil
    /// when its end has not arrived yet (the start is kept in `pending`).
    private mutating func readLine(
        _ bytes: UnsafeRawBufferPointer, from index: inout Int
    ) throws(SSEResponseError) -> [UInt8]? {
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == Self.lineFeed {
                var line = pending
                pending.removeAll(keepingCapacity: true)
                if line.last == Self.carriageReturn { line.removeLast() }
                return line
            }
            pending.append(byte)
            guard pending.count <= Self.maxLineBytes else { throw SSEResponseError("line over 1 KiB in the body") }
        }
        return nil
    }

    /// A chunk-size line: hexadecimal digits, optionally followed by `;extensions`.
    static func chunkSize(_ line: [UInt8]) throws(SSEResponseError) -> Int {
        let digits = line.prefix { $0 != UInt8(ascii: ";") }.drop { $0 == UInt8(ascii: " ") }
        var size = 0
        var count = 0
        for byte in digits {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
            case UInt8(ascii: " "), UInt8(ascii: "\t"): continue
            default: throw SSEResponseError("bad chunk size")
            }
            size = size * 16 + value
            count += 1
            guard size <= maxChunkBytes else { throw SSEResponseError("chunk over 16 MiB") }
        }
        guard count > 0 else { throw SSEResponseError("empty chunk size") }
        return size
    }

    private mutating func parseEvents(_ bytes: UnsafeRawBufferPointer) throws(SSEResponseError) {
        var done = false
        var counted = 0
        do {
            try events.feed(bytes) { event in
                if event.isDoneMarker { done = true } else { counted += 1 }
            }
        } catch {
            throw SSEResponseError("event stream: \(error)")
        }
        chunks += counted
        sawDone = sawDone || done
    }
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
