#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads and writes for small files (settings, secrets, the status
/// file, /proc): synchronous, bounded, every call checked.
public enum FileIO {
    /// The file's bytes, or an error past `limit` bytes (EFBIG), so that a
    /// path like `/dev/zero` fails instead of filling memory.
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
            if contents.count > limit { throw SystemError(call: "read \(path): larger than \(limit) bytes", errno: EFBIG) }
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
}
