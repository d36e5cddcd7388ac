// The mock upstream as an OTLP/HTTP collector stand-in (`POST /v1/traces`),
// for the span exporter's tests.

import ChatQueueCore
import ChatQueueMockUpstream
import Testing

@Suite("Mock upstream: OTLP collector stand-in")
struct MockCollectorTests {
    @Test("POST /v1/traces records the body and answers 200; GET /_mock/traces serves the bodies; not counted as answers")
    func recordsTraces() async throws {
        try await withMock { mock in
            let first = try MockRawHTTP.roundTrip(mock, method: "POST", path: "/v1/traces", body: #"{"resourceSpans":[]}"#)
            #expect(first.status == 200)
            #expect(try first.jsonObject() == JSONObject())
            let second = try MockRawHTTP.roundTrip(mock, method: "POST", path: "/v1/traces", body: "not json")
            #expect(second.status == 200)
            #expect(mock.receivedTraces() == [Array(#"{"resourceSpans":[]}"#.utf8), Array("not json".utf8)])

            let served = try MockRawHTTP.roundTrip(mock, method: "GET", path: "/_mock/traces", body: nil)
            #expect(served.status == 200)
            #expect(try JSONValue(parsing: served.body) == [["resourceSpans": []], "not json"])
            #expect(try MockRawHTTP.roundTrip(mock, method: "GET", path: "/v1/traces", body: nil).status == 405)
            #expect(mock.statistics().answersByStatus.isEmpty, "collector traffic is not a completion answer")
        }
    }

    @Test("setTracesStatus(503) refuses and records nothing; nil accepts again")
    func refuses() async throws {
        try await withMock { mock in
            mock.setTracesStatus(503)
            let refused = try MockRawHTTP.roundTrip(mock, method: "POST", path: "/v1/traces", body: "{}")
            #expect(refused.status == 503)
            #expect(mock.receivedTraces().isEmpty)
            mock.setTracesStatus(nil)
            #expect(try MockRawHTTP.roundTrip(mock, method: "POST", path: "/v1/traces", body: "{}").status == 200)
            #expect(mock.receivedTraces().count == 1)
        }
    }
}
