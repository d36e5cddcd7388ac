import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// Where the direct path sends its requests: `http://HOST:PORT[/base]`, as
/// the worker's `upstream.url` (the request goes to `{base}/chat/completions`).
/// Plain HTTP to an IPv4 address or `localhost` only: the benchmark's mock.
public struct DirectEndpoint: Sendable, Equatable {
    public var host: String
    public var port: UInt16
    /// The request target, e.g. `/chat/completions` or `/v1/chat/completions`.
    public var path: String

    public init(url: String) throws(BenchError) {
        guard url.hasPrefix("http://") else { throw BenchError("--upstream-url must be http://HOST:PORT[/path]") }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        var base = String(rest.dropFirst(authority.count))
        while base.hasSuffix("/") { base.removeLast() }
        guard let colon = authority.lastIndex(of: ":"), let port = UInt16(authority[authority.index(after: colon)...]),
            port > 0
        else { throw BenchError("--upstream-url needs a port: http://HOST:PORT") }
        let host = String(authority[..<colon])
        guard host == "localhost" || Self.ipv4(host) != nil else {
            throw BenchError("--upstream-url: the host must be an IPv4 address or localhost")
        }
        self.host = host
        self.port = port
        self.path = base + "/chat/completions"
    }

    /// The request bytes for `body`: a kept-alive POST.
    public func request(body: [UInt8]) -> [UInt8] {
        let head =
            "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: application/json\r\n"
            + "Accept: text/event-stream\r\nContent-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    static func ipv4(_ host: String) -> in_addr? {
        var address = in_addr()
        return inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address) == 1 ? address : nil
    }
}

/// The latency scenario's direct path: the scenario's streamed request sent
/// straight to the upstream, `concurrency` at a time, each on its own
/// kept-alive connection (as the worker's libcurl keeps its connections).
/// A small poll(2) client rather than libcurl: nothing runs between the
/// kernel reporting bytes and the clock read, and it is the least any HTTP
/// client can cost, so the direct figures are a floor and what chatqueue
/// adds is not understated. TCP_NODELAY like libcurl.
final class DirectStreamClient {
    private struct Connection {
        var descriptor: Int32 = -1
        var request: Int?
        var reader = SSEResponseReader()
    }

    private let endpoint: DirectEndpoint
    private let address: in_addr
    private let requestBytes: [UInt8]
    private let expectedChunks: Int
    private var connections: [Connection]
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// Requests whose response had every chunk and `[DONE]`.
    private(set) var completed = 0
    /// Requests that failed: refused, cut off, malformed, a wrong chunk count.
    private(set) var failed = 0
    /// The first failure, for the log.
    private(set) var firstFailure: String?

    init(endpoint: DirectEndpoint, body: [UInt8], expectedChunks: Int, concurrency: Int) throws(BenchError) {
        guard let address = DirectEndpoint.ipv4(endpoint.host) else { throw BenchError("bad upstream host") }
        self.endpoint = endpoint
        self.address = address
        self.requestBytes = endpoint.request(body: body)
        self.expectedChunks = expectedChunks
        self.connections = Array(repeating: Connection(), count: concurrency)
    }

    deinit {
        for connection in connections where connection.descriptor >= 0 { close(connection.descriptor) }
    }

    /// Sends requests `indices`, keeping every connection busy, and books
    /// each chunk in `timings` when poll reports its bytes, before reading them.
    func run(_ indices: Range<Int>, timings: inout ChunkTimings, idleTimeout: Double) throws(BenchError) {
        var next = indices.lowerBound
        var pollSet: [pollfd] = []
        var slotOfEntry: [Int] = []
        var lastProgress = MonotonicClock.now()
        while true {
            for slot in connections.indices where connections[slot].request == nil && next < indices.upperBound {
                start(next, on: slot, timings: &timings)
                next += 1
            }
            pollSet.removeAll(keepingCapacity: true)
            slotOfEntry.removeAll(keepingCapacity: true)
            for slot in connections.indices where connections[slot].request != nil {
                pollSet.append(pollfd(fd: connections[slot].descriptor, events: Int16(POLLIN), revents: 0))
                slotOfEntry.append(slot)
            }
            if pollSet.isEmpty { return }
            let ready: Int32
            do {
                ready = try systemCall("poll") { poll(&pollSet, nfds_t(pollSet.count), 1000) }
            } catch {
                throw BenchError("direct path: \(error)")
            }
            // The arrival time of everything this poll reported.
            let arrival = MonotonicClock.now()
            if ready == 0 {
                if Double(arrival &- lastProgress) / 1e9 > idleTimeout {
                    for slot in connections.indices where connections[slot].request != nil {
                        fail(slot, "no bytes for \(idleTimeout) s")
                    }
                    next = indices.upperBound
                }
                continue
            }
            lastProgress = arrival
            for (entry, slot) in slotOfEntry.enumerated() where pollSet[entry].revents != 0 {
                receive(on: slot, at: arrival, timings: &timings)
            }
        }
    }

    private func start(_ request: Int, on slot: Int, timings: inout ChunkTimings) {
        if connections[slot].descriptor < 0 {
            do {
                connections[slot].descriptor = try connect()
            } catch {
                connections[slot].request = request
                fail(slot, "\(error)")
                return
            }
        }
        connections[slot].request = request
        connections[slot].reader = SSEResponseReader()
        timings.sent(request, at: MonotonicClock.now())
        let descriptor = connections[slot].descriptor
        let sent = requestBytes.withUnsafeBytes { bytes in
            // A few hundred bytes into an empty socket buffer: one blocking send.
            send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
        }
        if sent != requestBytes.count { fail(slot, "send: \(SystemError.reason(for: errno))") }
    }

    private func receive(on slot: Int, at arrival: UInt64, timings: inout ChunkTimings) {
        guard let request = connections[slot].request else { return }
        let descriptor = connections[slot].descriptor
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if count < 0 {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
            fail(slot, "recv: \(SystemError.reason(for: code))")
            return
        }
        do {
            if count == 0 {
                try connections[slot].reader.endOfInput()
                closeConnection(slot)
            } else {
                let chunks = try buffer.withUnsafeBytes { bytes throws(SSEResponseError) in
                    try connections[slot].reader.feed(UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
                }
                for _ in 0..<chunks { timings.chunk(request, at: arrival) }
            }
        } catch {
            fail(slot, "\(error)")
            return
        }
        let reader = connections[slot].reader
        guard reader.isComplete else { return }
        if reader.chunks == expectedChunks && reader.sawDone {
            completed += 1
        } else {
            failed += 1
            firstFailure = firstFailure ?? "\(reader.chunks) chunks (expected \(expectedChunks)), [DONE] \(reader.sawDone)"
        }
        connections[slot].request = nil
        if reader.closesConnection { closeConnection(slot) }
    }

    private func fail(_ slot: Int, _ reason: String) {
        failed += 1
        firstFailure = firstFailure ?? reason
        connections[slot].request = nil
        closeConnection(slot)
    }

    private func closeConnection(_ slot: Int) {
        if connections[slot].descriptor >= 0 { close(connections[slot].descriptor) }
        connections[slot].descriptor = -1
    }

    private func connect() throws(SystemError) -> Int32 {
        let descriptor = try systemCall("socket") { socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        var noDelay: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = endpoint.port.bigEndian
        socketAddress.sin_addr = address
        do {
            _ = try withUnsafePointer(to: &socketAddress) { pointer throws(SystemError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(SystemError) in
                    try systemCall("connect \(endpoint.host):\(endpoint.port)") {
                        Glibc.connect(descriptor, address, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        } catch {
            close(descriptor)
            throw error
        }
        return descriptor
    }
}
