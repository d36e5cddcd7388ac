import CCurl

/// The multi handle: runs every upstream transfer of the worker on the event
/// loop thread, and is where that thread waits (`poll`), with the AMQP
/// sockets as extra descriptors.
public final class CurlMulti {
    private let multi: UnsafeMutableRawPointer
    /// Transfers added and not yet removed, by easy handle; the multi handle
    /// only knows raw pointers, so this keeps the objects alive.
    private var running: [UnsafeMutableRawPointer: CurlTransfer] = [:]

    public init(maxConnections: Int) {
        Curl.globalInit()
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init: out of memory") }
        self.multi = multi
        // Keep enough idle connections for every concurrent request to reuse one.
        let code = cq_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(maxConnections, 8))
        precondition(code == CURLM_OK, "CURLMOPT_MAXCONNECTS")
    }

    deinit {
        for easy in running.keys { curl_multi_remove_handle(multi, easy) }
        running.removeAll()
        curl_multi_cleanup(multi)
    }

    public var count: Int { running.count }

    public func add(_ transfer: CurlTransfer) throws(CurlError) {
        let code = curl_multi_add_handle(multi, transfer.easy)
        guard code == CURLM_OK else { throw CurlError.multi(code, "curl_multi_add_handle") }
        running[transfer.easy] = transfer
    }

    /// Stops a transfer (if still running) and forgets it. Not from inside a callback.
    public func remove(_ transfer: CurlTransfer) {
        guard running.removeValue(forKey: transfer.easy) != nil else { return }
        curl_multi_remove_handle(multi, transfer.easy)
    }

    /// Lets libcurl do whatever I/O is ready; delegates are called from here.
    public func perform() throws(CurlError) {
        var stillRunning: Int32 = 0
        let code = curl_multi_perform(multi, &stillRunning)
        guard code == CURLM_OK else { throw CurlError.multi(code, "curl_multi_perform") }
    }

    /// Waits until a transfer or one of `extraDescriptors` needs attention, or
    /// `timeoutMilliseconds` pass. `revents` of the extra descriptors tell which were ready.
    public func poll(extraDescriptors: inout [curl_waitfd], timeoutMilliseconds: Int32) throws(CurlError) {
        var ready: Int32 = 0
        let count = UInt32(extraDescriptors.count)
        let code = extraDescriptors.withUnsafeMutableBufferPointer { buffer in
            curl_multi_poll(multi, buffer.baseAddress, count, timeoutMilliseconds, &ready)
        }
        guard code == CURLM_OK else { throw CurlError.multi(code, "curl_multi_poll") }
    }

    /// Transfers that finished since the last call, with their result; they
    /// are removed from the multi handle.
    public func takeCompleted() -> [(CurlTransfer, CURLcode)] {
        var done: [(CurlTransfer, CURLcode)] = []
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let result = cq_curl_msg_result(message)
            if let transfer = running.removeValue(forKey: easy) {
                curl_multi_remove_handle(multi, easy)
                done.append((transfer, result))
            }
        }
        return done
    }
}

extension curl_waitfd {
    /// A descriptor to watch for input.
    public static func readable(_ fd: Int32) -> curl_waitfd {
        curl_waitfd(fd: fd, events: Int16(CURL_WAIT_POLLIN), revents: 0)
    }

    public var isReadable: Bool { (revents & Int16(CURL_WAIT_POLLIN)) != 0 }

    public var isWritable: Bool { (revents & Int16(CURL_WAIT_POLLOUT)) != 0 }
}
