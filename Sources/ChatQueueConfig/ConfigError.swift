/// A configuration problem, naming the dotted key it concerns.
///
/// `key` is a dotted configuration key (`worker.concurrency`), or `config` for a
/// problem with the configuration file as a whole (missing, unreadable, not YAML).
/// Messages never contain secret values.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The dotted key the problem concerns, or `config` for the file as a whole.
    public var key: String

    /// What is wrong, usually "expected …, got …".
    public var message: String

    /// Creates an error about `key`.
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "config error: \(key): \(message)" }
}

extension ConfigError {
    /// The key used for problems with the configuration file as a whole.
    public static let fileKey = "config"
}
