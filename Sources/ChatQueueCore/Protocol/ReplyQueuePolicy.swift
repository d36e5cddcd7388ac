/// One entry of `replies.allowed_queues`: an exact queue name, a prefix
/// (written with a trailing `*`), or `*` alone for any queue.
///
/// Names are compared as UTF-8 bytes, as RabbitMQ compares them: Swift's
/// `==` and `hasPrefix` treat canonically equivalent strings (`é` and `e`
/// plus a combining accent) as equal, but they name different queues.
public enum ReplyQueuePattern: Sendable, Equatable, CustomStringConvertible {
    case exact(String)
    /// Names starting with these bytes; `billing.replies.` does not match `billing.replies-x`.
    case prefix(String)
    /// Any queue: the explicit opt-out of the requester boundary.
    case any

    /// Why an entry of the setting is refused.
    public struct Invalid: Error, Sendable, Equatable {
        public var reason: String
    }

    /// An AMQP short string, which a queue name is, holds at most 255 bytes.
    public static let maxNameBytes = 255

    /// Parses one entry as written in the setting (already trimmed of surrounding whitespace).
    public init(parsing text: String) throws(Invalid) {
        if text == "*" {
            self = .any
            return
        }
        guard !text.isEmpty else { throw Invalid(reason: "an empty entry") }
        // Queue names may hold spaces, but here one is almost always a list written wrong ("a b" for "a, b").
        guard !text.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F })
        else { throw Invalid(reason: "whitespace or a control character inside an entry") }
        let stars = text.utf8.count { $0 == UInt8(ascii: "*") }
        if stars == 0 {
            guard text.utf8.count <= Self.maxNameBytes else {
                throw Invalid(reason: "a name longer than \(Self.maxNameBytes) bytes")
            }
            self = .exact(text)
            return
        }
        guard stars == 1, text.utf8.last == UInt8(ascii: "*") else {
            throw Invalid(reason: "a * anywhere but at the end (only prefixes such as billing.replies.* are supported)")
        }
        let prefix = String(text.dropLast())
        // A prefix as long as a whole name could only match names AMQP can't carry.
        guard prefix.utf8.count < Self.maxNameBytes else {
            throw Invalid(reason: "a prefix of \(Self.maxNameBytes) bytes or more")
        }
        self = .prefix(prefix)
    }

    public func matches(_ name: String) -> Bool {
        switch self {
        case .exact(let exact): return name.utf8.elementsEqual(exact.utf8)
        case .prefix(let prefix): return name.utf8.starts(with: prefix.utf8)
        case .any: return true
        }
    }

    /// The entry as written in the setting.
    public var description: String {
        switch self {
        case .exact(let exact): return exact
        case .prefix(let prefix): return prefix + "*"
        case .any: return "*"
        }
    }
}

/// Which `reply_to` values a worker publishes replies to: the requester
/// boundary, so that anyone who may publish requests can't aim replies (and
/// with them the worker's publish rights) at other services' queues.
///
/// Always allowed: RabbitMQ's direct reply-to and server-named queues
/// (`amq.gen-…`: only the broker creates names starting with `amq.`, and it
/// makes them unguessable), plus `replies.default_queue`. Anything else must
/// match `replies.allowed_queues`.
public struct ReplyQueuePolicy: Sendable, Equatable {
    /// `replies.allowed_queues`.
    public var allowed: [ReplyQueuePattern]
    /// `replies.default_queue`.
    public var defaultQueue: String?

    /// RabbitMQ direct reply-to (the broker rewrites `amq.rabbitmq.reply-to`
    /// into `amq.rabbitmq.reply-to.<channel key>` on delivery) and server-named queues.
    public static let alwaysAllowed: [ReplyQueuePattern] = [
        .exact("amq.rabbitmq.reply-to"), .prefix("amq.rabbitmq.reply-to."), .prefix("amq.gen-"),
    ]

    public init(allowed: [ReplyQueuePattern] = [], defaultQueue: String? = nil) {
        self.allowed = allowed
        self.defaultQueue = defaultQueue
    }

    /// Parses the entries of `replies.allowed_queues`; the first bad one is thrown with its text.
    public static func patterns(parsing entries: [String]) throws(InvalidEntry) -> [ReplyQueuePattern] {
        var patterns: [ReplyQueuePattern] = []
        for entry in entries {
            do {
                patterns.append(try ReplyQueuePattern(parsing: entry))
            } catch {
                throw InvalidEntry(entry: entry, reason: error.reason)
            }
        }
        return patterns
    }

    /// An entry of the setting that is refused, and why.
    public struct InvalidEntry: Error, Sendable, Equatable {
        public var entry: String
        public var reason: String
    }

    /// Whether replies may be published to `replyTo`.
    public func allows(_ replyTo: String) -> Bool {
        // Not a name AMQP can carry (never true of a name read from a message).
        guard !replyTo.isEmpty, replyTo.utf8.count <= ReplyQueuePattern.maxNameBytes else { return false }
        if let defaultQueue, replyTo.utf8.elementsEqual(defaultQueue.utf8) { return true }
        return Self.alwaysAllowed.contains { $0.matches(replyTo) } || allowed.contains { $0.matches(replyTo) }
    }
}
