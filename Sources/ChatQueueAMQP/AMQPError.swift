import CRabbitMQ
import ChatQueueSystem

/// An error from the AMQP layer: what failed (`code`), rabbitmq-c's or the
/// broker's words for it, and where (`context`, e.g. "queue.declare chat.requests").
public struct AMQPError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// TCP/TLS connect or the AMQP handshake failed.
        case connect
        /// The broker refused the credentials or the virtual host.
        case login
        /// The broker closed the channel (e.g. PRECONDITION_FAILED on a re-declare).
        case channelClosed(replyCode: UInt16)
        /// The broker closed the connection.
        case connectionClosed(replyCode: UInt16)
        /// The socket failed or the peer went away.
        case socket
        /// No heartbeat from the broker within two intervals.
        case heartbeatTimeout
        /// A frame arrived that the protocol does not allow here.
        case unexpectedFrame
        /// A mandatory publish came back: nothing is bound to its routing key.
        case unroutable
        /// Any other library status.
        case library(status: Int32)
    }

    public var code: Code
    public var message: String
    public var context: String
    /// The failed system call behind a `.socket` error, when one was ours
    /// (a write, a poll); nil when rabbitmq-c or OpenSSL reported it.
    public var systemError: SystemError?

    public init(code: Code, message: String, context: String, systemError: SystemError? = nil) {
        self.code = code
        self.message = message
        self.context = context
        self.systemError = systemError
    }

    /// A socket failure from one of our own system calls.
    static func socket(_ error: SystemError, context: String) -> AMQPError {
        AMQPError(code: .socket, message: error.reason, context: context, systemError: error)
    }

    /// A frame this code cannot use where it arrived (see AMQPFrame+Decoding.swift).
    static func unexpectedFrame(_ message: String, context: String = "read frame") -> AMQPError {
        AMQPError(code: .unexpectedFrame, message: message, context: context)
    }

    public var description: String { "\(context): \(message)" }

    /// Wraps a negative rabbitmq-c status code.
    static func status(_ status: Int32, context: String) -> AMQPError {
        let message = String(cString: amqp_error_string2(status))
        switch status {
        case Int32(AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue):
            return AMQPError(code: .heartbeatTimeout, message: message, context: context)
        case Int32(AMQP_STATUS_CONNECTION_CLOSED.rawValue), Int32(AMQP_STATUS_SOCKET_ERROR.rawValue),
            Int32(AMQP_STATUS_SOCKET_CLOSED.rawValue), Int32(AMQP_STATUS_SSL_ERROR.rawValue):
            return AMQPError(code: .socket, message: message, context: context)
        default:
            return AMQPError(code: .library(status: status), message: message, context: context)
        }
    }
}
