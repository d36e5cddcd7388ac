import Testing

@testable import ChatQueueConfig

@Suite("Config: YAML < environment < overrides")
struct ConfigLayeringTests {
    static let yaml = """
        broker:
          url: amqps://bob:pw@rabbit.example:5999/prod
          heartbeat: 0
        queue:
          name: jobs
          declare: false
          type: classic
        replies:
          default_queue: answers
        worker:
          concurrency: 4
          max_request_bytes: 2048
          request_timeout: 1.5
        upstream:
          url: http://localhost:8080/v1/
          models: [deepseek-chat, deepseek-reasoner]
          connect_timeout: 0.25
          first_byte_timeout: 3
          idle_timeout: 4
          max_response_bytes: 4096
        log:
          level: debug
          format: json
        """

    @Test("the YAML file overrides every default")
    func yamlOverridesDefaults() throws {
        let settings = try ConfigFixture.load(yaml: Self.yaml)
        #expect(
            settings.broker.endpoints == [
                BrokerEndpoint(
                    tls: true, host: "rabbit.example", port: 5999, vhost: "prod", user: "bob", password: Secret("pw"))
            ])
        #expect(settings.broker.heartbeat == 0)
        #expect(
            settings.queue
                == Settings.Queue(
                    name: "jobs", declare: false, type: .classic, deadLetterExchange: "jobs.dlx",
                    deadLetterQueue: "jobs.dead"))
        #expect(settings.replies.defaultQueue == "answers")
        #expect(settings.worker == Settings.Worker(concurrency: 4, maxRequestBytes: 2048, requestTimeout: 1.5))
        #expect(settings.upstream.url == "http://localhost:8080/v1/")
        #expect(settings.upstream.completionsURL == "http://localhost:8080/v1/chat/completions")
        #expect(settings.upstream.models == ["deepseek-chat", "deepseek-reasoner"])
        #expect(settings.upstream.connectTimeout == 0.25)
        #expect(settings.upstream.firstByteTimeout == 3)
        #expect(settings.upstream.idleTimeout == 4)
        #expect(settings.upstream.maxResponseBytes == 4096)
        #expect(settings.log == Settings.Log(level: .debug, format: .json))
    }

    @Test("environment variables override the YAML file")
    func environmentOverridesYAML() throws {
        let settings = try ConfigFixture.load(
            yaml: Self.yaml,
            environment: [
                "CHATQUEUE_WORKER_CONCURRENCY": "9",
                "CHATQUEUE_WORKER_MAX_REQUEST_BYTES": "4096",
                "CHATQUEUE_WORKER_REQUEST_TIMEOUT": "30",
                "CHATQUEUE_QUEUE_DECLARE": "yes",
                "CHATQUEUE_QUEUE_NAME": "env.jobs",
                "CHATQUEUE_UPSTREAM_MODELS": "a, b ,c",
                "CHATQUEUE_LOG_LEVEL": "WARNING",
            ]
        )
        #expect(settings.worker == Settings.Worker(concurrency: 9, maxRequestBytes: 4096, requestTimeout: 30))
        #expect(settings.queue.declare)
        #expect(settings.queue.name == "env.jobs")
        #expect(settings.queue.deadLetterExchange == "env.jobs.dlx")
        #expect(settings.upstream.models == ["a", "b", "c"])
        #expect(settings.log.level == .warning)
        // Untouched keys still come from the file.
        #expect(settings.log.format == .json)
        #expect(settings.queue.type == .classic)
    }

    @Test("overrides beat the environment and the file")
    func overridesBeatEnvironment() throws {
        let settings = try ConfigFixture.load(
            yaml: Self.yaml,
            environment: ["CHATQUEUE_WORKER_CONCURRENCY": "9", "CHATQUEUE_LOG_FORMAT": "text"],
            overrides: [
                "worker.concurrency": "100",
                "queue.dead_letter_exchange": "custom.dlx",
                "upstream.models": "only-this",
                "upstream.idle_timeout": "0.5",
            ]
        )
        #expect(settings.worker.concurrency == 100)
        #expect(settings.log.format == .text)
        #expect(settings.queue.deadLetterExchange == "custom.dlx")
        #expect(settings.queue.deadLetterQueue == "jobs.dead")
        #expect(settings.upstream.models == ["only-this"])
        #expect(settings.upstream.idleTimeout == 0.5)
        #expect(settings.upstream.firstByteTimeout == 3)
    }

    @Test("empty values mean unset for optional and derived keys")
    func emptyMeansUnset() throws {
        let settings = try ConfigFixture.load(
            yaml: "replies:\n  default_queue: answers\nupstream:\n  models: [x]\n",
            overrides: ["replies.default_queue": "", "upstream.models": "", "queue.dead_letter_queue": ""]
        )
        #expect(settings.replies.defaultQueue == nil)
        #expect(settings.upstream.models == nil)
        #expect(settings.queue.deadLetterQueue == "chat.requests.dead")
    }

    @Test("a list key accepts a comma-separated string in YAML too")
    func yamlCommaSeparatedList() throws {
        let settings = try ConfigFixture.load(yaml: "upstream:\n  models: \"a,b\"\n")
        #expect(settings.upstream.models == ["a", "b"])
    }

    @Test("a file with only comments means all defaults")
    func commentOnlyFile() throws {
        let settings = try ConfigFixture.load(yaml: "# nothing here\n\n---\n")
        #expect(settings == Settings.defaults)
    }

    @Test("a section with all its keys commented out means its defaults")
    func emptySection() throws {
        let settings = try ConfigFixture.load(yaml: "log:\n  # level: debug\nworker: ~\nqueue:\n  name: q\n")
        #expect(settings.log == Settings.defaults.log)
        #expect(settings.queue.name == "q")
    }

    @Test("redactedYAML loads back to the same settings, secrets aside")
    func redactedYAMLRoundTrip() throws {
        let original = try ConfigFixture.load(yaml: Self.yaml, overrides: ["broker.url": "amqp://a/x, amqp://b/y"])
        var reloaded = try ConfigFixture.load(yaml: original.redactedYAML())
        for index in reloaded.broker.endpoints.indices {
            #expect(reloaded.broker.endpoints[index].password.value == Secret.redactedText)
            reloaded.broker.endpoints[index].password = original.broker.endpoints[index].password
        }
        #expect(reloaded == original)
    }

    @Test("redactedYAML shows every key")
    func redactedYAMLHasEveryKey() {
        let values = Settings.defaults.effectiveValues()
        #expect(values.map(\.key.name) == SettingKeys.all.map(\.name))
        // Only the *_file keys are not kept (their content is in the secret).
        #expect(
            values.filter { $0.value == nil }.map(\.key.name).sorted() == [
                "broker.password_file", "upstream.api_key_file",
            ])
        let yaml = Settings.defaults.redactedYAML()
        for key in SettingKeys.all {
            #expect(yaml.contains(" " + key.name.split(separator: ".").last! + ":"), "\(key.name) missing")
        }
    }
}

@Suite("Cancel settings")
struct CancelSettingsTests {
    @Test("the cancel exchange defaults to chat.requests.cancel; empty turns cancellation off")
    func cancelExchange() throws {
        #expect(Settings.defaults.queue.cancelExchange == "chat.requests.cancel")
        #expect(Settings.defaults.cancel == Settings.Cancel(rememberSeconds: 300, rememberMax: 10000))
        let off = try SettingsLoader.load(configFile: nil, environment: [:], overrides: ["queue.cancel_exchange": ""])
        #expect(off.queue.cancelExchange == nil)
        let set = try SettingsLoader.load(
            configFile: nil, environment: ["CHATQUEUE_CANCEL_REMEMBER_MAX": "0"],
            overrides: ["queue.cancel_exchange": "billing.cancel", "cancel.remember_seconds": "0.5"])
        #expect(set.queue.cancelExchange == "billing.cancel")
        #expect(set.cancel == Settings.Cancel(rememberSeconds: 0.5, rememberMax: 0))
    }
}
