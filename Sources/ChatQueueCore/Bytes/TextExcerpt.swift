/// Outside text (an upstream body, an error detail) made fit for a log line,
/// the status file or systemd's `STATUS=`: one line, printable, bounded. Pure.
public enum TextExcerpt {
    /// The default bound, in UTF-8 bytes.
    public static let defaultLimit = 300

    /// `bytes` as at most `limit` UTF-8 bytes of one line: invalid UTF-8
    /// becomes U+FFFD, control characters and runs of whitespace one space,
    /// leading and trailing whitespace is dropped, and a cut text ends in
    /// `...` (counted in the limit). Never splits a character.
    public static func make(_ bytes: some Collection<UInt8>, limit: Int = defaultLimit) -> String {
        let limit = min(max(limit, 3), 1 << 20)
        // Four input bytes per output byte are plenty (whitespace runs collapse).
        let window = bytes.prefix(limit * 4)
        var scalars: [Unicode.Scalar] = []
        var size = 0
        // The most scalars that leave room for "...", where a text that doesn't fit is cut.
        var cutCount = 0
        var pendingSpace = false
        for scalar in String(decoding: window, as: UTF8.self).unicodeScalars {
            if isBlank(scalar) {
                pendingSpace = !scalars.isEmpty
                continue
            }
            let added = (pendingSpace ? 1 : 0) + UTF8.width(scalar)
            if size + added > limit { return text(scalars.prefix(cutCount)) + "..." }
            if pendingSpace { scalars.append(" ") }
            scalars.append(scalar)
            size += added
            pendingSpace = false
            if size <= limit - 3 { cutCount = scalars.count }
        }
        return window.count < bytes.count ? text(scalars.prefix(cutCount)) + "..." : text(scalars[...])
    }

    private static func text(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// `text` bounded the same way.
    public static func make(_ text: String, limit: Int = defaultLimit) -> String {
        make(text.utf8, limit: limit)
    }

    private static func isBlank(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator, .spaceSeparator, .format: return true
        default: return false
        }
    }
}
