// Collects one HTTP request at a time, asks MockUpstreamState what to answer,
// and writes that answer on the event loop's timers.
//
// Runs without HTTPServerPipelineHandler on purpose: that handler stops reading
// while a response is in flight, which would hide a client hanging up during a
// long stream until the next write fails. Here the socket keeps being read, so
// EOF closes the channel at once and the pending timer finds it disconnected.
// The rare pipelined request is queued instead.
//
// A completion request is "in progress" (MockTraffic) from its last byte until
// its response is written or its connection closes; with a concurrency limit,
// one beyond it is answered 429 here, before any parsing.

import Foundation
import NIOCore
import NIOHTTP1

final class MockRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Bodies past this size get 413; a chat request is never near it.
    static let maximumBodySize = 64 * 1024 * 1024

    private struct PendingRequest {
        var recorded: RecordedRequest
        var version: HTTPVersion
        var keepAlive: Bool
        var bodyTooLarge: Bool
    }

    /// What a waiting keep-alive sends: an SSE comment for streams, a blank line otherwise.
    private struct Keepalive {
        var interval: TimeAmount
        var text: String

        static func stream(_ interval: TimeAmount?) -> Keepalive? {
            interval.map { Keepalive(interval: $0, text: ": keep-alive\n\n") }
        }

        static func json(_ interval: TimeAmount?) -> Keepalive? {
            interval.map { Keepalive(interval: $0, text: "\n") }
        }
    }

    /// How the request that is being answered wants its response framed.
    private struct ResponseContext {
        var version: HTTPVersion
        var keepAlive: Bool
        /// Added to the response head (the rate-limit headers).
        var extraHeaders: [(String, String)] = []
        /// Whether the answer counts in the statistics (all but the statistics route's own).
        var isCounted = true
    }

    /// A stream being written, one step per timer tick.
    private final class ActiveStream {
        let plan: StreamReply
        var position = 0
        /// Completes when the event before a drop is written, so the drop cannot discard it.
        var lastWrite: EventLoopFuture<Void>?

        init(plan: StreamReply) {
            self.plan = plan
        }
    }

    private let state: MockUpstreamState
    private let timer: CoalescingTimer
    private let tally: MockAnswerTally
    private var incoming: PendingRequest?
    private var queued: [PendingRequest] = []
    private var isResponding = false
    /// Pending timer callbacks check this: they are not cancelled, they just do nothing.
    private var isConnected = true
    /// We close the connection ourselves (a scripted drop, or the end of a non-keep-alive response).
    private var isClosingOnPurpose = false
    /// The response being written belongs to an admitted completion request, counted in progress.
    private var holdsSlot = false

    init(state: MockUpstreamState, timer: CoalescingTimer, tally: MockAnswerTally) {
        self.state = state
        self.timer = timer
        self.tally = tally
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.incoming = PendingRequest(
                recorded: RecordedRequest(
                    method: head.method.rawValue,
                    path: head.uri,
                    headers: head.headers.map { ($0.name, $0.value) },
                    body: []
                ),
                version: head.version,
                keepAlive: head.isKeepAlive,
                bodyTooLarge: false
            )
            // libcurl waits up to a second for "100 Continue" before sending a large body.
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                let continueHead = HTTPResponseHead(version: head.version, status: .continue)
                context.writeAndFlush(self.wrapOutboundOut(.head(continueHead)), promise: nil)
            }
        case .body(var buffer):
            guard var request = self.incoming else { return }
            self.incoming = nil  // keeps the body array uniquely referenced while appending
            if request.recorded.body.count + buffer.readableBytes > Self.maximumBodySize {
                request.bodyTooLarge = true
            } else if let bytes = buffer.readBytes(length: buffer.readableBytes) {
                request.recorded.body += bytes
            }
            self.incoming = request
        case .end:
            guard let request = self.incoming else { return }
            self.incoming = nil
            self.state.record(request.recorded)
            self.queued.append(request)
            self.respondToNextRequest(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.isResponding, !self.isClosingOnPurpose {
            // The client hung up before the response ended (a cancelled or abandoned request).
            self.state.recordClientAbort()
        }
        self.isConnected = false
        self.queued.removeAll()
        self.releaseSlot()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.isConnected = false
        self.releaseSlot()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Resets and broken pipes are how clients leave; nothing to report.
        context.close(promise: nil)
    }

    // MARK: Dispatch

    private func respondToNextRequest(context: ChannelHandlerContext) {
        guard !self.isResponding, self.isConnected, !self.queued.isEmpty else { return }
        let request = self.queued.removeFirst()
        self.isResponding = true

        var response = ResponseContext(version: request.version, keepAlive: request.keepAlive)
        let reply: MockReply
        switch Self.kind(of: request.recorded) {
        case .completion:
            let admission = self.state.traffic.admit()
            response.extraHeaders = admission.rateLimitHeaders
            switch admission {
            case .admitted(let inProgress, _):
                self.holdsSlot = true
                self.tally.noteInProgress(inProgress, second: self.state.clock.secondOffset)
                reply = request.bodyTooLarge ? MockReply.error(413) : self.state.reply(to: request.recorded)
            case .rejected:
                reply = .error(429, message: "Rate limit reached for requests", extraHeaders: [("Retry-After", "1")])
            }
        case .statistics, .traces:
            // Not an answer to a completion request: kept out of the statistics.
            response.isCounted = false
            reply = request.bodyTooLarge ? MockReply.error(413) : self.state.reply(to: request.recorded)
        case .other:
            reply = request.bodyTooLarge ? MockReply.error(413) : self.state.reply(to: request.recorded)
        }
        switch reply {
        case .fixed(let fixed):
            self.wait(fixed.delay, keepalive: nil, context: context) {
                self.send(fixed, response: response, context: context)
            }
        case .completion(let completion):
            self.send(completion, response: response, context: context)
        case .stream(let stream):
            self.send(stream, response: response, context: context)
        }
    }

    private func releaseSlot() {
        guard self.holdsSlot else { return }
        self.holdsSlot = false
        self.state.traffic.release()
    }

    /// What a request is, judged by its path alone (cheap: no allocation).
    private enum RequestKind {
        case completion
        case statistics
        /// The OTLP collector stand-in (`/v1/traces`, `/_mock/traces`).
        case traces
        case other
    }

    private static func kind(of request: RecordedRequest) -> RequestKind {
        let path = request.path.utf8.prefix { $0 != UInt8(ascii: "?") }
        if path.elementsEqual("/chat/completions".utf8) || path.elementsEqual("/v1/chat/completions".utf8) {
            return request.method == "POST" ? .completion : .other
        }
        if path.elementsEqual(MockUpstreamState.tracesPath.utf8) || path.elementsEqual(MockUpstreamState.receivedTracesPath.utf8) {
            return .traces
        }
        return path.elementsEqual(MockUpstreamState.statisticsPath.utf8) ? .statistics : .other
    }

    // MARK: Replies

    private func send(_ reply: FixedReply, response: ResponseContext, context: ChannelHandlerContext) {
        var headers = reply.headers
        headers.append(("Content-Type", reply.contentType))
        headers.append(("Content-Length", String(reply.body.utf8.count)))
        self.writeHead(reply.status, headers: headers, response: response, context: context)
        self.writeText(reply.body, context: context)
        self.endResponse(response: response, context: context)
    }

    private func send(_ reply: CompletionBodyReply, response: ResponseContext, context: ChannelHandlerContext) {
        let pacing = reply.pacing
        let contentType = ("Content-Type", "application/json")

        if pacing.keepaliveOnly, let keepalive = Keepalive.json(pacing.keepalive) {
            self.writeHead(.ok, headers: [contentType], response: response, context: context)
            context.flush()
            self.sendKeepalivesForever(keepalive, context: context)
        } else if let keepalive = Keepalive.json(pacing.keepalive), pacing.firstByteDelay > .zero {
            // Like DeepSeek: headers at once, then blank lines until the body is ready.
            self.writeHead(.ok, headers: [contentType], response: response, context: context)
            context.flush()
            self.wait(pacing.firstByteDelay, keepalive: keepalive, context: context) {
                self.writeText(reply.body, context: context)
                self.endResponse(response: response, context: context)
            }
        } else {
            self.wait(pacing.firstByteDelay, keepalive: nil, context: context) {
                let fixed = FixedReply(status: .ok, contentType: contentType.1, body: reply.body)
                self.send(fixed, response: response, context: context)
            }
        }
    }

    private func send(_ reply: StreamReply, response: ResponseContext, context: ChannelHandlerContext) {
        // Streams get their 200 and headers at once; only the first event waits.
        let headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
        self.writeHead(.ok, headers: headers, response: response, context: context)
        context.flush()

        let keepalive = Keepalive.stream(reply.pacing.keepalive)
        if reply.pacing.keepaliveOnly, let keepalive {
            self.sendKeepalivesForever(keepalive, context: context)
            return
        }
        let stream = ActiveStream(plan: reply)
        self.wait(reply.pacing.firstByteDelay, keepalive: keepalive, context: context) {
            self.writeSteps(of: stream, response: response, context: context)
        }
    }

    /// Writes steps until one must wait for the chunk interval, then continues from a timer.
    private func writeSteps(of stream: ActiveStream, response: ResponseContext, context: ChannelHandlerContext) {
        let plan = stream.plan
        while stream.position < plan.steps.count {
            let step = plan.steps[stream.position]
            stream.position += 1

            if case .drop = step {
                // Abrupt end: no [DONE], no terminating chunk; just a closed socket.
                context.flush()
                self.isClosingOnPurpose = true
                let written = stream.lastWrite ?? context.eventLoop.makeSucceededVoidFuture()
                written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                return
            }
            let sentAt = plan.stamp ? Self.unixMilliseconds() : nil
            let event = plan.reply.event(for: step, sentAt: sentAt)
            if stream.position < plan.steps.count, case .drop = plan.steps[stream.position] {
                let promise = context.eventLoop.makePromise(of: Void.self)
                stream.lastWrite = promise.futureResult
                self.writeText(event, context: context, promise: promise)
            } else {
                self.writeText(event, context: context)
            }

            if stream.position < plan.steps.count, plan.steps[stream.position].isPaced, plan.pacing.interval > .zero {
                context.flush()
                let keepalive = Keepalive.stream(plan.pacing.keepalive)
                self.wait(plan.pacing.interval, keepalive: keepalive, context: context) {
                    self.writeSteps(of: stream, response: response, context: context)
                }
                return
            }
        }
        self.endResponse(response: response, context: context)
    }

    // MARK: Timing

    /// Runs `next` after `delay`, writing keep-alives meanwhile. Never blocks the loop.
    private func wait(
        _ delay: TimeAmount,
        keepalive: Keepalive?,
        context: ChannelHandlerContext,
        then next: @escaping () -> Void
    ) {
        guard delay > .zero else {
            next()
            return
        }
        guard let keepalive, keepalive.interval < delay else {
            self.schedule(in: delay, context: context, next)
            return
        }
        self.schedule(in: keepalive.interval, context: context) {
            self.writeText(keepalive.text, context: context)
            context.flush()
            self.wait(delay - keepalive.interval, keepalive: keepalive, context: context, then: next)
        }
    }

    /// `keepalive_only`: the response never completes; the client has to give up.
    private func sendKeepalivesForever(_ keepalive: Keepalive, context: ChannelHandlerContext) {
        self.schedule(in: keepalive.interval, context: context) {
            self.writeText(keepalive.text, context: context)
            context.flush()
            self.sendKeepalivesForever(keepalive, context: context)
        }
    }

    private func schedule(in delay: TimeAmount, context: ChannelHandlerContext, _ task: @escaping () -> Void) {
        self.timer.schedule(in: delay) {
            guard self.isConnected else { return }
            task()
        }
    }

    /// Wall-clock Unix time in milliseconds with microsecond digits, as JSON number text.
    private static func unixMilliseconds() -> String {
        let microseconds = Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())
        let fraction = String(microseconds % 1000)
        return "\(microseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    // MARK: Writing

    private func writeHead(
        _ status: HTTPResponseStatus,
        headers: [(String, String)],
        response: ResponseContext,
        context: ChannelHandlerContext
    ) {
        if response.isCounted {
            self.tally.countAnswer(Int(status.code), second: self.state.clock.secondOffset)
        }
        var head = HTTPResponseHead(version: response.version, status: status, headers: HTTPHeaders(headers))
        for (name, value) in response.extraHeaders {
            head.headers.add(name: name, value: value)
        }
        if !response.keepAlive {
            head.headers.replaceOrAdd(name: "Connection", value: "close")
        }
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
    }

    private func writeText(_ text: String, context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        let buffer = context.channel.allocator.buffer(string: text)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: promise)
    }

    private func endResponse(response: ResponseContext, context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        if self.holdsSlot {
            // In progress until written: the slot goes with this write, whatever comes next.
            self.holdsSlot = false
            let traffic = self.state.traffic
            promise.futureResult.whenComplete { _ in traffic.release() }
        }
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: promise)
        guard response.keepAlive else {
            self.isClosingOnPurpose = true
            promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        self.isResponding = false
        self.respondToNextRequest(context: context)
    }
}
