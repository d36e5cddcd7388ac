import ChatQueueSystem

/// Writes the status file (see ``WorkerStatus``), atomically, as one JSON line.
public final class StatusFileWriter {
    /// The status file.
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// Replaces the file's content with `status` (JSON and a newline).
    public func write(_ status: WorkerStatus) throws(SystemError) {
        var bytes = status.json()
        bytes.append(UInt8(ascii: "\n"))
        try FileIO.replace(path, with: bytes)
    }

    /// The file name used in the runtime directory or the working directory.
    public static let fileName = "status.json"

    /// Where the status file goes when `status.file` is empty:
    /// `$RUNTIME_DIRECTORY/status.json` under systemd (`RuntimeDirectory=`; the
    /// first one when several are listed, colon-separated), else
    /// `./chatqueue-status.json`.
    public static func defaultPath(environment: [String: String]) -> String {
        if let directories = environment["RUNTIME_DIRECTORY"],
            let first = directories.split(separator: ":", omittingEmptySubsequences: true).first
        {
            return first.hasSuffix("/") ? first + fileName : first + "/" + fileName
        }
        return "./chatqueue-status.json"
    }

    /// The status file to use: `configured` (`status.file`) unless empty or nil,
    /// else ``defaultPath(environment:)``.
    public static func path(configured: String?, environment: [String: String]) -> String {
        if let configured, !configured.isEmpty { return configured }
        return defaultPath(environment: environment)
    }
}
