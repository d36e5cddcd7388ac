// The fixed-response mode (`chatqueue mock-upstream --fixed-response`): an
// upstream that is never a benchmark's bottleneck. Both answers are rendered
// once at start; a request that needs nothing else gets one of them without
// its JSON being parsed: the stream answer when its body holds "stream":true,
// else the non-stream one. A request with a "mock" object (pacing, stamps,
// errors, ...) still gets the scripted treatment.

import ChatQueueCore
import NIOHTTP1

struct FixedResponses: Sendable {
    /// The `chat.completion` body.
    let completion: String
    /// The whole SSE body: role chunk, one chunk per word, finish chunk with usage, [DONE].
    let stream: String

    init(words: Int?) {
        // The reply to a one-message request, as the normal path would render it.
        let template = #"{"model":"deepseek-chat","messages":[{"role":"user","content":"fixed response"}]}"#
        let object = (try? JSONValue(parsing: template))?.objectValue ?? [:]
        guard let request = try? ChatRequest(object) else {
            preconditionFailure("the fixed-response template is a valid request")
        }
        let reply = CompletionReply(request: request, id: 0, created: 0, defaultWords: words)
        self.completion = reply.completionBody.serializedString()
        self.stream = reply.streamSteps.map { reply.event(for: $0) }.joined() + reply.event(for: .done)
    }

    /// The prebuilt answer for `request`, or nil when it needs the normal path.
    func reply(to request: RecordedRequest, requireAPIKey: String?) -> FixedReply? {
        guard requireAPIKey == nil, request.method == "POST",
            MockUpstreamState.completionPaths.contains(String(request.path.prefix { $0 != "?" })),
            !Self.contains(Self.mockKey, in: request.body)
        else { return nil }
        if Self.contains(Self.streamTrue, in: request.body) || Self.contains(Self.streamTrueSpaced, in: request.body) {
            return FixedReply(status: .ok, headers: [("Cache-Control", "no-cache")], contentType: "text/event-stream", body: stream)
        }
        return FixedReply(status: .ok, contentType: "application/json", body: completion)
    }

    private static let mockKey = Array(#""mock""#.utf8)
    private static let streamTrue = Array(#""stream":true"#.utf8)
    private static let streamTrueSpaced = Array(#""stream": true"#.utf8)

    static func contains(_ needle: [UInt8], in haystack: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        let first = needle[0]
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var matched = 1
                while matched < needle.count && haystack[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return true }
            }
            index += 1
        }
        return false
    }
}
