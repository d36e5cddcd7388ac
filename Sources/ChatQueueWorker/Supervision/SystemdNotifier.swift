import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// The systemd notification protocol (`sd_notify(3)`) without libsystemd:
/// one datagram per message to the `AF_UNIX` socket named by `$NOTIFY_SOCKET`.
///
/// Sending never blocks (`MSG_DONTWAIT`) and failures are ignored: a full or
/// vanished socket must not stall or stop the event loop. With `Type=notify`
/// the unit is started once ``ready(status:)`` is sent; with `WatchdogSec=` the
/// loop must call ``watchdog()`` every ``watchdogInterval`` nanoseconds.
public final class SystemdNotifier {
    /// The messages, as `sd_notify(3)` names them.
    public enum Message {
        public static let ready = "READY=1"
        public static let stopping = "STOPPING=1"
        public static let watchdog = "WATCHDOG=1"
        /// `STATUS=<text>` (shown by `systemctl status`); newlines become spaces.
        public static func status(_ text: String) -> String {
            "STATUS=" + String(text.map { $0.isNewline ? " " : $0 })
        }
    }

    /// The socket address as given (`/run/systemd/notify`, or `@name` for an abstract socket).
    public let socketPath: String
    /// How often to send ``watchdog()``, in nanoseconds: half of `$WATCHDOG_USEC`,
    /// when that is set and `$WATCHDOG_PID` is unset or this process. Nil: no watchdog.
    public let watchdogInterval: UInt64?

    private var address = sockaddr_un()
    private let addressLength: socklen_t
    private var descriptor: Int32 = -1

    /// Nil when `NOTIFY_SOCKET` is unset or not a usable `AF_UNIX` address
    /// (empty, too long, neither absolute nor abstract).
    public init?(environment: [String: String], processID: Int32 = getpid()) {
        guard let path = environment["NOTIFY_SOCKET"] else { return nil }
        var bytes = Array(path.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@"), bytes.count > 1
        else { return nil }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A path needs room for its terminating NUL; an abstract name does not have one.
        guard bytes.count <= (first == UInt8(ascii: "@") ? capacity : capacity - 1) else { return nil }
        if first == UInt8(ascii: "@") { bytes[0] = 0 }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { pathBytes in
            pathBytes.copyBytes(from: bytes)
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        addressLength = socklen_t(pathOffset + bytes.count + (first == UInt8(ascii: "@") ? 0 : 1))
        socketPath = path
        watchdogInterval = Self.watchdogInterval(environment: environment, processID: processID)
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// `WATCHDOG_USEC / 2` in nanoseconds, if the watchdog is enabled for `processID`.
    public static func watchdogInterval(environment: [String: String], processID: Int32) -> UInt64? {
        guard let text = environment["WATCHDOG_USEC"], let microseconds = UInt64(text), microseconds > 0 else {
            return nil
        }
        if let owner = environment["WATCHDOG_PID"], Int32(owner) != processID { return nil }
        let (nanoseconds, overflow) = microseconds.multipliedReportingOverflow(by: 1000)
        return overflow ? UInt64.max / 2 : nanoseconds / 2
    }

    /// Sends `message` (one or more `KEY=value` lines) as one datagram.
    /// Never blocks; errors are dropped.
    public func notify(_ message: String) {
        if descriptor < 0 {
            let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            guard let opened = try? systemCall("socket", { socket(AF_UNIX, type, 0) }) else { return }
            descriptor = opened
        }
        let bytes = Array(message.utf8)
        let length = addressLength
        let descriptor = descriptor
        // A full or vanished socket (EAGAIN, ECONNREFUSED, ENOENT) drops the message.
        _ = try? nonBlockingSystemCall("sendto \(socketPath)") {
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                    bytes.withUnsafeBytes { buffer in
                        sendto(
                            descriptor, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL),
                            socketAddress, length)
                    }
                }
            }
        }
    }

    /// `READY=1`, with a `STATUS=` line when `status` is given: startup is done.
    public func ready(status: String? = nil) {
        notify(Self.joined(Message.ready, status))
    }

    /// `STATUS=<text>`, shown by `systemctl status`.
    public func status(_ text: String) {
        notify(Message.status(text))
    }

    /// `WATCHDOG=1`: the loop is alive.
    public func watchdog() {
        notify(Message.watchdog)
    }

    /// `STOPPING=1`, with a `STATUS=` line when `status` is given: shutdown began.
    public func stopping(status: String? = nil) {
        notify(Self.joined(Message.stopping, status))
    }

    private static func joined(_ message: String, _ status: String?) -> String {
        guard let status else { return message }
        return message + "\n" + Message.status(status)
    }
}
