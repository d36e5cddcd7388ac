// Deciding what to answer: routing, authentication, parsing and directives,
// all before a single byte goes out. The channel handler only executes the plan.

import ChatQueueCore
import Foundation
import NIOCore
import NIOHTTP1

/// What to send back for one request.
enum MockReply {
    /// A complete response (errors, `bad_response`), sent after a delay.
    case fixed(FixedReply)
    /// A `chat.completion` body.
    case completion(CompletionBodyReply)
    /// An SSE stream of `chat.completion.chunk` events.
    case stream(StreamReply)
}

struct FixedReply {
    var status: HTTPResponseStatus
    var headers: [(String, String)] = []
    var contentType: String
    var body: String
    var delay: TimeAmount = .zero
}

/// When bytes may go out, shared by streamed and non-streamed replies.
struct Pacing {
    var firstByteDelay: TimeAmount = .zero
    var interval: TimeAmount = .zero
    /// While waiting, send a keep-alive this often.
    var keepalive: TimeAmount?
    /// Send nothing but keep-alives until the client gives up.
    var keepaliveOnly = false
}

struct CompletionBodyReply {
    /// Leading padding lines and the JSON document.
    var body: String
    var pacing: Pacing
}

struct StreamReply {
    var reply: CompletionReply
    var steps: [StreamStep]
    var pacing: Pacing
    /// Add `x_mock_sent_at_ms` to every chunk as it is written.
    var stamp: Bool
}

extension MockUpstreamState {
    /// Paths DeepSeek serves chat completions on (with and without the OpenAI-style `/v1`).
    static let completionPaths: Set<String> = ["/chat/completions", "/v1/chat/completions"]

    /// How often keep-alives go out for `keepalive_only` when `keepalive_ms` is not given.
    static let defaultKeepaliveInterval = TimeAmount.seconds(1)

    func reply(to request: RecordedRequest) -> MockReply {
        // The collector stand-in answers whatever mode the mock is in.
        if request.path.hasPrefix(Self.tracesPath) || request.path.hasPrefix(Self.receivedTracesPath) {
            let path = request.path.prefix { $0 != "?" }
            if path == Self.tracesPath { return self.tracesReply(to: request) }
            if path == Self.receivedTracesPath { return self.receivedTracesReply(method: request.method) }
        }
        let failStatus = self.traffic.failEveryRequest
        if failStatus == nil, var fixed = self.fixedResponses?.reply(to: request, requireAPIKey: self.options.requireAPIKey) {
            fixed.delay = TimeAmount(self.options.latency)
            return .fixed(fixed)
        }
        let path = String(request.path.prefix { $0 != "?" })
        guard Self.completionPaths.contains(path) else {
            if path == Self.statisticsPath {
                return self.statisticsReply(method: request.method)
            }

            return .error(404, message: "Invalid URL (\(request.method) \(path))")
        }
        guard request.method == "POST" else {
            return .error(405, extraHeaders: [("Allow", "POST")])
        }
        if let expectedKey = self.options.requireAPIKey, Self.bearerToken(request.header("authorization")) != expectedKey {
            return .error(401)
        }
        if let failStatus {
            return .error(failStatus)
        }

        let object: JSONObject
        do {
            guard let parsed = try JSONValue(parsing: request.body).objectValue else {
                return .error(400, message: "Failed to parse the request body as JSON: expected an object")
            }
            object = parsed
        } catch {
            return .error(400, message: "Failed to parse the request body as JSON: \(error)")
        }

        let chat: ChatRequest
        do {
            chat = try ChatRequest(object)
        } catch {
            return .error(error.status, message: error.message)
        }
        return self.reply(to: chat)
    }

    private func reply(to chat: ChatRequest) -> MockReply {
        let directives = chat.directives
        let delay = directives.firstByteDelayMilliseconds.map { TimeAmount.milliseconds(Int64($0)) }
            ?? TimeAmount(self.options.latency)

        // Count every call with a key, so tests can assert retries even without fail_first.
        let callNumber = directives.key.map { self.countCall(key: $0) }
        if let failFirst = directives.failFirst {
            // Without a key, all such calls share one counter.
            let number = callNumber ?? self.countCall(key: "")
            if number <= failFirst {
                return .scriptedError(status: directives.failStatus, directives: directives, delay: delay)
            }
        }
        if let status = directives.status {
            return .scriptedError(status: status, directives: directives, delay: delay)
        }
        if directives.badResponse {
            return .fixed(FixedReply(status: .ok, contentType: "text/plain", body: "<html>oops</html>", delay: delay))
        }

        let completion = CompletionReply(
            request: chat,
            id: self.nextCompletionID(),
            created: Int(Date().timeIntervalSince1970),
            defaultWords: self.options.words
        )
        var pacing = Pacing(
            firstByteDelay: delay,
            interval: directives.intervalMilliseconds.map { .milliseconds(Int64($0)) }
                ?? TimeAmount(self.options.chunkInterval),
            keepalive: directives.keepaliveMilliseconds.map { .milliseconds(Int64($0)) },
            keepaliveOnly: directives.keepaliveOnly
        )
        if pacing.keepaliveOnly && pacing.keepalive == nil {
            pacing.keepalive = Self.defaultKeepaliveInterval
        }

        guard chat.stream else {
            let padding = String(repeating: "\n", count: directives.padLines)
            return .completion(CompletionBodyReply(body: padding + completion.completionBody.serializedString(), pacing: pacing))
        }
        let steps = directives.emptyStream ? [] : completion.streamSteps.shaped(by: directives)
        return .stream(StreamReply(reply: completion, steps: steps, pacing: pacing, stamp: directives.stamp))
    }

    /// `GET /_mock/statistics`: what the mock answered so far, as JSON, for scripts
    /// that measure against a mock in another process.
    static let statisticsPath = "/_mock/statistics"

    private func statisticsReply(method: String) -> MockReply {
        guard method == "GET" else {
            return .error(405, extraHeaders: [("Allow", "GET")])
        }
        let body = self.statistics.json.serializedString()
        return .fixed(FixedReply(status: .ok, contentType: "application/json", body: body + "\n"))
    }

    /// The OTLP/HTTP traces endpoint: the mock stands in for a collector in tests.
    static let tracesPath = "/v1/traces"
    /// `GET /_mock/traces`: the trace bodies received, as a JSON array.
    static let receivedTracesPath = "/_mock/traces"

    /// `POST /v1/traces`: a body accepted is recorded and answered `{}` (an
    /// OTLP success without partial rejections), unless a status was set
    /// (`MockUpstream.setTracesStatus`).
    private func tracesReply(to request: RecordedRequest) -> MockReply {
        guard request.method == "POST" else {
            return .error(405, extraHeaders: [("Allow", "POST")])
        }
        let status = self.receiveTraces(request.body)
        guard status == 200 else { return .error(status) }
        return .fixed(FixedReply(status: .ok, contentType: "application/json", body: "{}"))
    }

    /// Each body as parsed JSON, or as a string when it was not JSON.
    private func receivedTracesReply(method: String) -> MockReply {
        guard method == "GET" else {
            return .error(405, extraHeaders: [("Allow", "GET")])
        }
        let bodies = self.receivedTraces.map { body in
            (try? JSONValue(parsing: body)) ?? .string(String(decoding: body, as: UTF8.self))
        }
        return .fixed(
            FixedReply(status: .ok, contentType: "application/json", body: JSONValue.array(bodies).serializedString() + "\n"))
    }

    /// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
    private static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }
}

extension MockReply {
    /// An OpenAI-shaped error for `status`, optionally with a more specific message.
    static func error(_ status: Int, message: String? = nil, extraHeaders: [(String, String)] = []) -> MockReply {
        var body = MockErrorBody.forStatus(status)
        if let message { body.message = message }
        return .fixed(
            FixedReply(
                status: HTTPResponseStatus(statusCode: status),
                headers: extraHeaders,
                contentType: "application/json",
                body: body.json.serializedString()
            )
        )
    }

    /// The error a `status` or `fail_first` directive asked for.
    static func scriptedError(status: Int, directives: MockDirectives, delay: TimeAmount) -> MockReply {
        let body = directives.errorBody ?? MockErrorBody.forStatus(status).json.serializedString()
        let looksLikeJSON = body.drop { $0.isWhitespace }.first.map { $0 == "{" || $0 == "[" } ?? false
        return .fixed(
            FixedReply(
                status: HTTPResponseStatus(statusCode: status),
                headers: directives.retryHeaders,
                contentType: directives.errorContentType ?? (looksLikeJSON ? "application/json" : "text/plain"),
                body: body,
                delay: delay
            )
        )
    }
}
