import ChatQueueCore
import Testing

@testable import ChatQueueConfig

@Suite("Config: replies.allowed_queues and upstream.proxy")
struct ConfigRequesterBoundaryTests {
    @Test("by default only the always-allowed reply queues are served, and there is no proxy")
    func defaults() {
        #expect(Settings.defaults.replies.allowedQueues.isEmpty)
        #expect(Settings.defaults.replies.replyQueuePolicy == ReplyQueuePolicy())
        #expect(Settings.defaults.upstream.proxy == nil)
    }

    @Test("allowed queues from YAML, the environment and overrides; replies.default_queue joins them")
    func allowedQueues() throws {
        let yaml = try ConfigFixture.load(
            yaml: "replies:\n  default_queue: answers\n  allowed_queues: [billing.replies, \"reports.*\"]\n")
        #expect(yaml.replies.allowedQueues == [.exact("billing.replies"), .prefix("reports.")])
        let policy = yaml.replies.replyQueuePolicy
        #expect(policy.allows("answers") && policy.allows("billing.replies") && policy.allows("reports.7"))
        #expect(!policy.allows("reports") && !policy.allows("billing.replies.1"))

        let environment = try ConfigFixture.load(environment: ["CHATQUEUE_REPLIES_ALLOWED_QUEUES": "a, b.*"])
        #expect(environment.replies.allowedQueues == [.exact("a"), .prefix("b.")])
        let override = try ConfigFixture.load(overrides: ["replies.allowed_queues": "*"])
        #expect(override.replies.allowedQueues == [.any])
        #expect(override.replies.replyQueuePolicy.allows("anything.at.all"))
    }

    @Test("hostile allowed_queues entries are config errors naming the key")
    func hostileAllowedQueues() throws {
        let long = String(repeating: "q", count: 300)
        for (yaml, fragment) in [
            ("[\"a b\"]", "whitespace"),
            ("[\"a.*.b\"]", "a * anywhere but at the end"),
            ("[\"\(long)\"]", "longer than 255 bytes"),
            ("[\"ok\", \"x\\u0001\"]", "control character"),
        ] {
            let error = try #require(
                try ConfigFixture.loadError(yaml: "replies:\n  allowed_queues: \(yaml)\n"), "\(yaml) was accepted")
            #expect(error.key == "replies.allowed_queues")
            #expect(error.message.contains(fragment), "\(error.message)")
            // A long value is cut short in the message.
            #expect(error.message.utf8.count < 300, "\(error.message)")
        }
        let fromOverride = try #require(try ConfigFixture.loadError(overrides: ["replies.allowed_queues": "a,b*c"]))
        #expect(fromOverride.key == "replies.allowed_queues")
        #expect(fromOverride.message.contains("command-line override"))
    }

    @Test("stray commas and blank entries are ignored, as in every list key")
    func blankEntriesIgnored() throws {
        let settings = try ConfigFixture.load(yaml: "replies:\n  allowed_queues: [\"a\", \"\", \"  \"]\n")
        #expect(settings.replies.allowedQueues == [.exact("a")])
        let override = try ConfigFixture.load(overrides: ["replies.allowed_queues": "a,,b,"])
        #expect(override.replies.allowedQueues == [.exact("a"), .exact("b")])
    }

    @Test("check-config shows allowed queues as written")
    func rendered() throws {
        let settings = try ConfigFixture.load(overrides: ["replies.allowed_queues": "a,b.*"])
        #expect(settings.redactedYAML().contains(#"allowed_queues: ["a", "b.*"]"#))
    }

    @Test("upstream.proxy: http(s) and socks proxies are accepted, credentials redacted in check-config")
    func proxy() throws {
        for proxy in ["http://127.0.0.1:3128", "https://proxy.example:443", "socks5h://localhost:1080", "HTTP://p:1"] {
            #expect(try ConfigFixture.load(overrides: ["upstream.proxy": proxy]).upstream.proxy == proxy)
        }
        let secret = try ConfigFixture.load(overrides: ["upstream.proxy": "http://user:p@ss/w#rd@proxy.example:3128"])
        #expect(secret.upstream.proxy == "http://user:p@ss/w#rd@proxy.example:3128")
        let shown = secret.redactedYAML()
        #expect(shown.contains(#"proxy: "http://***@proxy.example:3128""#), "\(shown)")
        #expect(!shown.contains("p@ss") && !shown.contains("user"))
    }

    @Test("a bad upstream.proxy is a config error naming the key, never echoing a password")
    func badProxy() throws {
        for proxy in ["127.0.0.1:3128", "ftp://proxy:21", "file:///etc/passwd", "http://", "http://:8080", "http://a b:1",
            "gopher://user:hunter2@proxy:70"]
        {
            let error = try #require(
                try ConfigFixture.loadError(overrides: ["upstream.proxy": proxy]), "\(proxy) was accepted")
            #expect(error.key == "upstream.proxy")
            #expect(!error.message.contains("hunter2"), "\(error.message)")
        }
    }

    @Test("an upstream.url that is not http(s) is a config error naming the key")
    func upstreamScheme() throws {
        for url in ["ftp://api.example", "file:///etc/passwd", "gopher://x", "dict://x:11111", "api.example"] {
            let error = try #require(try ConfigFixture.loadError(overrides: ["upstream.url": url]), "\(url) was accepted")
            #expect(error.key == "upstream.url")
        }
    }
}
