// The mock as a rate-limited or out-of-balance provider: the concurrency limit
// (429 above K, OpenAI's rate-limit headers), the runtime switches, and the
// statistics a test or a measurement script reads back.
//
// Requests are held "in progress" by asking for a reply that never comes
// (a huge first_byte_delay_ms) and keeping the socket open; closing it ends them.

import ChatQueueCore
import ChatQueueMockUpstream
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Mock upstream limits and statistics")
struct MockUpstreamLimitsTests {
    static let plainRequest = #"{"model":"m","messages":[{"role":"user","content":"x"}]}"#
    static let rateLimitBody =
        #"{"error":{"message":"Rate limit reached for requests","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#
    static let insufficientBalanceBody =
        #"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#

    @Test("at the concurrency limit a request gets 429 with Retry-After and the rate-limit headers")
    func limitReachedAnswers429() async throws {
        var options = MockUpstreamOptions()
        options.maxConcurrentRequests = 2
        try await withMock(options) { mock in
            let held = try (0..<2).map { _ in try HeldRequest(port: mock.port) }
            try await eventually { mock.statistics().inProgress == 2 }

            let refused = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(refused.status == 429)
            #expect(refused.header("retry-after") == "1")
            #expect(refused.header("x-ratelimit-limit-requests") == "2")
            #expect(refused.header("x-ratelimit-remaining-requests") == "0")
            #expect(refused.header("content-type") == "application/json")
            #expect(refused.bodyText == Self.rateLimitBody)

            // One held request ends: the next one is served, and fills the limit again.
            held[0].close()
            try await eventually { mock.statistics().inProgress == 1 }
            let served = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(served.status == 200)
            #expect(served.header("x-ratelimit-limit-requests") == "2")
            #expect(served.header("x-ratelimit-remaining-requests") == "0")
            #expect(served.header("retry-after") == nil)

            let statistics = mock.statistics()
            #expect(statistics.peakInProgress == 2)  // the refused request never counted
            #expect(statistics.answers(429) == 1)
            #expect(statistics.answers(200) == 1)
            held[1].close()
            try await eventually { mock.statistics().inProgress == 0 }
        }
    }

    @Test("below the limit a request gets 200 with what remains of the limit, itself counted")
    func belowTheLimitAnswers200WithRemaining() async throws {
        var options = MockUpstreamOptions()
        options.maxConcurrentRequests = 3
        try await withMock(options) { mock in
            let alone = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(alone.status == 200)
            #expect(alone.header("x-ratelimit-limit-requests") == "3")
            #expect(alone.header("x-ratelimit-remaining-requests") == "2")
            #expect(try alone.messageContents() == ["Echo: x"])

            let held = try HeldRequest(port: mock.port)
            try await eventually { mock.statistics().inProgress == 1 }
            let second = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(second.header("x-ratelimit-remaining-requests") == "1")
            held.close()
        }
    }

    @Test("without a limit there are no rate-limit headers; setting one at runtime adds them and limits")
    func limitSwitchedAtRuntime() async throws {
        try await withMock { mock in
            let unlimited = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(unlimited.status == 200)
            #expect(unlimited.header("x-ratelimit-limit-requests") == nil)

            let held = try HeldRequest(port: mock.port)
            try await eventually { mock.statistics().inProgress == 1 }
            mock.setMaxConcurrentRequests(1)
            #expect(mock.statistics().maxConcurrentRequests == 1)
            let refused = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(refused.status == 429)
            #expect(refused.header("x-ratelimit-limit-requests") == "1")

            mock.setMaxConcurrentRequests(nil)
            let again = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(again.status == 200)
            #expect(again.header("x-ratelimit-limit-requests") == nil)
            held.close()
        }
    }

    @Test("fail-every-request 402 switched on and off at runtime, with DeepSeek's body", arguments: [false, true])
    func failEveryRequestSwitchedAtRuntime(fixedResponses: Bool) async throws {
        var options = MockUpstreamOptions()
        options.fixedResponses = fixedResponses
        try await withMock(options) { mock in
            #expect(try MockRawHTTP.post(mock, json: Self.plainRequest).status == 200)

            mock.setFailEveryRequest(402)
            #expect(mock.statistics().failEveryRequest == 402)
            let broke = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(broke.status == 402)
            #expect(broke.bodyText == Self.insufficientBalanceBody)
            // Whatever the request scripts.
            let scripted = try MockRawHTTP.post(mock, json: #"{"model":"m","messages":[],"mock":{"words":2}}"#)
            #expect(scripted.status == 402)

            mock.setFailEveryRequest(nil)  // topped up
            #expect(mock.statistics().failEveryRequest == nil)
            let served = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(served.status == 200)
            #expect(mock.statistics().answers(402) == 2)
        }
    }

    @Test("fail-every-request 401 answers DeepSeek's authentication error")
    func failEveryRequest401IsDeepSeeksAuthenticationError() async throws {
        var options = MockUpstreamOptions()
        options.failEveryRequest = 401
        try await withMock(options) { mock in
            let response = try MockRawHTTP.post(mock, json: Self.plainRequest)
            #expect(response.status == 401)
            #expect(
                response.bodyText
                    == #"{"error":{"message":"Authentication Fails (no such user)","type":"authentication_error","param":null,"code":"invalid_request_error"}}"#
            )
        }
    }

    @Test("the latency option delays every answer; first_byte_delay_ms overrides it", arguments: [false, true])
    func latencyDelaysAnswers(fixedResponses: Bool) async throws {
        var options = MockUpstreamOptions()
        options.latency = .seconds(3600)
        options.fixedResponses = fixedResponses
        try await withMock(options) { mock in
            let waiting = try HeldRequest(port: mock.port, body: Self.plainRequest)
            try await eventually { mock.statistics().inProgress == 1 }
            let immediate = try MockRawHTTP.post(mock, json: #"{"model":"m","messages":[],"mock":{"first_byte_delay_ms":0}}"#)
            #expect(immediate.status == 200)
            #expect(mock.statistics().answersByStatus == [200: 1])  // the plain request is still waiting
            waiting.close()
        }
    }

    @Test("statistics count answers by status and per second, and requests in progress")
    func statisticsCountAnswers() async throws {
        try await withMock { mock in
            #expect(mock.statistics() == MockUpstreamStatistics())
            for _ in 0..<3 {
                #expect(try MockRawHTTP.post(mock, json: Self.plainRequest).status == 200)
            }
            #expect(try MockRawHTTP.post(mock, json: #"{"model":"m","messages":[],"mock":{"status":429}}"#).status == 429)
            #expect(try MockRawHTTP.post(mock, json: #"{"model":"m","messages":[],"mock":{"status":503}}"#).status == 503)
            #expect(try MockRawHTTP.roundTrip(mock, method: "GET", path: "/nowhere", body: nil).status == 404)
            try await eventually { mock.statistics().inProgress == 0 }

            let statistics = mock.statistics()
            #expect(statistics.answersByStatus == [200: 3, 429: 1, 503: 1, 404: 1])
            #expect(statistics.peakInProgress == 1)
            #expect(statistics.maxConcurrentRequests == nil)
            #expect(statistics.seconds.reduce(0) { $0 + $1.ok } == 3)
            #expect(statistics.seconds.reduce(0) { $0 + $1.rateLimited } == 1)
            #expect(statistics.seconds.reduce(0) { $0 + $1.other } == 2)
            #expect(statistics.seconds.map(\.peakInProgress).max() == 1)
            // Consecutive seconds, none missing.
            let offsets = statistics.seconds.map(\.offset)
            #expect(offsets == Array((offsets.first ?? 0)..<((offsets.first ?? 0) + offsets.count)))
        }
    }

    @Test("GET /_mock/statistics serves the statistics as JSON and does not count itself")
    func statisticsEndpointServesJSON() async throws {
        var options = MockUpstreamOptions()
        options.maxConcurrentRequests = 4
        options.failEveryRequest = 503
        try await withMock(options) { mock in
            #expect(try MockRawHTTP.post(mock, json: Self.plainRequest).status == 503)
            try await eventually { mock.statistics().inProgress == 0 }

            let response = try MockRawHTTP.roundTrip(mock, method: "GET", path: "/_mock/statistics", body: nil)
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json")
            let body = try response.jsonObject()
            #expect(body["answers_by_status"] == ["503": 1])
            #expect(body["in_progress"]?.integerValue == 0)
            #expect(body["peak_in_progress"]?.integerValue == 1)
            #expect(body["max_concurrent_requests"]?.integerValue == 4)
            #expect(body["fail_every_request"]?.integerValue == 503)
            let seconds = try #require(body["seconds"]?.arrayValue)
            #expect(seconds.compactMap { $0["other"]?.integerValue }.reduce(0, +) == 1)
            #expect(seconds.allSatisfy { $0["second"]?.integerValue != nil && $0["ok"]?.integerValue != nil })
            #expect(seconds.allSatisfy { $0["rate_limited"]?.integerValue != nil && $0["peak_in_progress"]?.integerValue != nil })
            #expect(JSONValue.object(body) == mock.statistics().json)

            let wrongMethod = try MockRawHTTP.roundTrip(mock, method: "POST", path: "/_mock/statistics", body: "{}")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.header("allow") == "GET")
            #expect(mock.statistics().answersByStatus == [503: 1])
        }
    }
}

// MARK: - Helpers

/// A completion request whose answer never comes, in progress until `close()`.
final class HeldRequest: @unchecked Sendable {
    private var descriptor: Int32

    static let neverAnswered = #"{"model":"m","messages":[],"mock":{"first_byte_delay_ms":3600000}}"#

    init(port: Int, body: String = HeldRequest.neverAnswered) throws {
        let request = MockRawHTTP.request(method: "POST", path: "/chat/completions", body: body, keepAlive: true)
        #if canImport(Glibc)
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        self.descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard self.descriptor >= 0 else { throw MockRawHTTPError("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            self.close()
            throw MockRawHTTPError("connect failed")
        }
        let sent = request.withUnsafeBytes { send(self.descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == request.count else {
            self.close()
            throw MockRawHTTPError("send failed")
        }
    }

    func close() {
        guard self.descriptor >= 0 else { return }
        #if canImport(Glibc)
        _ = Glibc.close(self.descriptor)
        #else
        _ = Darwin.close(self.descriptor)
        #endif
        self.descriptor = -1
    }

    deinit {
        self.close()
    }
}

/// Waits until `condition` holds (checked every 10 ms, for at most 60 s: a bound, not a timing claim).
func eventually(_ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    for _ in 0..<6000 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition did not hold within 60 s", sourceLocation: sourceLocation)
}
