import Testing

@testable import ChatQueueWorker

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, removed (with its files) by `remove()`.
struct ScratchDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/chatqueue-supervision-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = try #require(created.map { String(cString: $0) })
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// The names in the directory, hidden ones included, sorted.
    func names() -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    func contents(_ name: String) -> String? {
        guard let file = fopen(file(name), "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func mode(_ name: String) -> mode_t? {
        var info = stat()
        guard stat(file(name), &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    func remove() {
        for name in names() { unlink(file(name)) }
        rmdir(path)
    }
}

/// A bound AF_UNIX datagram socket standing in for systemd's notify socket.
final class DatagramReceiver {
    let descriptor: Int32
    /// What goes into NOTIFY_SOCKET: a path, or `@name` for an abstract socket.
    let notifySocket: String

    init(notifySocket: String) throws {
        self.notifySocket = notifySocket
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(notifySocket.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(
            MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        try #require(result == 0, "bind \(notifySocket): errno \(errno)")
    }

    deinit { close(descriptor) }

    /// The next datagram, waiting up to a second; nil if none came.
    func receive() -> String? {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 1000) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }
}

extension WorkerCounters {
    /// Every counter at a different value, so a test sees which one went where.
    static let sample: WorkerCounters = {
        var counters = WorkerCounters()
        counters.received = 13
        counters.succeeded = 7
        counters.failed = 2
        counters.rejected = 1
        counters.requeued = 3
        counters.retried = 4
        counters.redelivered = 5
        counters.chunksPublished = 120
        counters.unroutableReplies = 6
        counters.reconnects = 2
        counters.finalsRepublished = 8
        counters.finalsRefused = 9
        counters.brokerConnectFailures = 10
        counters.degradations = 11
        counters.upstreamProbes = 12
        counters.cancelled = 13
        counters.abandoned = 14
        counters.cancelsReceived = 15
        counters.cancelsMalformed = 16
        counters.cancelsRemembered = 17
        counters.held = 18
        counters.publisherReplacements = 19
        return counters
    }()
}
