import ChatQueueSystem
import ChatQueueConfig
import ChatQueueCore
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes each log message as one line on standard error, as text or JSON.
///
/// text: `2026-11-27T14:03:05.123Z info chatqueue: message correlation.id=x request.id=abc`
/// (metadata sorted by key; values with spaces, quotes, `=` or control characters quoted).
///
/// json: `{"ts":"2026-11-27T14:03:05.123Z","level":"info","label":"chatqueue","msg":"message","request.id":"abc"}`
/// (metadata keys as they are, dotted; one that collides with a field is written as
/// `metadata.<key>`).
///
/// Each line is written with a single write(2) on file descriptor 2, so lines from
/// several threads or processes sharing stderr (journald, a pipe) don't interleave.
public struct StderrLogHandler: LogHandler {
    public let label: String
    public let format: LogFormat
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init(label: String, format: LogFormat, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.metadataProvider = LoggingSystem.metadataProvider
    }

    /// Makes every `Logger` write to stderr in `format`, from `level` up.
    /// Call once, at startup (swift-log allows a single bootstrap per process).
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            StderrLogHandler(label: label, format: format, level: level)
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = formattedLine(
            timestamp: Self.timestamp(),
            level: event.level,
            message: event.message.description,
            metadata: effectiveMetadata(event)
        )
        Self.writeToStandardError(line)
    }

    /// Handler metadata, overridden by the provider's, overridden by the message's
    /// (swift-log's usual order), plus the error if one was logged.
    private func effectiveMetadata(_ event: LogEvent) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, provided in provided }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, explicit in explicit }
        }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        return merged
    }

    /// One complete line, newline included.
    func formattedLine(timestamp: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        switch format {
        case .text:
            var line = "\(timestamp) \(level.rawValue) \(label): \(TextEscaping.singleLine(message))"
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
                line += " " + key + "=" + TextEscaping.quotedIfNeeded(Self.text(of: value))
            }
            return line + "\n"
        case .json:
            var line = "{\"ts\":" + JSONEscaping.string(timestamp)
            line += ",\"level\":" + JSONEscaping.string(level.rawValue)
            line += ",\"label\":" + JSONEscaping.string(label)
            line += ",\"msg\":" + JSONEscaping.string(message)
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
                let name = Self.jsonFields.contains(key) ? "metadata." + key : key
                line += "," + JSONEscaping.string(name) + ":" + JSONEscaping.value(value)
            }
            return line + "}\n"
        }
    }

    /// The fields every JSON line has; metadata may not replace them.
    private static let jsonFields: Set<String> = ["ts", "level", "label", "msg"]

    private static func text(of value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: value.description
        }
    }

    /// The current UTC time as `2026-11-27T14:03:05.123Z`.
    static func timestamp() -> String {
        RFC3339.string(unixMilliseconds: WallClock.unixMilliseconds())
    }

    /// Writes `line` with one write(2). Only a short write (possible on a full pipe)
    /// makes it write the rest; a failed write drops the line, since there is
    /// nowhere left to report it (EBADF included: a parent may close stderr).
    private static func writeToStandardError(_ line: String) {
        var line = line
        line.withUTF8 { buffer in
            var remaining = UnsafeRawBufferPointer(buffer)
            while !remaining.isEmpty {
                guard
                    let written = try? systemCall(
                        "write stderr", allowing: EBADF, { write(STDERR_FILENO, remaining.baseAddress, remaining.count) })
                else { return }
                remaining = UnsafeRawBufferPointer(rebasing: remaining[written...])
            }
        }
    }

    /// Keeps text-format lines to one line each and their `key=value` pairs parseable.
    private enum TextEscaping {
        /// `text` with newlines, tabs and other control characters escaped (`\n`, `\t`, `\u{1B}`).
        static func singleLine(_ text: String) -> String {
            guard text.unicodeScalars.contains(where: isControl) else { return text }
            var result = ""
            for scalar in text.unicodeScalars {
                result += isControl(scalar) ? escaped(scalar) : String(scalar)
            }
            return result
        }

        /// `value` as is when it's a plain token, else double-quoted with `"` and `\` escaped.
        static func quotedIfNeeded(_ value: String) -> String {
            let needsQuotes =
                value.isEmpty
                || value.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || isControl($0) }
            guard needsQuotes else { return value }
            var result = "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": result += "\\\""
                case "\\": result += "\\\\"
                case _ where isControl(scalar): result += escaped(scalar)
                default: result.unicodeScalars.append(scalar)
                }
            }
            return result + "\""
        }

        private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
            scalar.value < 0x20 || scalar.value == 0x7F
        }

        private static func escaped(_ scalar: Unicode.Scalar) -> String {
            switch scalar {
            case "\n": "\\n"
            case "\r": "\\r"
            case "\t": "\\t"
            default: "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
    }

    /// JSON text for log lines, escaped per RFC 8259 (no Foundation encoder needed).
    private enum JSONEscaping {
        /// `text` as a JSON string literal (ChatQueueCore's serializer, RFC 8259).
        static func string(_ text: String) -> String {
            JSONValue.string(text).serializedString()
        }

        /// A metadata value: strings as strings, arrays and dictionaries as JSON arrays and objects.
        static func value(_ value: Logger.Metadata.Value) -> String {
            switch value {
            case .string(let text): return string(text)
            case .stringConvertible(let convertible): return string(convertible.description)
            case .array(let values): return "[" + values.map(Self.value).joined(separator: ",") + "]"
            case .dictionary(let dictionary):
                let members = dictionary.sorted { $0.key < $1.key }.map { string($0.key) + ":" + Self.value($0.value) }
                return "{" + members.joined(separator: ",") + "}"
            }
        }
    }
}

extension Logger.Level {
    /// The swift-log level with the same name as a configured `log.level`.
    public init(_ level: LogLevel) {
        switch level {
        case .trace: self = .trace
        case .debug: self = .debug
        case .info: self = .info
        case .notice: self = .notice
        case .warning: self = .warning
        case .error: self = .error
        case .critical: self = .critical
        }
    }
}
