import CCurl
import Testing

@testable import ChatQueueHTTP

#if canImport(Glibc)
import Glibc
#endif

/// libcurl's codes become `TransferResult`s inside ChatQueueHTTP: the table
/// of codes, and real transfers on 127.0.0.1 that end each way.
@Suite("Transfer results: libcurl's codes as Swift errors", .serialized)
struct TransferResultTests {
    @Test(
        "each libcurl code maps to the kind the worker acts on, with libcurl's words",
        arguments: [
            (CURLE_COULDNT_CONNECT, TransferError.Kind.couldNotConnect),
            (CURLE_COULDNT_RESOLVE_HOST, .couldNotConnect),
            (CURLE_COULDNT_RESOLVE_PROXY, .couldNotConnect),
            (CURLE_SSL_CONNECT_ERROR, .couldNotConnect),
            (CURLE_PEER_FAILED_VERIFICATION, .couldNotConnect),
            (CURLE_OPERATION_TIMEDOUT, .timedOut),
            (CURLE_RECV_ERROR, .other),
            (CURLE_WRITE_ERROR, .other),
            (CURLE_GOT_NOTHING, .other),
            (CURLE_PARTIAL_FILE, .other),
        ])
    func mapping(code: CURLcode, kind: TransferError.Kind) {
        let message = String(cString: curl_easy_strerror(code))
        #expect(TransferResult(code) == .failed(TransferError(kind: kind, message: message)))
    }

    @Test("CURLE_OK is a completed transfer")
    func completed() {
        #expect(TransferResult(CURLE_OK) == .completed)
    }

    @Test("a transfer to a closed local port fails to connect", .timeLimit(.minutes(1)))
    func closedPort() throws {
        let port = try LocalListener.unusedPort()
        let driver = TransferDriver()
        let result = try driver.run(url: "http://127.0.0.1:\(port)/chat/completions", connectTimeout: 5)
        guard case .failed(let error) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(error.kind == .couldNotConnect)
        #expect(error.message == String(cString: curl_easy_strerror(CURLE_COULDNT_CONNECT)))
    }

    @Test("a listener whose accept queue is full never answers: the connect timeout ends the transfer", .timeLimit(.minutes(1)))
    func connectTimeout() throws {
        // Backlog 0: the kernel completes one handshake (ours) and drops every other SYN.
        let listener = try LocalListener(backlog: 0)
        let filler = try listener.connectClient()
        defer { close(filler) }
        let driver = TransferDriver()
        let result = try driver.run(url: "http://127.0.0.1:\(listener.port)/", connectTimeout: 0.2)
        #expect(result == .failed(TransferError(CURLE_OPERATION_TIMEDOUT)))
        if case .failed(let error) = result { #expect(error.kind == .timedOut) }
    }

    @Test("a server that closes without answering is another failure, with libcurl's message", .timeLimit(.minutes(1)))
    func closedWithoutAnswer() throws {
        let listener = try LocalListener(backlog: 8)
        let driver = TransferDriver()
        driver.onTurn = { listener.acceptAndClose() }
        let result = try driver.run(url: "http://127.0.0.1:\(listener.port)/", connectTimeout: 5)
        guard case .failed(let error) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(error.kind == .other)
        #expect(!error.message.isEmpty)
    }

    @Test("a delegate that aborts on the body ends the transfer as another failure", .timeLimit(.minutes(1)))
    func delegateAbort() throws {
        let listener = try LocalListener(backlog: 8)
        let driver = TransferDriver()
        driver.decision = .abort
        driver.onTurn = { listener.answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok") }
        let result = try driver.run(url: "http://127.0.0.1:\(listener.port)/", connectTimeout: 5)
        #expect(result == .failed(TransferError(CURLE_WRITE_ERROR)))
    }

    @Test("a whole response is a completed transfer", .timeLimit(.minutes(1)))
    func wholeResponse() throws {
        let listener = try LocalListener(backlog: 8)
        let driver = TransferDriver()
        driver.onTurn = { listener.answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok") }
        let result = try driver.run(url: "http://127.0.0.1:\(listener.port)/", connectTimeout: 5)
        #expect(result == .completed)
        #expect(driver.received == Array("ok".utf8))
    }
}

/// Runs one transfer on a `CurlMulti` the way the worker's loop does
/// (socket and timer callbacks, `socketAction`, `takeCompleted`), waiting in
/// poll(2) instead of epoll.
private final class TransferDriver: CurlSocketWatcher, CurlTransferDelegate {
    private var sockets: [Int32: (readable: Bool, writable: Bool)] = [:]
    private var timerDue: UInt64?
    var decision = CurlWriteDecision.consumed
    var received: [UInt8] = []
    /// Called every turn: the test's server side.
    var onTurn: () -> Void = {}

    func run(url: String, connectTimeout: Double) throws -> TransferResult {
        let multi = CurlMulti(maxConnections: 1)
        multi.watcher = self
        let transfer = CurlTransfer(
            options: CurlRequestOptions(url: url, connectTimeout: connectTimeout),
            headers: CurlHeaderList(["Content-Type: application/json"]))
        transfer.delegate = self
        [UInt8]("{}".utf8).withUnsafeBytes { transfer.prepare(body: $0) }
        try multi.add(transfer)
        while true {
            onTurn()
            if let (_, result) = multi.takeCompleted().first { return result }
            var descriptors = sockets.map { socket, wants in
                pollfd(
                    fd: socket, events: (wants.readable ? Int16(POLLIN) : 0) | (wants.writable ? Int16(POLLOUT) : 0),
                    revents: 0)
            }
            _ = poll(&descriptors, nfds_t(descriptors.count), 10)
            for descriptor in descriptors where descriptor.revents != 0 {
                try multi.socketAction(
                    descriptor.fd, readable: descriptor.revents & Int16(POLLIN) != 0,
                    writable: descriptor.revents & Int16(POLLOUT) != 0,
                    failed: descriptor.revents & Int16(POLLERR | POLLHUP) != 0)
            }
            if let due = timerDue, now() >= due {
                timerDue = nil
                try multi.timeoutAction()
            }
        }
    }

    private func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    func curlMulti(_ multi: CurlMulti, watch socket: Int32, readable: Bool, writable: Bool) {
        if readable || writable { sockets[socket] = (readable, writable) } else { sockets[socket] = nil }
    }

    func curlMulti(_ multi: CurlMulti, timerIn milliseconds: Int?) {
        timerDue = milliseconds.map { now() + UInt64($0) * 1_000_000 }
    }

    func transfer(_ transfer: CurlTransfer, didReceiveHeaderLine line: UnsafeRawBufferPointer) {}

    func transfer(_ transfer: CurlTransfer, didReceive data: UnsafeRawBufferPointer) -> CurlWriteDecision {
        if decision == .consumed { received += data }
        return decision
    }
}

/// A TCP listener on 127.0.0.1 with a port of the kernel's choosing; its
/// accepting side runs on the test's thread, between the driver's turns.
private final class LocalListener {
    let descriptor: Int32
    let port: UInt16
    private var clients: [Int32] = []
    private var requests: [Int32: [UInt8]] = [:]

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(backlog: Int32) throws {
        (descriptor, port) = try Self.bound()
        guard listen(descriptor, backlog) == 0 else { throw Failure(description: "listen: errno \(errno)") }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        clients.forEach { close($0) }
        close(descriptor)
    }

    /// A port nothing listens on: bound once, then closed.
    static func unusedPort() throws -> UInt16 {
        let (descriptor, port) = try bound()
        close(descriptor)
        return port
    }

    private static func bound() throws -> (Int32, UInt16) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 ? getsockname(descriptor, pointer, &length) : -1
            }
        }
        guard status == 0 else {
            close(descriptor)
            throw Failure(description: "bind: errno \(errno)")
        }
        return (descriptor, UInt16(bigEndian: address.sin_port))
    }

    /// A blocking client connection to this listener.
    func connectClient() throws -> Int32 {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else {
            close(client)
            throw Failure(description: "connect: errno \(errno)")
        }
        return client
    }

    /// Accepts what is waiting and closes it at once, unanswered.
    func acceptAndClose() {
        while case let client = accept(descriptor, nil, nil), client >= 0 { close(client) }
    }

    /// Accepts, reads each request up to the end of its headers and body
    /// (the driver sends a two-byte body), then writes `response` and closes.
    func answer(_ response: String) {
        while case let client = accept(descriptor, nil, nil), client >= 0 {
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            clients.append(client)
            requests[client] = []
        }
        for client in clients where requests[client] != nil {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = read(client, &buffer, buffer.count)
            if count > 0 { requests[client, default: []] += buffer.prefix(count) }
            guard let request = requests[client], request.count >= 4,
                let end = request.indices.dropLast(3).first(where: { Array(request[$0..<$0 + 4]) == Array("\r\n\r\n".utf8) }),
                request.count >= end + 4 + 2
            else { continue }
            _ = response.utf8CString.withUnsafeBytes { write(client, $0.baseAddress, $0.count - 1) }
            requests[client] = nil
            shutdown(client, Int32(SHUT_WR))
        }
    }
}
