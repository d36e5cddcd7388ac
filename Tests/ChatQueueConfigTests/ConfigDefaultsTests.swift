import Foundation
import Testing

@testable import ChatQueueConfig

@Suite("Config: defaults and the annotated file")
struct ConfigDefaultsTests {
    @Test("nothing configured gives the documented defaults")
    func defaults() throws {
        let settings = try SettingsLoader.load(configFile: nil, environment: [:], overrides: [:])
        #expect(settings == Settings.defaults)

        let endpoint = try #require(settings.broker.endpoints.first)
        #expect(settings.broker.endpoints.count == 1)
        #expect(
            endpoint
                == BrokerEndpoint(
                    tls: false, host: "127.0.0.1", port: 5672, vhost: "/", user: "guest", password: Secret("guest")))
        #expect(settings.broker.heartbeat == 30)

        #expect(
            settings.queue
                == Settings.Queue(
                    name: "chat.requests", declare: true, type: .quorum,
                    deadLetterExchange: "chat.requests.dlx", deadLetterQueue: "chat.requests.dead"))
        #expect(settings.replies.defaultQueue == nil)
        #expect(settings.worker == Settings.Worker(concurrency: 32, maxRequestBytes: 1_048_576, requestTimeout: 600))

        #expect(settings.upstream.url == "https://api.deepseek.com")
        #expect(settings.upstream.completionsURL == "https://api.deepseek.com/chat/completions")
        #expect(settings.upstream.apiKey == nil)
        #expect(settings.upstream.models == nil)
        #expect(settings.upstream.connectTimeout == 10)
        #expect(settings.upstream.firstByteTimeout == 120)
        #expect(settings.upstream.idleTimeout == 60)
        #expect(settings.upstream.maxResponseBytes == 8_388_608)

        #expect(settings.log == Settings.Log(level: .info, format: .text))
    }

    @Test("unrelated environment variables are ignored")
    func unrelatedEnvironment() throws {
        let settings = try ConfigFixture.load(environment: [
            "PATH": "/usr/bin", "CHATQUEUE": "x", "WORKER_CONCURRENCY": "7",
        ])
        #expect(settings == Settings.defaults)
    }

    @Test("config/chatqueue.yaml loads to exactly the defaults")
    func templateLoadsToDefaults() throws {
        let settings = try SettingsLoader.load(configFile: ConfigFixture.templatePath, environment: [:], overrides: [:])
        #expect(settings == Settings.defaults)
    }

    /// The file is generated from SettingKeys. After changing a key, regenerate it with
    /// `CHATQUEUE_WRITE_CONFIG_TEMPLATE=1 swift test --filter ConfigDefaultsTests`.
    @Test("config/chatqueue.yaml is the template generated from the key table")
    func templateIsGenerated() throws {
        let expected = SettingsTemplate.annotatedYAML()
        if ProcessInfo.processInfo.environment["CHATQUEUE_WRITE_CONFIG_TEMPLATE"] == "1" {
            try expected.write(toFile: ConfigFixture.templatePath, atomically: true, encoding: .utf8)
        }
        let actual = try String(contentsOfFile: ConfigFixture.templatePath, encoding: .utf8)
        #expect(
            actual == expected,
            "regenerate with CHATQUEUE_WRITE_CONFIG_TEMPLATE=1 swift test --filter ConfigDefaultsTests")
    }

    @Test("every key is documented in config/chatqueue.yaml, with a comment")
    func everyKeyDocumented() throws {
        let lines = try String(contentsOfFile: ConfigFixture.templatePath, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        for key in SettingKeys.all {
            #expect(!key.summary.isEmpty, "\(key.name) has no summary")
            let leaf = key.name.split(separator: ".").last!
            let index = lines.firstIndex { $0.trimmingCharacters(in: .whitespaces).hasPrefix(leaf + ": ") }
            let line = try #require(index, "\(key.name) is missing")
            #expect(lines[line - 1].trimmingCharacters(in: .whitespaces).hasPrefix("#"), "\(key.name) has no comment")
        }
    }

    @Test("every key has a distinct environment variable")
    func environmentNames() {
        #expect(SettingsLoader.environmentVariableName(forKey: "broker.url") == "CHATQUEUE_BROKER_URL")
        #expect(
            SettingsLoader.environmentVariableName(forKey: "worker.max_request_bytes")
                == "CHATQUEUE_WORKER_MAX_REQUEST_BYTES")
        let names = SettingKeys.all.map { SettingsLoader.environmentVariableName(forKey: $0.name) }
        #expect(Set(names).count == names.count)
    }
}
