#if canImport(Glibc)
import Glibc
#endif

/// Why a status or metrics file could not be written (or read).
public struct SupervisionFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `errno` value (`EINVAL` for a rejected path).
    public var code: Int32
    /// What failed, with the system's message for `code`.
    public var message: String
    /// The file concerned.
    public var path: String

    public init(code: Int32, message: String, path: String) {
        self.code = code
        self.message = message
        self.path = path
    }

    public var description: String { "\(path): \(message)" }

    /// An error for `errno` after the call named by `operation`.
    static func system(_ operation: String, code: Int32, path: String) -> SupervisionFileError {
        SupervisionFileError(code: code, message: "\(operation): \(systemMessage(code))", path: path)
    }

    static func systemMessage(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}

/// Replaces a file's content atomically: readers see the old content or the
/// new, never a partial write. The bytes go to `.<basename>.<pid>.tmp` in the
/// same directory (created exclusively), and the temporary file is
/// renamed over the target. The result is mode 0644 whatever the umask (the
/// unit's `UMask=0077` would make it 0600, unreadable to `chatqueue health` or
/// node_exporter running as other users); it holds no secrets.
enum AtomicFile {
    /// The temporary file used for `path`.
    static func temporaryPath(for path: String, processID: Int32 = getpid()) -> String {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let basename = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return directory + "." + basename + ".\(processID).tmp"
    }

    static func write(_ bytes: [UInt8], to path: String) throws(SupervisionFileError) {
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw SupervisionFileError(code: EINVAL, message: "not a file path", path: path)
        }
        let temporary = temporaryPath(for: path)
        let flags = O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC
        var descriptor = open(temporary, flags, 0o644)
        if descriptor < 0, errno == EEXIST {
            // Left by a process that had this pid and died mid-write (in a
            // container the pid is the same at every start): ours to replace.
            _ = unlink(temporary)
            descriptor = open(temporary, flags, 0o644)
        }
        guard descriptor >= 0 else { throw .system("open \(temporary)", code: errno, path: path) }
        do throws(SupervisionFileError) {
            defer { close(descriptor) }
            guard fchmod(descriptor, 0o644) == 0 else { throw .system("fchmod", code: errno, path: path) }
            // No fsync: the rename already keeps readers from half a file, and
            // the file is rewritten every few seconds; an fsync would block the loop.
            try writeAll(bytes, to: descriptor, path: path)
        } catch {
            _ = unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            _ = unlink(temporary)
            throw .system("rename to \(path)", code: code, path: path)
        }
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(SupervisionFileError) {
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                Glibc.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw .system("write", code: errno, path: path)
            }
            written += result
        }
    }

    /// The whole file; nil when it does not exist.
    static func read(_ path: String, limit: Int = 1 << 20) throws(SupervisionFileError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw .system("open", code: errno, path: path)
        }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while contents.count < limit {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .system("read", code: errno, path: path)
            }
            if count == 0 { break }
            contents.append(contentsOf: buffer[0..<count])
        }
        return contents
    }
}
