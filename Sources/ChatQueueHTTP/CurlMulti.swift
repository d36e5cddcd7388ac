import CCurl

/// Watches libcurl's sockets and timer for a `CurlMulti` (the worker's event
/// loop). Both calls arrive from inside `CurlMulti` calls, on the loop thread.
public protocol CurlSocketWatcher: AnyObject {
    /// Start, change or stop watching `socket`; neither readable nor
    /// writable means libcurl is done with it (it may close it next).
    func curlMulti(_ multi: CurlMulti, watch socket: Int32, readable: Bool, writable: Bool)
    /// libcurl wants `timeoutAction()` after `milliseconds` (0: as soon as
    /// possible), or no longer (nil). Replaces any earlier timer.
    func curlMulti(_ multi: CurlMulti, timerIn milliseconds: Int?)
}

/// The multi handle: runs every upstream transfer of the worker on the event
/// loop thread, driven by socket events (`curl_multi_socket_action`). libcurl
/// tells its `watcher` which sockets to watch and when its timer is due, so
/// the cost of an event does not grow with the number of open transfers
/// (`curl_multi_perform` and `curl_multi_poll` visit them all on every call).
public final class CurlMulti {
    private let multi: UnsafeMutableRawPointer
    /// Transfers added and not yet removed, by easy handle; the multi handle
    /// only knows raw pointers, so this keeps the objects alive.
    private var running: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    /// Hears about sockets and the timer; set before the first `add`.
    public weak var watcher: CurlSocketWatcher?

    public init(maxConnections: Int) {
        Curl.globalInit()
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init: out of memory") }
        self.multi = multi
        // Keep enough idle connections for every concurrent request to reuse one.
        check(cq_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(maxConnections, 8)), "MAXCONNECTS")
        let me = Unmanaged.passUnretained(self).toOpaque()
        check(cq_curl_multi_setopt_socket_function(multi, curlSocketCallback), "SOCKETFUNCTION")
        check(cq_curl_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, me), "SOCKETDATA")
        check(cq_curl_multi_setopt_timer_function(multi, curlTimerCallback), "TIMERFUNCTION")
        check(cq_curl_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, me), "TIMERDATA")
    }

    deinit {
        watcher = nil
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

    /// `socket` is ready: libcurl does the I/O of the transfer(s) on it;
    /// delegates are called from here.
    public func socketAction(_ socket: Int32, readable: Bool, writable: Bool, failed: Bool) throws(CurlError) {
        var mask: Int32 = 0
        if readable { mask |= CURL_CSELECT_IN }
        if writable { mask |= CURL_CSELECT_OUT }
        if failed { mask |= CURL_CSELECT_ERR }
        var stillRunning: Int32 = 0
        let code = curl_multi_socket_action(multi, socket, mask, &stillRunning)
        guard code == CURLM_OK else { throw CurlError.multi(code, "curl_multi_socket_action") }
    }

    /// The timer the watcher was given is due: libcurl starts new transfers
    /// and handles its own timeouts.
    public func timeoutAction() throws(CurlError) {
        var stillRunning: Int32 = 0
        let code = curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &stillRunning)
        guard code == CURLM_OK else { throw CurlError.multi(code, "curl_multi_socket_action(timeout)") }
    }

    /// Transfers that finished since the last call, with their result; they
    /// are removed from the multi handle.
    public func takeCompleted() -> [(CurlTransfer, TransferResult)] {
        var done: [(CurlTransfer, TransferResult)] = []
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let result = cq_curl_msg_result(message)
            if let transfer = running.removeValue(forKey: easy) {
                curl_multi_remove_handle(multi, easy)
                done.append((transfer, TransferResult(result)))
            }
        }
        return done
    }

    fileprivate func socketChanged(_ socket: Int32, what: Int32) {
        // CURL_POLL_IN 1, CURL_POLL_OUT 2, CURL_POLL_INOUT 3, CURL_POLL_REMOVE 4 (neither bit).
        watcher?.curlMulti(
            self, watch: socket, readable: what & CURL_POLL_IN != 0, writable: what & CURL_POLL_OUT != 0)
    }

    fileprivate func timerChanged(_ milliseconds: Int) {
        watcher?.curlMulti(self, timerIn: milliseconds < 0 ? nil : milliseconds)
    }

    /// Options are constants set once: a failure is a programming error.
    private func check(_ code: CURLMcode, _ option: StaticString) {
        precondition(code == CURLM_OK, "curl_multi_setopt \(option): \(code)")
    }
}

private func curlSocketCallback(
    _ easy: UnsafeMutableRawPointer?, _ socket: curl_socket_t, _ what: Int32, _ userp: UnsafeMutableRawPointer?,
    _ socketp: UnsafeMutableRawPointer?
) -> Int32 {
    guard let userp else { return -1 }  // never: SOCKETDATA is set with the callback
    Unmanaged<CurlMulti>.fromOpaque(userp).takeUnretainedValue().socketChanged(socket, what: what)
    return 0
}

private func curlTimerCallback(_ multi: UnsafeMutableRawPointer?, _ milliseconds: Int, _ userp: UnsafeMutableRawPointer?) -> Int32 {
    guard let userp else { return -1 }  // never: TIMERDATA is set with the callback
    Unmanaged<CurlMulti>.fromOpaque(userp).takeUnretainedValue().timerChanged(milliseconds)
    return 0
}
