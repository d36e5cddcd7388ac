#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call and the `errno` it left. The one error
/// type for the kernel's answers (files, sockets, epoll, signals, clocks).
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call, e.g. "open /etc/chatqueue/key" or "epoll_ctl".
    public var call: String
    public var errno: Int32
    /// Our words, when the kernel's for `errno` would say less ("larger than 65536 bytes").
    public var detail: String?

    public init(call: String, errno: Int32, detail: String? = nil) {
        self.call = call
        self.errno = errno
        self.detail = detail
    }

    /// Why it failed: `detail`, else the system's words for `errno` ("No such file or directory").
    public var reason: String { detail ?? Self.reason(for: errno) }

    public var description: String { "\(call): \(reason)" }

    /// ENOENT: the file or directory does not exist.
    public var isNotFound: Bool { errno == ENOENT }

    public static func reason(for code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}

/// What a call on a non-blocking descriptor did.
public enum IOResult<Value: Sendable>: Sendable {
    case processed(Value)
    /// EAGAIN/EWOULDBLOCK: nothing to read, or no room to write, now.
    case wouldBlock
}

/// Errors that only a bug in this program can cause (a descriptor it doesn't
/// own, a bad pointer): they trap instead of being handled as I/O errors,
/// as swift-nio's `System.swift` does.
@inline(__always)
private func isProgrammerError(_ code: Int32) -> Bool {
    code == EFAULT || code == EBADF
}

/// Runs one system call that reports failure as -1 and `errno`: retries it
/// when a signal interrupted it (EINTR), traps on programmer errors and throws
/// the rest. `allowing` lists errno values the caller handles itself; they
/// throw instead of trapping (e.g. EBADF from `epoll_ctl` on a descriptor
/// libcurl already closed).
@inline(__always)
@discardableResult
public func systemCall<Result: FixedWidthInteger>(
    _ name: @autoclosure () -> String, allowing: Int32? = nil, _ body: () -> Result
) throws(SystemError) -> Result {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code == EINTR { continue }
        if code != allowing, isProgrammerError(code) {
            preconditionFailure("\(name()) failed with \(SystemError.reason(for: code)): a bug in chatqueue")
        }
        throw SystemError(call: name(), errno: code)
    }
}

/// `systemCall` for non-blocking descriptors: EAGAIN is a value, not an
/// error. `allowing` as in `systemCall`.
@inline(__always)
public func nonBlockingSystemCall<Result: FixedWidthInteger & Sendable>(
    _ name: @autoclosure () -> String, allowing: Int32? = nil, _ body: () -> Result
) throws(SystemError) -> IOResult<Result> {
    while true {
        let result = body()
        if result != -1 { return .processed(result) }
        let code = errno
        if code == EINTR { continue }
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
        if code != allowing, isProgrammerError(code) {
            preconditionFailure("\(name()) failed with \(SystemError.reason(for: code)): a bug in chatqueue")
        }
        throw SystemError(call: name(), errno: code)
    }
}

/// `systemCall` for a call that waits (`epoll_wait`, `poll`): a signal ends
/// the wait with `nil` instead of restarting it with its whole timeout, so the
/// caller recomputes its timers (and sees the signal's own event) first.
@inline(__always)
public func interruptibleSystemCall<Result: FixedWidthInteger>(
    _ name: @autoclosure () -> String, _ body: () -> Result
) throws(SystemError) -> Result? {
    let result = body()
    if result != -1 { return result }
    let code = errno
    if code == EINTR { return nil }
    if isProgrammerError(code) {
        preconditionFailure("\(name()) failed with \(SystemError.reason(for: code)): a bug in chatqueue")
    }
    throw SystemError(call: name(), errno: code)
}

/// For the calls that return their error number instead of setting `errno`
/// (`pthread_sigmask` and the other pthread functions): 0 is success.
@inline(__always)
public func errorNumberCall(_ name: @autoclosure () -> String, _ body: () -> Int32) throws(SystemError) {
    let code = body()
    guard code != 0 else { return }
    if isProgrammerError(code) {
        preconditionFailure("\(name()) failed with \(SystemError.reason(for: code)): a bug in chatqueue")
    }
    throw SystemError(call: name(), errno: code)
}
