import ChatQueueCore
import CRabbitMQ
import FuzzSupport

@testable import ChatQueueAMQP
@testable import ChatQueueWorker

runLibFuzzer(fuzzRequestMetadata)

/// Request metadata from a delivery's properties: arbitrary bytes are decoded
/// by rabbitmq-c's own decoder, as the worker receives them, either as a
/// basic content header's property list (first byte even) or as a bare field
/// table used as the headers (odd), copied into AMQPMessageProperties and
/// read into RequestMetadata. Nothing a publisher sets may trap.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzRequestMetadata(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let encoded = input.takeRest()
    var pool = amqp_pool_t()
    init_amqp_pool(&pool, 4096)
    defer { empty_amqp_pool(&pool) }
    let bytes = amqp_bytes_t(len: encoded.count, bytes: UnsafeMutableRawPointer(mutating: encoded.baseAddress))

    let properties: AMQPMessageProperties
    if mode & 1 == 0 {
        var decoded: UnsafeMutableRawPointer?
        guard amqp_decode_properties(UInt16(AMQP_BASIC_CLASS), &pool, bytes, &decoded) >= 0, let decoded else { return 0 }
        properties = AMQPMessageProperties(decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
    } else {
        var table = amqp_table_t()
        var offset = 0
        guard amqp_decode_table(bytes, &pool, &table, &offset) >= 0 else { return 0 }
        properties = AMQPMessageProperties(headers: decodeTable(table))
    }

    for value in properties.headers.values {
        _ = value.saturatedInteger
        _ = value.stringValue
    }
    for redelivered in [false, true] {
        let metadata = RequestMetadata(
            properties: properties, redelivered: redelivered, defaultReplyQueue: mode & 2 == 0 ? nil : "replies"
        ) { "generated" }
        fuzzCheck(!metadata.requestID.isEmpty && !metadata.correlationID.isEmpty, "empty request id")
        fuzzCheck(RequestMetadata.attemptRange.contains(metadata.attempt), "attempt \(metadata.attempt)")
        fuzzCheck(metadata.replyTo?.isEmpty != true, "empty reply queue")
        if let deadline = metadata.deadlineMilliseconds {
            fuzzCheck(RequestMetadata.deadlineRange.contains(deadline), "deadline \(deadline) out of range")
        }
        fuzzCheck(metadata.invalidDeadline == (properties.headers["x-deadline-ms"] != nil && metadata.deadlineMilliseconds == nil),
            "invalidDeadline wrong")
    }

    // Trace context: every string header, and the raw input, as a traceparent
    // (with the tracestate header, if any); what is accepted must come out valid.
    var tracestate: String?
    if case .string(let state) = properties.headers["tracestate"] { tracestate = state }
    var candidates = properties.headers.values.compactMap { value -> [UInt8]? in
        if case .string(let text) = value { return Array(text.utf8) }
        return nil
    }
    candidates.append(Array(encoded))
    for candidate in candidates {
        guard let context = TraceContext.parse(traceparent: candidate, tracestate: tracestate?.utf8) else { continue }
        fuzzCheck(context.traceID.isValid && context.spanID.isValid, "an all-zero id accepted")
        fuzzCheck(candidate.count == 55 || candidate[0] != UInt8(ascii: "0") || candidate[1] != UInt8(ascii: "0"),
            "a version 00 traceparent of \(candidate.count) bytes accepted")
        let child = SpanID(0x0102_0304_0506_0708)
        let formatted = context.traceparent(span: child)
        let again = TraceContext.parse(traceparent: formatted.utf8, tracestate: context.state?.utf8)
        fuzzCheck(formatted.utf8.count == 55, "a traceparent of \(formatted.utf8.count) bytes made")
        fuzzCheck(again?.traceID == context.traceID && again?.spanID == child && again?.flags == context.flags,
            "a made traceparent does not read back: \(formatted)")
        if let state = context.state {
            fuzzCheck(state.utf8.count <= TraceContext.maxTracestateBytes, "a tracestate of \(state.utf8.count) bytes kept")
            fuzzCheck(state.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }, "a tracestate with control bytes kept")
            fuzzCheck(again?.state == state, "a kept tracestate does not read back")
        }
    }
    if let timestamp = properties.timestamp {
        for now in [Int64.min, -1, 0, 1_795_788_185_123, Int64.max] {
            if let wait = QueueWait.seconds(timestamp: timestamp, nowUnixMilliseconds: now) {
                fuzzCheck(wait.isFinite && wait >= 0, "queue wait \(wait) from \(timestamp) at \(now)")
            }
        }
    }

    // The deadline arithmetic on any header value (not only accepted ones) and any clock reading.
    for value in properties.headers.values {
        guard let milliseconds = value.saturatedInteger else { continue }
        let nowMonotonic = Deadline(nanoseconds: UInt64(truncatingIfNeeded: milliseconds) &* 31)
        let nowUnix = Int64(truncatingIfNeeded: nowMonotonic.nanoseconds >> 1)
        let deadline = RequestMetadata.monotonicDeadline(
            unixMilliseconds: milliseconds, nowUnixMilliseconds: nowUnix, nowMonotonic: nowMonotonic)
        fuzzCheck((deadline != nil) == (milliseconds > nowUnix), "deadline \(milliseconds) at \(nowUnix): \(String(describing: deadline))")
        fuzzCheck(deadline.map { $0 >= nowMonotonic } != false, "a future deadline \(milliseconds) before now")
    }
    return 0
}
