import ChatQueueCore
import Testing

@Suite("Cancel messages")
struct CancelMessageTests {
    static func parse(_ text: String, contentType: String? = "application/json") -> Result<String, CancelMessage.Malformed> {
        let body = Array(text.utf8)
        return CancelMessage.requestID(body: body, bodySize: UInt64(body.count), contentType: contentType)
    }

    @Test("a well-formed cancel names its request id")
    func wellFormed() {
        #expect(Self.parse(#"{"request_id": "req-1"}"#) == .success("req-1"))
        #expect(Self.parse(#"{"request_id":"r","other":[1,2]}"#, contentType: "Application/JSON; charset=utf-8") == .success("r"))
        #expect(Self.parse(#"{"request_id":"r"}"#, contentType: nil) == .success("r"))
        #expect(Self.parse(#"{"request_id":"r"}"#, contentType: "  ") == .success("r"), "blank is absent, as for requests")
        let longest = String(repeating: "a", count: CancelMessage.maxRequestIDBytes)
        #expect(Self.parse(#"{"request_id":"\#(longest)"}"#) == .success(longest))
    }

    @Test("the body a requester publishes parses back to its id, quotes and control characters included")
    func bodyRoundTrips() {
        for id in ["req-1", "a\"b\\c", "line\nbreak\u{1}", "ünïcode"] {
            let body = CancelMessage.body(requestID: id)
            #expect(CancelMessage.requestID(body: body, bodySize: UInt64(body.count), contentType: "application/json") == .success(id))
        }
        #expect(String(decoding: CancelMessage.body(requestID: "r"), as: UTF8.self) == #"{"request_id":"r"}"#)
    }

    @Test("hostile cancels are malformed, never a trap", arguments: [
        "", "null", "[]", "\"x\"", "{", "{}", #"{"request_id":null}"#, #"{"request_id":7}"#, #"{"request_id":""}"#,
        #"{"request_id":["a"]}"#, #"{"request_id":{"a":1}}"#, "{\"request_id\":\"\\ud800\"}",
        String(repeating: "[", count: 100_000), #"{"request_id":"a"} x"#,
    ])
    func hostile(_ text: String) {
        guard case .failure = Self.parse(text) else {
            Issue.record("accepted \(text.prefix(40))")
            return
        }
    }

    @Test("oversized bodies, ids and foreign content types are malformed before parsing")
    func bounds() {
        let tooLong = String(repeating: "a", count: CancelMessage.maxRequestIDBytes + 1)
        #expect(Self.parse(#"{"request_id":"\#(tooLong)"}"#) == .failure(.badRequestID))
        let big = #"{"request_id":"r","pad":""# + String(repeating: " ", count: 5000) + #""}"#
        #expect(Self.parse(big) == .failure(.tooLarge(big.utf8.count)))
        // Announced larger than the limit but cut short by the assembler.
        #expect(
            CancelMessage.requestID(body: Array(#"{"request_id":"r"}"#.utf8), bodySize: 1 << 40, contentType: nil)
                == .failure(.tooLarge(1 << 40)))
        #expect(Self.parse(#"{"request_id":"r"}"#, contentType: "text/plain") == .failure(.contentType("text/plain")))
        #expect(Self.parse([UInt8](repeating: 0xFF, count: 10).description) == .failure(.notAnObject))
        let invalidUTF8 = [UInt8](#"{"request_id":""#.utf8) + [0xC3, 0x28] + [UInt8](#""}"#.utf8)
        #expect(CancelMessage.requestID(body: invalidUTF8, bodySize: UInt64(invalidUTF8.count), contentType: nil) == .failure(.notJSON))
    }
}

@Suite("Pending cancels")
struct PendingCancelsTests {
    static let second: UInt64 = 1_000_000_000
    static let start = Deadline(nanoseconds: 1000 * second)

    @Test("a remembered cancel is found until its lifetime ends")
    func lifetime() {
        var pending = PendingCancels(lifetime: 10 * Self.second, capacity: 4)
        let added = pending.remember("a", now: Self.start)
        #expect(added)
        #expect(pending.contains("a", now: Self.start))
        #expect(pending.contains("a", now: Self.start + (10 * Self.second - 1)))
        #expect(!pending.contains("a", now: Self.start + 10 * Self.second))
        #expect(!pending.contains("b", now: Self.start))
        let again = pending.remember("a", now: Self.start + Self.second)
        #expect(!again, "remembered already: the first time stands")
        #expect(!pending.contains("a", now: Self.start + 10 * Self.second))
        let other = pending.remember("b", now: Self.start + 11 * Self.second)
        #expect(other)
        #expect(pending.count == 1, "the expired one was dropped")
    }

    @Test("at most capacity ids, the oldest forgotten first")
    func capacity() {
        var pending = PendingCancels(lifetime: 100 * Self.second, capacity: 3)
        for (index, id) in ["a", "b", "c", "d"].enumerated() {
            pending.remember(id, now: Self.start + UInt64(index))
        }
        #expect(pending.count == 3)
        #expect(!pending.contains("a", now: Self.start + 5))
        #expect(["b", "c", "d"].allSatisfy { pending.contains($0, now: Self.start + 5) })
        var off = PendingCancels(lifetime: Self.second, capacity: 0)
        let offAdded = off.remember("a", now: Self.start)
        #expect(!offAdded)
        #expect(!off.contains("a", now: Self.start))
    }

    @Test("a storm of distinct ids keeps memory bounded by the capacity")
    func storm() {
        var pending = PendingCancels(lifetime: 3600 * Self.second, capacity: 1000)
        var now = Self.start
        for index in 0..<200_000 {
            now = now + 1
            pending.remember("id-\(index)", now: now)
            #expect(pending.storedCount <= 2 * 1000 + 1024)
        }
        #expect(pending.count == 1000)
        #expect(pending.contains("id-199999", now: now))
        #expect(!pending.contains("id-198999", now: now))
        #expect(pending.contains("id-199000", now: now))
    }

    @Test("lifetimes at the end of time saturate instead of trapping")
    func saturating() {
        var pending = PendingCancels(lifetime: .max, capacity: 2)
        let remembered121 = pending.remember("a", now: Deadline(nanoseconds: .max - 1))
        #expect(remembered121)
        #expect(pending.contains("a", now: Deadline(nanoseconds: .max - 1)))
    }
}
