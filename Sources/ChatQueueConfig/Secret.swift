/// A sensitive string, such as an API key or a broker password.
///
/// Every textual form of a secret (`description`, `debugDescription`, reflection)
/// is `<redacted>`, so interpolating settings into a log line or dumping them never
/// leaks the value. Read ``value`` only where the secret is actually sent.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The secret itself.
    public let value: String

    /// Wraps a sensitive string.
    public init(_ value: String) {
        self.value = value
    }

    /// What every textual form of a secret shows instead of its value.
    public static let redactedText = "<redacted>"

    public var description: String { Self.redactedText }

    public var debugDescription: String { Self.redactedText }

    // `dump()` and other Mirror-based printers would otherwise show `value`.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
