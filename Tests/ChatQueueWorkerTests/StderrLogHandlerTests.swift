import ChatQueueCore
import Logging
import Testing

@testable import ChatQueueWorker

/// The two log line formats operators read in the journal.
@Suite("Stderr log format")
struct StderrLogHandlerTests {
    let metadata: Logger.Metadata = ["request.id": "r-1", "correlation.id": "c 2", "error.message": "bad \"quote\"\nline"]

    @Test("text: timestamp, level, label, message, then metadata sorted, values with spaces quoted, one line")
    func textFormat() {
        let handler = StderrLogHandler(label: "chatqueue", format: .text, level: .info)
        let line = handler.formattedLine(
            timestamp: "2026-11-27T14:03:05.123Z", level: .warning, message: "request failed", metadata: metadata)
        #expect(line.hasPrefix("2026-11-27T14:03:05.123Z warning chatqueue: request failed "))
        #expect(line.contains(#"correlation.id="c 2""#))
        #expect(line.contains("request.id=r-1"))
        #expect(line.range(of: "correlation.id")!.lowerBound < line.range(of: "request.id")!.lowerBound)
        #expect(line.dropLast().contains("\n") == false)
    }

    @Test("json: one parseable object per line with dotted metadata keys as they are")
    func jsonFormat() throws {
        let handler = StderrLogHandler(label: "chatqueue", format: .json, level: .info)
        let line = handler.formattedLine(
            timestamp: "2026-11-27T14:03:05.123Z", level: .info, message: "request \"received\"", metadata: metadata)
        #expect(line.dropLast().contains("\n") == false)
        let object = try JSONValue(parsing: Array(line.utf8))
        #expect(object["ts"]?.stringValue == "2026-11-27T14:03:05.123Z")
        #expect(object["level"]?.stringValue == "info")
        #expect(object["msg"]?.stringValue == "request \"received\"")
        #expect(object["request.id"]?.stringValue == "r-1")
        #expect(object["error.message"]?.stringValue == "bad \"quote\"\nline")
    }
}
