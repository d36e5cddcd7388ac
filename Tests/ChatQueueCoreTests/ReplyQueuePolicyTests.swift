import ChatQueueCore
import Testing

@Suite("Reply queue policy: which reply_to values are served")
struct ReplyQueuePolicyTests {
    private func policy(_ entries: [String], defaultQueue: String? = nil) throws -> ReplyQueuePolicy {
        ReplyQueuePolicy(allowed: try ReplyQueuePolicy.patterns(parsing: entries), defaultQueue: defaultQueue)
    }

    @Test("with nothing configured only direct reply-to and server-named queues are allowed")
    func alwaysAllowed() throws {
        let none = try policy([])
        #expect(none.allows("amq.rabbitmq.reply-to"))
        #expect(none.allows("amq.rabbitmq.reply-to.g1h2AA5yZXBseUAxNDI3NjU3MzE2AAAAAAAAAAE="))
        #expect(none.allows("amq.gen-Xa2vJ8BqXh0Y8ZwGk6p1mQ"))
        #expect(!none.allows("billing.replies"))
        #expect(!none.allows("chat.requests"))
        #expect(!none.allows("amq.rabbitmq.reply-tox"), "shares the prefix without the separator")
        #expect(!none.allows("amq.gen"), "the prefix without its dash")
        #expect(!none.allows("amq.genX"))
        #expect(!none.allows("AMQ.GEN-x"), "names are case-sensitive")
    }

    @Test("replies.default_queue is allowed exactly")
    func defaultQueue() throws {
        let withDefault = try policy([], defaultQueue: "answers")
        #expect(withDefault.allows("answers"))
        #expect(!withDefault.allows("answers2"))
        #expect(!withDefault.allows("answer"))
    }

    @Test("exact names match byte for byte")
    func exact() throws {
        let allowed = try policy(["billing.replies", "café"])
        #expect(allowed.allows("billing.replies"))
        #expect(!allowed.allows("billing.replies.1"))
        #expect(!allowed.allows("billing.replie"))
        #expect(!allowed.allows("Billing.replies"))
        #expect(allowed.allows("caf\u{E9}"))
        // Canonically equivalent to "café" for Swift's ==, but a different queue for RabbitMQ.
        #expect(!allowed.allows("cafe\u{301}"))
    }

    @Test("a prefix matches names starting with it, separator included")
    func prefix() throws {
        let allowed = try policy(["billing.replies.*"])
        #expect(allowed.allows("billing.replies.42"))
        #expect(allowed.allows("billing.replies.a.b"))
        #expect(allowed.allows("billing.replies."), "the prefix alone is a (strange) legal name")
        #expect(!allowed.allows("billing.replies"), "the separator is part of the prefix")
        #expect(!allowed.allows("billing.replies-x"))
        #expect(!allowed.allows("billing.repliesx.1"))
        #expect(!allowed.allows("x.billing.replies.1"))
        // A combining mark after the dot forms another grapheme in Swift, but the bytes start with the prefix.
        #expect(allowed.allows("billing.replies.\u{301}x"))
    }

    @Test("\"*\" alone allows any queue AMQP can name")
    func any() throws {
        let any = try policy(["*"])
        #expect(any.allows("other.service.requests"))
        #expect(!any.allows(""))
        #expect(!any.allows(String(repeating: "q", count: 256)))
    }

    @Test("names AMQP can't carry are never allowed: empty, longer than 255 bytes")
    func impossibleNames() throws {
        let allowed = try policy(["long.*"], defaultQueue: "d")
        #expect(!allowed.allows(""))
        let longest = "long." + String(repeating: "x", count: 250)
        #expect(longest.utf8.count == 255)
        #expect(allowed.allows(longest))
        #expect(!allowed.allows(longest + "x"))
        #expect(!allowed.allows("amq.gen-" + String(repeating: "é", count: 124)), "256 bytes, 132 characters")
        #expect(allowed.allows("d"))
        #expect(!allowed.allows("d\u{0}"), "a NUL makes another name")
        #expect(allowed.allows("amq.gen-\u{FFFD}"), "a replacement character is just a character")
    }

    @Test("hostile entries are refused with a reason", arguments: [
        ("", "an empty entry"),
        ("a b", "whitespace"),
        ("a\tb", "whitespace"),
        ("a\u{0}b", "control character"),
        ("a\u{7F}", "control character"),
        ("billing.*.replies", "a * anywhere but at the end"),
        ("**", "a * anywhere but at the end"),
        ("*a", "a * anywhere but at the end"),
        (String(repeating: "q", count: 256), "longer than 255 bytes"),
        (String(repeating: "é", count: 128), "longer than 255 bytes"),
        (String(repeating: "q", count: 255) + "*", "a prefix of 255 bytes or more"),
    ])
    func hostileEntries(entry: String, reason: String) {
        #expect(throws: ReplyQueuePolicy.InvalidEntry.self) { try ReplyQueuePolicy.patterns(parsing: [entry]) }
        do {
            _ = try ReplyQueuePolicy.patterns(parsing: ["ok", entry])
            Issue.record("\(entry.debugDescription) was accepted")
        } catch {
            #expect(error.entry == entry)
            #expect(error.reason.contains(reason), "\(error.reason)")
        }
    }

    @Test("entries read back as written")
    func description() throws {
        let entries = ["a", "b.*", "*", String(repeating: "q", count: 255), String(repeating: "p", count: 254) + "*"]
        #expect(try ReplyQueuePolicy.patterns(parsing: entries).map(\.description) == entries)
    }
}
