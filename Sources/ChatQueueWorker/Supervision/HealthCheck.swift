import ChatQueueSystem
import ChatQueueCore

#if canImport(Glibc)
import Glibc
#endif

/// What `chatqueue health` concludes from a status file.
public enum HealthVerdict: Sendable, Equatable {
    /// Fresh, running or degraded, and the process is alive.
    case healthy(WorkerState)
    /// Anything else, with a one-line reason.
    case unhealthy(reason: String)

    /// The line `chatqueue health` prints: `healthy: <state>` or the reason.
    public var line: String {
        switch self {
        case .healthy(let state): return "healthy: \(state.rawValue)"
        case .unhealthy(let reason): return reason
        }
    }

    /// 0 when healthy, else 1.
    public var exitCode: Int32 {
        if case .healthy = self { return 0 }
        return 1
    }
}

/// Judges a worker's health from its status file. `evaluate` is pure; `check`
/// reads the file and asks the kernel whether the pid exists.
public enum HealthCheck {
    /// The verdict on a status file's `contents` (nil: the file does not exist).
    ///
    /// In this order, the first that applies:
    /// - `status file missing`;
    /// - `status file unreadable: <why>`: not JSON, or without a valid `state`,
    ///   `pid` or `updated_at`;
    /// - `state stopped`: the worker exited cleanly (its file stays behind);
    /// - `pid <n> gone`: the process died without saying so;
    /// - `status stale by <n> s`: `updated_at` is more than `maxAge` seconds old
    ///   (n is its age in whole seconds): the loop is stuck;
    /// - `state <state>` for starting, reconnecting and draining;
    /// - otherwise healthy (running or degraded).
    public static func evaluate(
        contents: [UInt8]?, nowUnixMilliseconds: Int64, maxAge: Double, isProcessAlive: (Int32) -> Bool
    ) -> HealthVerdict {
        guard let contents else { return .unhealthy(reason: "status file missing") }
        let document: JSONValue
        do {
            document = try JSONValue(parsing: contents)
        } catch {
            return .unhealthy(reason: "status file unreadable: \(error)")
        }
        guard let stateText = document["state"]?.stringValue else {
            return .unhealthy(reason: "status file unreadable: no state")
        }
        guard let state = WorkerState(rawValue: stateText) else {
            return .unhealthy(reason: "status file unreadable: unknown state \(String(reflecting: stateText))")
        }
        guard let pidNumber = document["pid"]?.integerValue, let pid = Int32(exactly: pidNumber), pid > 0 else {
            return .unhealthy(reason: "status file unreadable: no pid")
        }
        guard let updatedText = document["updated_at"]?.stringValue,
            let updatedAt = RFC3339.unixMilliseconds(parsing: updatedText)
        else {
            return .unhealthy(reason: "status file unreadable: no updated_at")
        }
        if state == .stopped { return .unhealthy(reason: "state stopped") }
        if !isProcessAlive(pid) { return .unhealthy(reason: "pid \(pid) gone") }
        let ageMilliseconds = nowUnixMilliseconds &- updatedAt
        if Double(ageMilliseconds) > maxAge * 1000 {
            return .unhealthy(reason: "status stale by \(ageMilliseconds / 1000) s")
        }
        switch state {
        case .running, .degraded: return .healthy(state)
        case .starting, .reconnecting, .draining, .stopped: return .unhealthy(reason: "state \(state.rawValue)")
        }
    }

    /// Reads the status file at `path` and evaluates it against the clock and
    /// the process table (`kill(pid, 0)`).
    public static func check(statusFile path: String, maxAge: Double) -> HealthVerdict {
        let contents: [UInt8]?
        do {
            contents = try FileIO.read(path, limit: 1 << 20)
        } catch where error.isNotFound {
            contents = nil
        } catch {
            return .unhealthy(reason: "status file unreadable: \(error.reason)")
        }
        return evaluate(
            contents: contents, nowUnixMilliseconds: WallClock.unixMilliseconds(), maxAge: maxAge,
            isProcessAlive: processExists)
    }

    /// Whether a process with this pid exists (EPERM: it exists but is another user's).
    public static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}
