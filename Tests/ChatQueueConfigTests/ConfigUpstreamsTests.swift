import Testing

@testable import ChatQueueConfig
@testable import ChatQueueCore

@Suite("Config: named upstreams and routes")
struct ConfigUpstreamsTests {
    static let twoUpstreams = """
        upstream:
          first_byte_timeout: 50
        upstreams:
          names: [deepseek, acedata]
          deepseek:
            url: "https://api.deepseek.com"
            api_key: "sk-deepseek-secret"
            max_concurrency: 8
          acedata:
            url: "http://127.0.0.1:9/v1"
            connect_timeout: 2
            idle_timeout: 7
            headers: ["X-Team: billing, east", "api-version: 2"]
          routes:
            - "deepseek-chat -> acedata=DeepSeek-V3 deepseek"
            - "deepseek-* -> deepseek"
        """

    @Test("without upstreams.names the upstream.* keys are the one upstream, named default, for every model")
    func single() throws {
        let settings = try ConfigFixture.load(overrides: ["upstream.url": "http://127.0.0.1:1234"])
        #expect(settings.upstreams.count == 1)
        #expect(settings.upstreams[0] == settings.upstream)
        #expect(settings.upstreams[0].name == "default")
        #expect(settings.upstreams[0].url == "http://127.0.0.1:1234")
        #expect(settings.routing == .single(upstream: "default"))
        #expect(!settings.hasNamedUpstreams)
        #expect(settings.redactedYAML().contains("#   * -> default"))
    }

    @Test("named upstreams: each key read, timeouts defaulting to upstream.*, routes in order")
    func named() throws {
        let settings = try ConfigFixture.load(yaml: Self.twoUpstreams)
        #expect(settings.upstreams.map(\.name) == ["deepseek", "acedata"])
        let deepseek = settings.upstreams[0]
        let acedata = settings.upstreams[1]
        #expect(deepseek.url == "https://api.deepseek.com")
        #expect(deepseek.apiKey?.value == "sk-deepseek-secret")
        #expect(deepseek.maxConcurrency == 8)
        #expect(deepseek.firstByteTimeout == 50 && deepseek.idleTimeout == 60 && deepseek.connectTimeout == 10)
        #expect(acedata.apiKey == nil && acedata.maxConcurrency == nil)
        #expect(acedata.connectTimeout == 2 && acedata.idleTimeout == 7 && acedata.firstByteTimeout == 50)
        #expect(acedata.headers == ["X-Team: billing, east", "api-version: 2"])
        #expect(acedata.completionsURL == "http://127.0.0.1:9/v1/chat/completions")
        #expect(settings.routing.route(for: "deepseek-chat") == 0)
        #expect(settings.routing.routes[0].targets == [.init(upstream: 1, model: "DeepSeek-V3"), .init(upstream: 0)])
        #expect(settings.routing.route(for: "deepseek-reasoner") == 1)
        #expect(settings.routing.route(for: "gpt-4o") == nil)
    }

    @Test("check-config shows each upstream (secrets and header values redacted) and the routing table")
    func checkConfig() throws {
        let yaml = try ConfigFixture.load(yaml: Self.twoUpstreams).redactedYAML()
        #expect(!yaml.contains("sk-deepseek-secret"))
        #expect(!yaml.contains("billing"))
        #expect(yaml.contains("  acedata:\n    url: \"http://127.0.0.1:9/v1\""))
        #expect(yaml.contains("    headers: [\"X-Team: <redacted>\", \"api-version: <redacted>\"]"))
        #expect(yaml.contains("    max_concurrency: 8"))
        #expect(yaml.contains("routes: [\"deepseek-chat -> acedata=DeepSeek-V3 deepseek\", \"deepseek-* -> deepseek\"]"))
        #expect(
            yaml.hasSuffix(
                """
                # Routing table (first match wins; a model matching none is answered model_not_found):
                #   deepseek-chat -> acedata (model "DeepSeek-V3"), deepseek
                #   deepseek-* -> deepseek

                """))
    }

    @Test("the environment and overrides name upstreams and set their keys")
    func environment() throws {
        let settings = try ConfigFixture.load(
            environment: [
                "CHATQUEUE_UPSTREAMS_NAMES": "main,local_llm",
                "CHATQUEUE_UPSTREAMS_MAIN_URL": "https://api.deepseek.com",
                "CHATQUEUE_UPSTREAMS_MAIN_API_KEY": "sk-env",
                "CHATQUEUE_UPSTREAMS_LOCAL_LLM_URL": "http://127.0.0.1:8000",
                "CHATQUEUE_UPSTREAMS_ROUTES": "qwen* -> local_llm,* -> main local_llm=qwen2.5",
            ],
            overrides: ["upstreams.local_llm.first_byte_timeout": "300"])
        #expect(settings.upstreams.map(\.name) == ["main", "local_llm"])
        #expect(settings.upstreams[0].apiKey?.value == "sk-env")
        #expect(settings.upstreams[1].firstByteTimeout == 300)
        #expect(settings.routing.route(for: "qwen3") == 0)
        #expect(settings.routing.route(for: "x") == 1)
    }

    @Test("an upstream's api key comes from its file or the credentials directory")
    func apiKeyFiles() throws {
        try ConfigFixture.withDirectory { directory in
            let keyFile = try directory.write("key", "sk-file\n")
            try directory.write("upstreams.b.api_key", "sk-credential\n")
            let settings = try SettingsLoader.load(
                configFile: nil,
                environment: ["CREDENTIALS_DIRECTORY": directory.path],
                overrides: [
                    "upstreams.names": "a,b", "upstreams.a.url": "http://h", "upstreams.b.url": "http://h",
                    "upstreams.a.api_key_file": keyFile, "upstreams.routes": "* -> a b",
                ])
            #expect(settings.upstreams[0].apiKey?.value == "sk-file")
            #expect(settings.upstreams[1].apiKey?.value == "sk-credential")
        }
    }

    @Test("every mistake is a config error naming its key", arguments: [
        // (overrides, expected key, words in the message)
        (["upstreams.names": "a", "upstreams.a.url": "http://h"], "upstreams.routes", "at least one route"),
        (["upstreams.names": "a,a", "upstreams.a.url": "http://h", "upstreams.routes": "* -> a"], "upstreams.names", "duplicate"),
        (["upstreams.names": "A", "upstreams.routes": "* -> A"], "upstreams.names", "lowercase"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.routes": "* -> b"], "upstreams.routes", "unknown upstream \"b\""),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.routes": "x y -> a"], "upstreams.routes", "must read"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.routes": "* => a"], "upstreams.routes", "must read"),
        (["upstreams.names": "a", "upstreams.routes": "* -> a"], "upstreams.a.url", "http://"),
        (["upstreams.names": "a", "upstreams.a.url": "ftp://h", "upstreams.routes": "* -> a"], "upstreams.a.url", "http://"),
        (["upstreams.names": "a", "upstreams.a.url": "http://u:p@h", "upstreams.routes": "* -> a"], "upstreams.a.url", "no user info"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.a.idle_timeout": "0", "upstreams.routes": "* -> a"], "upstreams.a.idle_timeout", "seconds"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.a.max_concurrency": "70000", "upstreams.routes": "* -> a"], "upstreams.a.max_concurrency", "0...65535"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.a.headers": "Host: x", "upstreams.routes": "* -> a"], "upstreams.a.headers", "sets itself"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.a.headers": "X Y: x", "upstreams.routes": "* -> a"], "upstreams.a.headers", "token"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.b.url": "http://h", "upstreams.routes": "* -> a"], "upstreams.b.url", "not in upstreams.names"),
        (["upstreams.routes": "* -> default"], "upstreams.routes", "unless upstreams.names"),
        (["upstream.on_account_error": "wait"], "upstream.on_account_error", "reply, hold"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.a.on_account_error": "hold it", "upstreams.routes": "* -> a"], "upstreams.a.on_account_error", "reply, hold"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.a.adaptive_concurrency": "maybe", "upstreams.routes": "* -> a"], "upstreams.a.adaptive_concurrency", "true"),
        (["upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.a.rpm": "-1", "upstreams.routes": "* -> a"], "upstreams.a.rpm", "0...100000000"),
        (["upstream.tpm": "99999999999999999999"], "upstream.tpm", "0...1000000000000"),
        (["upstream.breaker_failures": "0"], "upstream.breaker_failures", "1...1000"),
        (["upstream.breaker_cooldown": "0"], "upstream.breaker_cooldown", "> 0"),
        (["upstream.hold_probe_interval": "nan"], "upstream.hold_probe_interval", "seconds"),
        (["upstream.max_concurrency": "65536"], "upstream.max_concurrency", "0...65535"),
    ])
    func mistakes(overrides: [String: String], key: String, words: String) throws {
        let error = try #require(try ConfigFixture.loadError(overrides: overrides))
        #expect(error.key == key)
        #expect(error.message.contains(words), "\(error.message)")
    }

    @Test("breaker, window, budget and account settings: upstream.* are the defaults, each upstream may override")
    func upstreamControls() throws {
        let settings = try ConfigFixture.load(
            yaml: """
                upstream:
                  on_account_error: hold
                  rpm: 600
                  max_concurrency: 16
                  breaker_failures: 3
                  breaker_cooldown: 5
                upstreams:
                  names: [a, b]
                  a:
                    url: "http://h"
                  b:
                    url: "http://h"
                    on_account_error: reply
                    adaptive_concurrency: false
                    max_concurrency: 4
                    rpm: 0
                    tpm: 90000
                  routes: ["* -> a b"]
                """)
        let (a, b) = (settings.upstreams[0], settings.upstreams[1])
        #expect(a.onAccountError == .hold && a.requestsPerMinute == 600 && a.maxConcurrency == 16 && a.adaptiveConcurrency)
        #expect(a.tokensPerMinute == nil)
        #expect(b.onAccountError == .reply && b.requestsPerMinute == nil && b.tokensPerMinute == 90000)
        #expect(b.maxConcurrency == 4 && !b.adaptiveConcurrency)
        #expect(settings.upstream.breakerFailures == 3 && settings.upstream.breakerCooldown == 5)
        #expect(settings.upstream.breakerMaxCooldown == 300 && settings.upstream.holdProbeInterval == 30)
        let raised = try ConfigFixture.load(overrides: ["upstream.breaker_cooldown": "600"])
        #expect(raised.upstream.breakerMaxCooldown == 600, "a max below the cooldown reads as the cooldown")
        let environment = try ConfigFixture.load(environment: ["CHATQUEUE_UPSTREAM_ON_ACCOUNT_ERROR": "hold"])
        #expect(environment.upstreams[0].onAccountError == .hold)
        let yaml = settings.redactedYAML()
        #expect(yaml.contains("on_account_error: \"reply\""))
        #expect(yaml.contains("tpm: 90000"))
    }

    @Test("a header value with CR or LF is refused without echoing the value")
    func headerInjection() throws {
        let error = try #require(
            try ConfigFixture.loadError(
                yaml: """
                    upstreams:
                      names: [a]
                      a:
                        url: "http://h"
                        headers: ["X-Key: secret\\r\\nInjected: 1"]
                      routes: ["* -> a"]
                    """))
        #expect(error.key == "upstreams.a.headers")
        #expect(!error.message.contains("secret"))
        let many = (0..<33).map { "X-\($0): v" }.joined(separator: ",")
        let tooMany = try #require(
            try ConfigFixture.loadError(overrides: [
                "upstreams.names": "a", "upstreams.a.url": "http://h", "upstreams.a.headers": many,
                "upstreams.routes": "* -> a",
            ]))
        #expect(tooMany.key == "upstreams.a.headers" && tooMany.message.contains("at most 32"))
    }

    @Test("keys of undeclared upstreams are refused in every layer; misspelled fields too")
    func undeclared() throws {
        let yaml = try #require(
            try ConfigFixture.loadError(
                yaml: "upstreams:\n  names: [a]\n  a:\n    url: \"http://h\"\n  b:\n    url: \"http://h\"\n  routes: [\"* -> a\"]\n"))
        #expect(yaml.key == "upstreams.b.url")
        let environment = try #require(
            try ConfigFixture.loadError(
                environment: ["CHATQUEUE_UPSTREAMS_B_URL": "http://h"]))
        #expect(environment.key == "CHATQUEUE_UPSTREAMS_B_URL")
        let field = try #require(
            try ConfigFixture.loadError(
                yaml: "upstreams:\n  names: [a]\n  a:\n    uri: \"http://h\"\n  routes: [\"* -> a\"]\n"))
        #expect(field.key == "upstreams.a.uri")
        #expect(field.message.contains("unknown key"))
    }

    @Test("an upstream's api key is a secret: never in errors")
    func secretNeverShown() throws {
        let error = try #require(
            try ConfigFixture.loadError(overrides: [
                "upstreams.names": "a", "upstreams.a.url": "nope", "upstreams.a.api_key": "sk-hidden",
                "upstreams.routes": "* -> a",
            ]))
        #expect(!error.message.contains("sk-hidden"))
        #expect(SettingKeys.isSecret("upstreams.a.api_key"))
        #expect(!SettingKeys.isSecret("upstreams.a.url"))
    }
}
