import Testing

@testable import ChatQueueCore

@Suite("Text excerpts")
struct TextExcerptTests {
    @Test(
        "one printable line: controls and whitespace runs become one space, ends trimmed",
        arguments: [
            ("", ""),
            ("  plain text  ", "plain text"),
            ("a\r\n\tb\u{0}\u{7}c\u{2028}d\u{200B}e", "a b c d e"),
            ("\u{1b}[31mred\u{1b}[0m", "[31mred [0m"),
            ("naïve 日本", "naïve 日本"),
        ])
    func printable(input: String, output: String) {
        #expect(TextExcerpt.make(input) == output)
    }

    @Test("invalid UTF-8 becomes U+FFFD")
    func invalidUTF8() {
        #expect(TextExcerpt.make([0x61, 0xFF, 0x62, 0xC3]) == "a\u{FFFD}b\u{FFFD}")
    }

    @Test("bounded in bytes, cut at a character boundary with ..., a text that fits is kept whole")
    func bounded() {
        #expect(TextExcerpt.make(String(repeating: "a", count: 300)) == String(repeating: "a", count: 300))
        let cut = TextExcerpt.make(String(repeating: "a", count: 301))
        #expect(cut == String(repeating: "a", count: 297) + "...")
        let wide = TextExcerpt.make(String(repeating: "日", count: 200), limit: 20)
        #expect(wide == String(repeating: "日", count: 5) + "...")
        #expect(wide.utf8.count <= 20)
        let huge = [UInt8](repeating: UInt8(ascii: "z"), count: 10_000_000)
        #expect(TextExcerpt.make(huge).utf8.count == 300)
        let blanks = [UInt8](repeating: UInt8(ascii: " "), count: 5000) + Array("tail".utf8)
        #expect(TextExcerpt.make(blanks, limit: 10) == "...")
    }
}

@Suite("Upstream failure summaries")
struct UpstreamFailureSummaryTests {
    @Test("an HTTP failure shows status, the upstream's code and message, never the body's bytes")
    func httpSummary() {
        let json = #"{"error":{"message":"Service\nbusy","code":"overloaded","type":"x"}}"#
        let failure = UpstreamFailure.httpStatus(503, body: Array(json.utf8))
        #expect(failure.summary == "HTTP 503 overloaded: Service busy")
        #expect("\(failure)" == failure.summary)
        let html = UpstreamFailure.httpStatus(502, body: Array("<html>\n<h1>Bad Gateway</h1>\n</html>".utf8))
        #expect(html.summary == "HTTP 502: <html> <h1>Bad Gateway</h1> </html>")
        #expect(UpstreamFailure.httpStatus(500, body: []).summary == "HTTP 500")
    }

    @Test(
        "every summary is one printable line of at most 300 bytes plus its label",
        arguments: [
            UpstreamFailure.httpStatus(503, body: [UInt8](repeating: 0xFF, count: 100_000)),
            .httpStatus(429, body: Array(("{\"error\":{\"message\":\"" + String(repeating: "m", count: 100_000) + "\"}}").utf8)),
            .httpStatus(400, body: Array(("{\"error\":{\"code\":\"" + String(repeating: "c", count: 100_000) + "\"}}").utf8)),
            .connectionFailed(String(repeating: "\n", count: 100_000)),
            .badResponse(String(repeating: "b", count: 100_000)),
            .streamInterrupted(String(repeating: "s", count: 100_000)),
            .streamError(.object(["error": .object(["message": .string(String(repeating: "e", count: 100_000))])])),
        ])
    func bounded(failure: UpstreamFailure) {
        let summary = failure.summary
        #expect(summary.utf8.count <= 400)
        #expect(!summary.unicodeScalars.contains { $0.properties.generalCategory == .control })
        #expect(!summary.contains("255, 255"))
    }

    @Test("failures without text are their code")
    func plainCodes() {
        #expect(UpstreamFailure.firstByteTimeout.summary == "first_byte_timeout")
        #expect(UpstreamFailure.connectionFailed("refused").summary == "connection_failed: refused")
        #expect(UpstreamFailure.streamError(.object([:])).summary == "stream_error")
    }
}
