#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file couldn't be read, in the system's words.
struct FileReadError: Error {
    /// The `errno` value, or 0 for problems found after reading.
    var code: Int32
    var reason: String

    var isNotFound: Bool { code == ENOENT }
}

enum FileReading {
    /// Reads a whole file synchronously (settings load before anything runs).
    ///
    /// Stops with an error past `limit` bytes, so that pointing a `*_file` key at
    /// something like `/dev/zero` fails instead of hanging.
    static func contents(ofFile path: String, limit: Int) throws(FileReadError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw systemError() }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw systemError()
            }
            if count == 0 { return contents }
            contents.append(contentsOf: chunk[..<count])
            if contents.count > limit {
                throw FileReadError(code: 0, reason: "larger than \(limit) bytes")
            }
        }
    }

    private static func systemError() -> FileReadError {
        let code = errno
        return FileReadError(code: code, reason: String(cString: strerror(code)))
    }
}
