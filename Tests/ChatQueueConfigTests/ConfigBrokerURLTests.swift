import Testing

@testable import ChatQueueConfig

@Suite("Config: broker URLs")
struct ConfigBrokerURLTests {
    @Test("comma-separated URLs become endpoints in order")
    func commaSeparated() throws {
        let settings = try ConfigFixture.load(environment: [
            "CHATQUEUE_BROKER_URL": "amqp://u1:p1@one:1111/%2f, amqps://two , amqp://three/"
        ])
        #expect(
            settings.broker.endpoints == [
                BrokerEndpoint(tls: false, host: "one", port: 1111, vhost: "/", user: "u1", password: Secret("p1")),
                BrokerEndpoint(
                    tls: true, host: "two", port: 5671, vhost: "/", user: "guest", password: Secret("guest")),
                BrokerEndpoint(
                    tls: false, host: "three", port: 5672, vhost: "/", user: "guest", password: Secret("guest")),
            ])
    }

    @Test("a YAML list of URLs works like a comma-separated string")
    func yamlList() throws {
        let settings = try ConfigFixture.load(yaml: "broker:\n  url: [\"amqp://a\", \"amqp://b\"]\n")
        #expect(settings.broker.endpoints.map(\.host) == ["a", "b"])
    }

    @Test(
        "vhost, user and password are percent-decoded",
        arguments: [
            ("amqp://h/%2f", "/"),
            ("amqp://h/%2Fprod", "/prod"),
            ("amqp://h/my%20vhost", "my vhost"),
            ("amqp://h/caf%C3%A9", "café"),
            ("amqp://h", "/"),
            ("amqp://h/", "/"),
            ("amqp://h/plain", "plain"),
        ]
    )
    func vhostDecoding(url: String, vhost: String) throws {
        #expect(try BrokerEndpoint(url: url).vhost == vhost)
    }

    @Test("user info, IPv6 hosts and scheme case")
    func userInfoAndHosts() throws {
        let endpoint = try BrokerEndpoint(url: "AMQPS://us%40er:p%3Aw%2C@[::1]:6000/v")
        #expect(
            endpoint
                == BrokerEndpoint(
                    tls: true, host: "::1", port: 6000, vhost: "v", user: "us@er", password: Secret("p:w,")))
        #expect(endpoint.redacted == "amqps://us%40er:***@[::1]:6000/v")
        #expect(try BrokerEndpoint(url: "amqp://bob@h").password == Secret("guest"))
        #expect(try BrokerEndpoint(url: "amqp://bob:@h").password == Secret(""))
    }

    @Test("redacted hides the password and normalizes the URL")
    func redacted() throws {
        let endpoint = try BrokerEndpoint(url: "amqp://guest:s3cret@127.0.0.1/%2f")
        #expect(endpoint.redacted == "amqp://guest:***@127.0.0.1:5672/%2F")
        #expect(!endpoint.redacted.contains("s3cret"))
    }

    @Test("broker.password replaces the password of every URL")
    func passwordReplacesAll() throws {
        let settings = try ConfigFixture.load(
            overrides: ["broker.url": "amqp://a:1@x,amqp://y", "broker.password": "shared"]
        )
        #expect(settings.broker.endpoints.map(\.password) == [Secret("shared"), Secret("shared")])
        #expect(settings.broker.endpoints.map(\.user) == ["a", "guest"])
    }

    @Test(
        "bad URLs are errors naming broker.url, without the password",
        arguments: [
            "http://h/",
            "h:5672",
            "amqp://",
            "amqp://user:hunter2@",
            "amqp://user:hunter2@h:0",
            "amqp://h:65536",
            "amqp://h:12ab",
            "amqp://h/a/b",
            "amqp://h/%zz",
            "amqp://h?heartbeat=5",
            "amqp://[::1",
            "amqp://good, ftp://user:hunter2@bad",
            " , ",
            // Raw "/", "?", "#" and "@" in a password, in URLs bad for another reason.
            "amqp://user:hun/ter2@h:0",
            "amqp://user:hunter2/x@h/a/b",
            "amqp://user:hun?ter2@h:99999",
            "amqp://user:hun#ter2@h/%zz",
            "amqp://user:hun@ter2@[::1",
            "amqp://user:hunter2@h?heartbeat=5",
            "amqp://user:hun%zzter2@h",
            "amqp://user:hunter2@h/%2f%zz",
        ]
    )
    func badURLs(url: String) throws {
        let error = try #require(try ConfigFixture.loadError(environment: ["CHATQUEUE_BROKER_URL": url]))
        #expect(error.key == "broker.url")
        #expect(!error.description.contains("ter2"), "\(error)")  // every password here ends in "ter2"
        #expect(error.message.contains("CHATQUEUE_BROKER_URL"))
    }

    @Test(
        "a password may hold raw / ? # @ (the user info ends at the last @), or percent-encode them",
        arguments: [
            ("amqp://app:pa/ss@rabbit/%2f", "pa/ss"),
            ("amqp://app:p?ss#x@rabbit:5673/prod", "p?ss#x"),
            ("amqp://app:p@ss@rabbit", "p@ss"),
            ("amqp://app:a/b?c#d@e:f@rabbit/", "a/b?c#d@e:f"),
            ("amqp://app:%2F%3F%23%40@rabbit", "/?#@"),
        ])
    func rawPasswordCharacters(url: String, password: String) throws {
        let endpoint = try BrokerEndpoint(url: url)
        #expect(endpoint.user == "app")
        #expect(endpoint.password == Secret(password))
        #expect(endpoint.host == "rabbit")
        #expect(!endpoint.redacted.contains(password))
    }

    @Test("redactedURL hides the password (or all user info) and any query or fragment")
    func redactedURLs() {
        #expect(redactedURL("amqp://u:p/w?x#y@z@host:1/v") == "amqp://u:***@host:1/v")
        #expect(redactedURL("amqp://u@host/v") == "amqp://u@host/v")
        #expect(redactedURL("amqp://host/v?heartbeat=5") == "amqp://host/v?***")
        #expect(redactedURL("https://token@host/p#f", hidingUser: true) == "https://***@host/p#***")
        #expect(redactedURL("not a url") == "not a url")
    }
}
