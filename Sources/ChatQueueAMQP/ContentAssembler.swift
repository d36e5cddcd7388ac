/// Turns frames into messages. A delivery arrives as a method frame, a content
/// header frame and zero or more body frames; rabbitmq-c's
/// `amqp_consume_message` blocks until all of them are in, which would freeze
/// the event loop, so the worker reads single frames without blocking and
/// assembles messages here. Pure: no I/O, unit-tested with hand-made frames.
public struct ContentAssembler: Sendable {
    public enum Output: Sendable, Equatable {
        /// A method without content (ack, cancel, close, ...).
        case method(AMQPMethod, channel: UInt16)
        case message(AMQPMessage)
    }

    private enum State: Sendable {
        case idle
        case awaitingHeader(AMQPMethod, channel: UInt16)
        case awaitingBody(AMQPMessage, received: UInt64)
    }

    /// Bodies above this are not kept (only counted), so an oversized request
    /// costs no memory; the worker answers it with request_too_large.
    public let maxBodyBytes: Int
    private var state: State = .idle

    public init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    /// Whether a message is partly received.
    public var isMidMessage: Bool {
        if case .idle = state { return false }
        return true
    }

    public mutating func handle(_ frame: AMQPFrame) throws(AMQPError) -> Output? {
        switch (state, frame) {
        case (.idle, .method(let method, let channel)):
            if method.carriesContent {
                state = .awaitingHeader(method, channel: channel)
                return nil
            }
            return .method(method, channel: channel)

        case (.awaitingHeader(let method, let channel), .header(let size, let properties, let headerChannel))
            where headerChannel == channel:
            let truncated = size > UInt64(maxBodyBytes)
            let message = AMQPMessage(
                method: method, channel: channel, properties: properties, body: [],
                bodySize: size, truncated: truncated)
            if size == 0 {
                state = .idle
                return .message(message)
            }
            state = .awaitingBody(message, received: 0)
            return nil

        case (.awaitingBody(var message, let received), .body(let bytes, let bodyChannel))
            where bodyChannel == message.channel:
            state = .idle  // drop the state's reference so the append below doesn't copy
            let total = received + UInt64(bytes.count)
            if !message.truncated {
                // Most bodies fit one frame: take its bytes as they are instead of copying them.
                if received == 0 && total == message.bodySize {
                    message.body = bytes
                } else {
                    if received == 0 { message.body.reserveCapacity(Int(message.bodySize)) }
                    message.body.append(contentsOf: bytes)
                }
            }
            if total >= message.bodySize {
                return .message(message)
            }
            state = .awaitingBody(message, received: total)
            return nil

        case (.awaitingHeader, .method(let method, let channel)), (.awaitingBody, .method(let method, let channel)):
            // A channel.close or connection.close may interrupt a message; anything else is a protocol error.
            switch method {
            case .channelClose, .connectionClose:
                state = .idle
                return .method(method, channel: channel)
            default:
                throw AMQPError(code: .unexpectedFrame, message: "method frame inside a message", context: "assemble")
            }

        default:
            throw AMQPError(code: .unexpectedFrame, message: "frame out of order: \(frame)", context: "assemble")
        }
    }
}
