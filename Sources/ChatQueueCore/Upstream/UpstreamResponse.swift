/// Interprets one HTTP try's response as libcurl delivers it: decides from the
/// status and Content-Type whether it is an event stream, a JSON document or
/// an error body; parses events, hands each chunk to be forwarded exactly as
/// received and feeds the assembler; and at the end says how the try ended.
/// Pure: no I/O, unit-tested with byte sequences.
public struct UpstreamResponse: Sendable {
    public enum Mode: Sendable, Equatable {
        /// Headers not complete yet.
        case pending
        case eventStream
        case document
        case errorBody
    }

    /// What the caller should do after `receive`.
    public enum Step: Sendable, Equatable {
        /// Keep going; `progress` when real data arrived (a chunk, or document
        /// bytes other than padding), which is what the first-byte and idle
        /// timers measure. Keep-alive comments and blank lines are no progress.
        case proceed(progress: Bool)
        /// Stop the transfer: the response is unusable (`failure` says why).
        case abort
    }

    /// How the try ended.
    public enum Outcome: Sendable, Equatable {
        /// The final chat.completion body to publish.
        case completion([UInt8])
        case failure(UpstreamFailure)
    }

    /// How libcurl ended the transfer, reduced to what the mapping needs.
    public enum TransportResult: Sendable, Equatable {
        case ok
        case couldNotConnect(String)
        case connectTimedOut
        /// Any other transport error (reset, truncated chunked encoding, ...).
        case failed(String)
    }

    /// Error bodies are only read for their message; more is not kept.
    public static let maxErrorBodyBytes = 64 * 1024

    public let forwardChunks: Bool
    public let maxResponseBytes: Int

    public private(set) var mode: Mode = .pending
    public private(set) var status = 0
    /// Chunks handed out for publishing.
    public private(set) var publishedChunks = 0
    /// Data events seen (published or not).
    public private(set) var dataEvents = 0
    public private(set) var sawDone = false
    public private(set) var failure: UpstreamFailure?
    /// Raw `Retry-After` and `retry-after-ms` header values of the response.
    public private(set) var retryAfter: String?
    public private(set) var retryAfterMilliseconds: String?
    /// An `x-ratelimit-remaining-requests` or `-tokens` header said 0: the
    /// upstream's budget is spent (an overload signal for the concurrency window).
    public private(set) var rateLimitExhausted = false

    private var parser: SSEParser
    private var assembler = CompletionAssembler()
    private var sawFinishReason = false
    private var sawDocumentContent = false
    private var body: [UInt8] = []
    /// Bytes of the stream's data events so far.
    private var eventBytes = 0

    public init(forwardChunks: Bool, maxResponseBytes: Int) {
        self.forwardChunks = forwardChunks
        self.maxResponseBytes = maxResponseBytes
        self.parser = SSEParser(maxEventBytes: maxResponseBytes)
    }

    /// One header line as libcurl reports it. A new status line (after a
    /// 100 Continue or a redirect) starts the header set over.
    public mutating func headerLine(_ line: UnsafeRawBufferPointer) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            if line.starts(with: "HTTP/".utf8) {
                retryAfter = nil
                retryAfterMilliseconds = nil
                rateLimitExhausted = false
            }
            return
        }
        // Compared in place: most responses carry a dozen headers and none of these.
        let name = line[..<colon]
        if name.count > 22, ASCII.equalsIgnoringCase(name[..<(name.startIndex + 22)], "x-ratelimit-remaining-") {
            let kind = name[(name.startIndex + 22)...]
            if ASCII.equalsIgnoringCase(kind, "requests") || ASCII.equalsIgnoringCase(kind, "tokens") {
                rateLimitExhausted = rateLimitExhausted || Self.isZero(line[(colon + 1)...])
            }
            return
        }
        let isRetryAfter = ASCII.equalsIgnoringCase(name, "retry-after")
        guard isRetryAfter || ASCII.equalsIgnoringCase(name, "retry-after-ms") else { return }
        let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingASCIIWhitespace()
        if isRetryAfter { retryAfter = value } else { retryAfterMilliseconds = value }
    }

    /// Whether a header value is the integer 0 (spaces and CRLF around it
    /// allowed); anything else, however hostile, is not.
    static func isZero(_ value: UnsafeRawBufferPointer.SubSequence) -> Bool {
        var sawZero = false
        for byte in value {
            switch byte {
            case UInt8(ascii: "0"): sawZero = true
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"): continue
            default: return false
            }
        }
        return sawZero
    }

    /// Body bytes. `status` and `contentType` are the response's (read by the
    /// caller from libcurl); `publish` receives each chunk to forward.
    public mutating func receive(
        _ data: UnsafeRawBufferPointer, status: @autoclosure () -> Int, contentType: @autoclosure () -> String?,
        publish: ([UInt8]) -> Void
    ) -> Step {
        // Status and type are read once, when the body starts (each read is a libcurl call).
        if mode == .pending { begin(status: status(), contentType: contentType()) }
        switch mode {
        case .pending:
            return .proceed(progress: false)
        case .document:
            guard body.count + data.count <= maxResponseBytes else {
                failure = .responseTooLarge(limit: maxResponseBytes)
                return .abort
            }
            body.append(contentsOf: data)
            if !sawDocumentContent {
                sawDocumentContent = data.contains { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }
            }
            return .proceed(progress: sawDocumentContent)
        case .errorBody:
            let room = Self.maxErrorBodyBytes - body.count
            if room > 0 { body.append(contentsOf: data.prefix(room)) }
            return .proceed(progress: !data.isEmpty)
        case .eventStream:
            return receiveEvents(data, publish: publish)
        }
    }

    private mutating func begin(status: Int, contentType: String?) {
        self.status = status
        guard status == 200 else {
            mode = .errorBody
            return
        }
        let type = contentType?.lowercased() ?? ""
        mode = type.hasPrefix("text/event-stream") ? .eventStream : .document
    }

    private mutating func receiveEvents(_ data: UnsafeRawBufferPointer, publish: ([UInt8]) -> Void) -> Step {
        var events = 0
        var stop: UpstreamFailure?
        do {
            try parser.feed(data) { event in
                guard stop == nil, !sawDone else { return }
                if event.data.count == 6, event.data.elementsEqual("[DONE]".utf8) {
                    sawDone = true
                    return
                }
                let facts: CompletionAssembler.ChunkFacts
                switch Result(catching: { () throws(JSONParseError) in try assembler.add(chunk: event.data) }) {
                case .success(let read):
                    facts = read
                case .failure(let error):
                    stop = .badResponse("stream event is not JSON: \(error.message) at byte \(error.offset)")
                    return
                }
                guard facts.isObject else {
                    stop = .badResponse("stream event is not a JSON object")
                    return
                }
                if facts.hasError {
                    // Rare: the whole event is parsed once more, for the error mapping.
                    stop = .streamError((try? JSONValue(parsing: event.data)) ?? .null)
                    return
                }
                // The events together bound the assembled final reply.
                eventBytes += event.data.count
                guard eventBytes <= maxResponseBytes else {
                    stop = .responseTooLarge(limit: maxResponseBytes)
                    return
                }
                events += 1
                dataEvents += 1
                if forwardChunks {
                    publish(event.data)
                    publishedChunks += 1
                }
                if facts.hasFinishReason { sawFinishReason = true }
            }
        } catch {
            stop = .responseTooLarge(limit: maxResponseBytes)
        }
        if let stop {
            failure = stop
            return .abort
        }
        return .proceed(progress: events > 0)
    }

    /// The token usage the response reported so far: a stream's last `usage`,
    /// a document's `usage`; nil without one (an error body, a document cut
    /// short, a stream that ended before its usage or never sends one).
    public var tokenUsage: TokenUsage? {
        switch mode {
        case .eventStream:
            return assembler.usage.flatMap(TokenUsage.init(usage:))
        case .document:
            return UpstreamBody.tokenUsage(body).map { TokenUsage(prompt: $0.prompt, completion: $0.completion) }
        case .pending, .errorBody:
            return nil
        }
    }

    /// `outcome` and the token usage the try reported (`tokenUsage`): a
    /// complete document's usage is read in the same scan as its check, so
    /// the hot non-stream path scans each answer once.
    public func ended(
        _ transport: TransportResult, status finalStatus: Int = 0, contentType: String? = nil
    ) -> (outcome: Outcome, usage: TokenUsage?) {
        if mode == .document, failure == nil, case .ok = transport {
            switch UpstreamBody.checkCompletionReadingUsage(body) {
            case .success(let checked): return (.completion(Array(checked.document)), checked.usage)
            case .failure(let failure): return (.failure(failure), nil)
            }
        }
        return (outcome(transport, status: finalStatus, contentType: contentType), tokenUsage)
    }

    /// How the try ended, given how the transfer ended. `status` and
    /// `contentType` are the response's as libcurl has them at the end: a
    /// response without a body never passed through `receive`.
    public func outcome(_ transport: TransportResult, status finalStatus: Int = 0, contentType: String? = nil) -> Outcome {
        if let failure { return .failure(failure) }
        if mode == .pending, finalStatus != 0 {
            var headersOnly = self
            headersOnly.begin(status: finalStatus, contentType: contentType)
            return headersOnly.outcome(transport)
        }
        switch transport {
        case .ok:
            break
        case .couldNotConnect(let detail):
            return .failure(.connectionFailed(detail))
        case .connectTimedOut:
            return .failure(mode == .pending ? .connectTimeout : .connectionFailed("timed out"))
        case .failed(let detail):
            switch mode {
            case .pending:
                return .failure(.connectionFailed(detail))
            case .eventStream:
                return .failure(.streamInterrupted(detail))
            case .document:
                return .failure(.connectionFailed("response interrupted: \(detail)"))
            case .errorBody:
                return .failure(.httpStatus(status, body: body))
            }
        }
        switch mode {
        case .pending:
            // No response at all.
            return .failure(.badResponse("no response"))
        case .errorBody:
            return .failure(.httpStatus(status, body: body))
        case .document:
            switch UpstreamBody.checkCompletion(body) {
            case .success(let document): return .completion(Array(document))
            case .failure(let failure): return .failure(failure)
            }
        case .eventStream:
            if dataEvents == 0 { return .failure(.emptyStream) }
            if !sawDone && !sawFinishReason {
                return .failure(.streamInterrupted("stream ended before [DONE]"))
            }
            return .completion(assembler.response().serialized())
        }
    }
}

extension String {
    /// The text without leading and trailing spaces, tabs, CRs and LFs.
    func trimmingASCIIWhitespace() -> String {
        let bytes = Array(utf8)
        let isSpace = { (b: UInt8) in b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        guard let start = bytes.firstIndex(where: { !isSpace($0) }),
            let end = bytes.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(decoding: bytes[start...end], as: UTF8.self)
    }
}
