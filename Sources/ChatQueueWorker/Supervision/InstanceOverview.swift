import ChatQueueCore
import ChatQueueSystem

#if canImport(Glibc)
import Glibc
#endif

/// What `chatqueue status` shows: every worker instance on a machine, one
/// row each, from their status files. `rows` and the renderings are pure;
/// `discover` and `read` touch the file system.
public enum InstanceOverview {
    /// One instance as its status file says, with `chatqueue health`'s verdict.
    public struct Row: Sendable, Equatable {
        public var path: String
        public var instance: String
        public var state: String
        public var verdict: HealthVerdict
        public var inFlight: Int
        public var received: Int
        public var succeeded: Int
        public var failed: Int
        /// Each upstream's breaker, `name: state` or `name: open (reason)`.
        public var upstreams: [String]
        /// When a try last succeeded (Unix ms), if ever.
        public var lastSuccessAtUnixMilliseconds: Int64?
        /// Milliseconds since the file was written; nil when unreadable.
        public var ageMilliseconds: Int64?
    }

    /// The rows for `files` (path and contents; nil contents: missing), by path.
    public static func rows(
        _ files: [(path: String, contents: [UInt8]?)], nowUnixMilliseconds: Int64, maxAge: Double,
        isProcessAlive: (Int32) -> Bool
    ) -> [Row] {
        files.sorted { $0.path < $1.path }.map { file in
            let verdict = HealthCheck.evaluate(
                contents: file.contents, nowUnixMilliseconds: nowUnixMilliseconds, maxAge: maxAge,
                isProcessAlive: isProcessAlive)
            let document = file.contents.flatMap { try? JSONValue(parsing: $0) }
            func count(_ object: String, _ key: String) -> Int { document?[object]?[key]?.integerValue ?? 0 }
            let updated = document?["updated_at"]?.stringValue.flatMap(RFC3339.unixMilliseconds(parsing:))
            let upstreams = (document?["upstreams"]?.arrayValue ?? []).prefix(64).map { entry -> String in
                let name = TextExcerpt.make(entry["name"]?.stringValue ?? "?", limit: 64)
                let breaker = entry["breaker"]?.stringValue ?? "?"
                guard let reason = entry["breaker_reason"]?.stringValue else { return "\(name): \(breaker)" }
                return "\(name): \(breaker) (\(TextExcerpt.make(reason, limit: 64)))"
            }
            return Row(
                path: file.path,
                instance: TextExcerpt.make(document?["instance"]?.stringValue ?? "?", limit: 64),
                state: TextExcerpt.make(document?["state"]?.stringValue ?? "?", limit: 32),
                verdict: verdict,
                inFlight: count("requests", "in_flight"), received: count("requests", "received"),
                succeeded: count("requests", "succeeded"), failed: count("requests", "failed"),
                upstreams: Array(upstreams),
                lastSuccessAtUnixMilliseconds: document?["upstream"]?["last_success_at"]?.stringValue.flatMap(
                    RFC3339.unixMilliseconds(parsing:)),
                ageMilliseconds: updated.map { nowUnixMilliseconds &- $0 })
        }
    }

    /// Whether every row is healthy (and there is at least one).
    public static func allHealthy(_ rows: [Row]) -> Bool {
        !rows.isEmpty && rows.allSatisfy { $0.verdict.exitCode == 0 }
    }

    /// A fixed-width table, one line per instance, then a summary line.
    public static func table(_ rows: [Row], nowUnixMilliseconds: Int64) -> String {
        func seconds(_ milliseconds: Int64?) -> String {
            guard let milliseconds else { return "-" }
            return milliseconds < 10_000 ? "\(Double(milliseconds / 100) / 10) s" : "\(milliseconds / 1000) s"
        }
        let header = ["INSTANCE", "STATE", "HEALTH", "IN FLIGHT", "RECEIVED", "OK", "FAILED", "LAST SUCCESS", "AGE", "UPSTREAMS"]
        var lines = [header]
        for row in rows {
            let health = row.verdict.exitCode == 0 ? "healthy" : row.verdict.line
            let lastSuccess = row.lastSuccessAtUnixMilliseconds.map { seconds(nowUnixMilliseconds &- $0) + " ago" } ?? "never"
            lines.append([
                row.instance, row.state, health, "\(row.inFlight)", "\(row.received)", "\(row.succeeded)",
                "\(row.failed)", lastSuccess, seconds(row.ageMilliseconds),
                row.upstreams.isEmpty ? "-" : row.upstreams.joined(separator: ", "),
            ])
        }
        var widths = Array(repeating: 0, count: header.count)
        for line in lines { for (index, cell) in line.enumerated() { widths[index] = max(widths[index], cell.count) } }
        var text = ""
        for line in lines {
            let cells = line.enumerated().map { index, cell in
                index == line.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }
            text += cells.joined(separator: "  ") + "\n"
        }
        let unhealthy = rows.filter { $0.verdict.exitCode != 0 }.count
        text += "\(rows.count) instance\(rows.count == 1 ? "" : "s"), \(unhealthy) unhealthy\n"
        return text
    }

    /// The rows as one JSON document: `{"instances": [...], "healthy": bool}`.
    public static func json(_ rows: [Row]) -> JSONValue {
        let instances = rows.map { row -> JSONValue in
            .object(
                JSONObject([
                    ("path", .string(row.path)), ("instance", .string(row.instance)), ("state", .string(row.state)),
                    ("healthy", .bool(row.verdict.exitCode == 0)), ("health", .string(row.verdict.line)),
                    ("in_flight", .integer(row.inFlight)), ("received", .integer(row.received)),
                    ("succeeded", .integer(row.succeeded)), ("failed", .integer(row.failed)),
                    (
                        "last_success_at",
                        row.lastSuccessAtUnixMilliseconds.map { .string(RFC3339.string(unixMilliseconds: $0)) } ?? .null
                    ),
                    ("age_ms", row.ageMilliseconds.map { .integer(Int($0)) } ?? .null),
                    ("upstreams", .array(row.upstreams.map { .string($0) })),
                ]))
        }
        return .object(JSONObject([("instances", .array(instances)), ("healthy", .bool(allHealthy(rows)))]))
    }

    /// The status files under `directories`: `DIR/status.json`, and
    /// `DIR/chatqueue-worker*/status.json` (systemd's runtime directories
    /// under /run), in name order.
    public static func discover(in directories: [String]) -> [String] {
        var paths: [String] = []
        for directory in directories {
            let own = directory + "/status.json"
            if access(own, F_OK) == 0 { paths.append(own) }
            guard let stream = opendir(directory) else { continue }
            defer { closedir(stream) }
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name.hasPrefix("chatqueue-worker") else { continue }
                let path = directory + "/" + name + "/status.json"
                if access(path, F_OK) == 0 { paths.append(path) }
            }
        }
        return Array(Set(paths)).sorted()
    }

    /// Reads each file (at most 1 MiB; missing or unreadable: nil contents).
    public static func read(_ paths: [String]) -> [(path: String, contents: [UInt8]?)] {
        paths.map { path in (path, try? FileIO.read(path, limit: 1 << 20)) }
    }
}
