import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A TCP relay on 127.0.0.1 in front of a broker port. `holdClientBytes`
/// stops forwarding what clients send (the broker keeps talking to them): a
/// client's socket then fills up exactly as when a broker stops reading it,
/// without touching the broker, TLS included (the relay only moves bytes).
final class TCPRelay: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let targetPort: Int
    private let state = Mutex(State())

    private struct State {
        var holding = false
        var descriptors: [Int32] = []
        var stopped = false
    }

    init(targetPort: Int) throws {
        self.targetPort = targetPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw TestFailure("socket: errno \(errno)") }
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        // A small receive buffer (inherited by accepted sockets) so a held client fills up soon.
        var small: Int32 = 16 * 1024
        setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        guard bound == 0, listen(listener, 16) == 0,
            withUnsafeMutablePointer(to: &address, {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
            }) == 0
        else {
            close(listener)
            throw TestFailure("bind/listen: errno \(errno)")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Stops (true) or resumes (false) forwarding client bytes to the broker.
    func holdClientBytes(_ hold: Bool) {
        state.withLock { $0.holding = hold }
    }

    /// Closes the listener and every relayed connection.
    func stop() {
        let descriptors = state.withLock { state in
            state.stopped = true
            return state.descriptors
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for descriptor in descriptors { shutdown(descriptor, Int32(SHUT_RDWR)) }
    }

    deinit { stop() }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: targetPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            let registered = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                state.descriptors += [client, server]
                return true
            }
            guard connected == 0, registered else {
                close(client)
                close(server)
                continue
            }
            Thread.detachNewThread { [self] in pump(from: client, to: server, holdable: true) }
            Thread.detachNewThread { [self] in pump(from: server, to: client, holdable: false) }
        }
    }

    private func pump(from source: Int32, to destination: Int32, holdable: Bool) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        defer {
            shutdown(destination, Int32(SHUT_WR))
        }
        while true {
            while holdable && state.withLock({ $0.holding && !$0.stopped }) { usleep(10_000) }
            let count = read(source, &buffer, buffer.count)
            guard count > 0 else { return }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { write(destination, $0.baseAddress! + sent, count - sent) }
                guard written > 0 else { return }
                sent += written
            }
        }
    }
}
