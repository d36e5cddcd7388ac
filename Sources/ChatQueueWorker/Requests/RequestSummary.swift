import ChatQueueCore
import Logging

/// The one line logged when a request ends (`log.request_summary`): the
/// access log operators grep. Ids, names, numbers and codes only: never a
/// secret, a message's content or text from the upstream. Pure.
struct RequestSummary: Equatable {
    var requestID: String
    var correlationID: String
    /// nil when the request is not traced.
    var traceID: String?
    var spanID: String?
    /// The request's model as sent (empty when the body was not valid).
    var model: String
    /// The upstream of the last try, nil when none was made.
    var upstream: String?
    /// `chat.completion`, `error` or `none` (settled without a final).
    var finalType: String
    var errorStatus: Int?
    var errorCode: String?
    /// `ack`, `dead_letter`, `requeue`, or `lost` (the broker connection went, the broker requeues it).
    var settlement: String
    /// Why it ended so (`answered`, `held`, `draining`, `connection_lost`, ...).
    var reason: String
    var attempt: Int
    /// HTTP tries made.
    var tries: Int
    /// Milliseconds from delivery to the first chunk published; nil without chunks.
    var firstChunkMilliseconds: Double?
    var durationMilliseconds: Double
    var chunks: Int
    var usage: TokenUsage?

    static let message: Logger.Message = "request done"

    /// The line's fields, dotted keys as in the worker's other lines.
    var metadata: Logger.Metadata {
        var fields: Logger.Metadata = [
            "request.id": "\(requestID)",
            "correlation.id": "\(correlationID)",
            "request.model": "\(model)",
            "reply.type": "\(finalType)",
            "request.settlement": "\(settlement)",
            "request.reason": "\(reason)",
            "request.attempt": "\(attempt)",
            "request.tries": "\(tries)",
            "request.duration_ms": "\(Self.rounded(durationMilliseconds))",
            "request.chunks": "\(chunks)",
        ]
        if let traceID { fields["trace.id"] = "\(traceID)" }
        if let spanID { fields["span.id"] = "\(spanID)" }
        if let upstream { fields["upstream.name"] = "\(upstream)" }
        if let errorStatus { fields["error.status"] = "\(errorStatus)" }
        if let errorCode { fields["error.code"] = "\(errorCode)" }
        if let firstChunkMilliseconds { fields["request.first_chunk_ms"] = "\(Self.rounded(firstChunkMilliseconds))" }
        if let usage {
            fields["usage.prompt_tokens"] = "\(usage.prompt)"
            fields["usage.completion_tokens"] = "\(usage.completion)"
        }
        return fields
    }

    /// Three decimals (microseconds) are plenty for a log line.
    static func rounded(_ milliseconds: Double) -> Double {
        guard milliseconds.isFinite else { return 0 }
        return (milliseconds * 1000).rounded() / 1000
    }
}
