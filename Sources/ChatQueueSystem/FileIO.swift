#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads and writes for small files (settings, secrets, the status
/// file, /proc): synchronous, bounded, every call checked.
public enum FileIO {
    /// The file's bytes, or an error past `limit` bytes (EFBIG), so that a
    /// path like `/dev/zero` fails instead of hanging or filling memory.
    public static func read(_ path: String, limit: Int) throws(SystemError) -> [UInt8] {
        let descriptor = try systemCall("open \(path)") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = try systemCall("read \(path)") {
                chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            }
            if count == 0 { return contents }
            contents.append(contentsOf: chunk[..<count])
            if contents.count > limit { throw SystemError(call: "read \(path)", errno: EFBIG, detail: "larger than \(limit) bytes") }
        }
    }

    /// Writes all of `bytes` to a blocking descriptor.
    public static func writeAll(_ bytes: [UInt8], to descriptor: Int32, name: String) throws(SystemError) {
        var written = 0
        while written < bytes.count {
            written += try systemCall("write \(name)") {
                bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            }
        }
    }

    /// Replaces a file's content atomically: readers see the old content or
    /// the new, never a partial write. The bytes go to `.<basename>.<pid>.tmp`
    /// in the same directory (created exclusively), which is renamed over the
    /// target. The result is mode 0644 whatever the umask (the unit's
    /// `UMask=0077` would make it 0600, unreadable to `chatqueue health` or
    /// node_exporter running as other users): use it only for files without
    /// secrets (the status file, metrics).
    public static func replace(_ path: String, with bytes: [UInt8]) throws(SystemError) {
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw SystemError(call: "write \(path)", errno: EINVAL, detail: "not a file path")
        }
        let temporary = temporaryPath(for: path)
        let flags = O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC
        let descriptor: Int32
        do {
            descriptor = try systemCall("open \(temporary)") { open(temporary, flags, 0o644) }
        } catch where error.errno == EEXIST {
            // Left by a process that had this pid and died mid-write (in a
            // container the pid is the same at every start): ours to replace.
            _ = unlink(temporary)
            descriptor = try systemCall("open \(temporary)") { open(temporary, flags, 0o644) }
        }
        do throws(SystemError) {
            defer { close(descriptor) }
            try systemCall("fchmod \(temporary)") { fchmod(descriptor, 0o644) }
            // No fsync: the rename already keeps readers from half a file, and
            // these files are rewritten every few seconds; an fsync would block the loop.
            try writeAll(bytes, to: descriptor, name: temporary)
            try systemCall("rename \(temporary) to \(path)") { rename(temporary, path) }
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }

    /// The temporary file `replace` writes before renaming it to `path`.
    public static func temporaryPath(for path: String, processID: Int32 = getpid()) -> String {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let basename = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return directory + "." + basename + ".\(processID).tmp"
    }
}
