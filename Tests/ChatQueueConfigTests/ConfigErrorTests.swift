import Testing

@testable import ChatQueueConfig

@Suite("Config: errors name their key")
struct ConfigErrorTests {
    @Test("ConfigError describes itself with its key")
    func description() {
        #expect(
            ConfigError(key: "worker.concurrency", message: "m").description == "config error: worker.concurrency: m")
    }

    @Test("an unknown key in the YAML file is rejected, with a suggestion")
    func unknownYAMLKey() throws {
        let error = try #require(try ConfigFixture.loadError(yaml: "worker:\n  concurency: 4\n"))
        #expect(error.key == "worker.concurency")
        #expect(error.message.contains("unknown key"))
        #expect(error.message.contains("did you mean worker.concurrency?"))

        let section = try #require(try ConfigFixture.loadError(yaml: "workers:\n  concurrency: 4\n"))
        #expect(section.key == "workers.concurrency")
        let valueForSection = try #require(try ConfigFixture.loadError(yaml: "worker: 4\n"))
        #expect(valueForSection.key == "worker")
        #expect(valueForSection.message.contains("expected a mapping"))
        let nested = try #require(try ConfigFixture.loadError(yaml: "log:\n  level:\n    default: info\n"))
        #expect(nested.key == "log.level.default")
    }

    @Test("an unknown override key is rejected")
    func unknownOverrideKey() throws {
        let error = try #require(try ConfigFixture.loadError(overrides: ["upstream.api-key": "x"]))
        #expect(error.key == "upstream.api-key")
        #expect(error.message.contains("unknown key"))
        #expect(!error.message.contains("x\""))
    }

    @Test("a missing or unparsable config file is an error with key \"config\" and the path")
    func badFile() throws {
        try ConfigFixture.withDirectory { directory in
            let missing = directory.path + "/nope.yaml"
            let unparsable = try directory.write("bad.yaml", "worker: [unclosed\n")
            let notAMapping = try directory.write("list.yaml", "- a\n- b\n")
            for path in [missing, unparsable, notAMapping, directory.path] {
                do throws(ConfigError) {
                    _ = try SettingsLoader.load(configFile: path, environment: [:], overrides: [:])
                    Issue.record("\(path) loaded")
                } catch {
                    #expect(error.key == "config")
                    #expect(error.message.contains(path))
                }
            }
        }
    }

    @Test("a YAML syntax error doesn't quote the file")
    func syntaxErrorHidesContent() throws {
        let error = try #require(try ConfigFixture.loadError(yaml: "upstream:\n  api_key: \"sk-secret\n"))
        #expect(error.key == "config")
        #expect(error.message.contains("chatqueue.yaml"))
        #expect(!error.message.contains("sk-secret"), "\(error.message)")
        #expect(error.message.contains("line 2"), "\(error.message)")

        let duplicate = try #require(
            try ConfigFixture.loadError(yaml: "upstream:\n  api_key: sk-secret\n  api_key: sk-secret\n"))
        #expect(duplicate.key == "config")
        #expect(duplicate.message.contains("'api_key'"), "\(duplicate.message)")
        #expect(!duplicate.message.contains("sk-secret"), "\(duplicate.message)")
    }

    @Test(
        "wrong types name the key, the expectation and the value",
        arguments: [
            ("worker:\n  concurrency: many\n", "worker.concurrency", "expected an integer in 1...65535, got \"many\""),
            ("worker:\n  concurrency: 2.5\n", "worker.concurrency", "got \"2.5\""),
            ("worker:\n  request_timeout: soon\n", "worker.request_timeout", "got \"soon\""),
            ("queue:\n  declare: maybe\n", "queue.declare", "expected true or false, got \"maybe\""),
            ("queue:\n  name: [a, b]\n", "queue.name", "expected a string, got a list"),
            ("queue:\n  type: stream\n", "queue.type", "expected one of quorum, classic, got \"stream\""),
            ("log:\n  level: loud\n", "log.level", "got \"loud\""),
            ("log:\n  format: xml\n", "log.format", "expected one of text, json"),
            ("upstream:\n  api_key: [a]\n", "upstream.api_key", "got another type"),
        ]
    )
    func wrongTypesInYAML(yaml: String, key: String, message: String) throws {
        let error = try #require(try ConfigFixture.loadError(yaml: yaml))
        #expect(error.key == key)
        #expect(error.message.contains(message), "\(error.message)")
        #expect(error.message.contains("chatqueue.yaml"), "names the file")
    }

    @Test(
        "out-of-range values name the key and the range",
        arguments: [
            ("broker.heartbeat", "3601", "expected an integer in 0...3600, got 3601"),
            ("broker.heartbeat", "-1", "got -1"),
            ("worker.concurrency", "0", "expected an integer in 1...65535, got 0"),
            ("worker.concurrency", "65536", "got 65536"),
            ("worker.max_request_bytes", "134217729", "1...134217728"),
            ("worker.request_timeout", "0", "expected a number of seconds > 0"),
            ("worker.request_timeout", "-3", "got -3.0"),
            ("upstream.connect_timeout", "nan", "got nan"),
            ("upstream.first_byte_timeout", "inf", "got inf"),
            ("upstream.idle_timeout", "0", "> 0"),
            ("upstream.max_response_bytes", "1023", "expected an integer in 1024...536870912, got 1023"),
            ("upstream.max_response_bytes", "536870913", "got 536870913"),
            ("upstream.max_response_bytes", "9223372036854775808", "got \"9223372036854775808\""),
            ("worker.concurrency", "-9223372036854775808", "got -9223372036854775808"),
            ("worker.max_deliveries", "99999999999999999999999", "expected an integer in 1...1000"),
            ("replies.max_backlog_bytes", "1e3", "got \"1e3\""),
            ("retry.max_attempts", "101", "expected an integer in 1...100, got 101"),
            ("worker.request_timeout", "31536001", "expected a number of seconds > 0 and <= 31536000"),
            ("worker.shutdown_grace", "1e400", "got"),
            ("retry.base_delay", "-inf", "got -inf"),
            ("retry.max_delay", "-0", "> 0"),
            ("retry.max_retry_after", "NaN", "got nan"),
            ("status.interval", "1e-400", "> 0"),
            ("queue.name", "", "expected a non-empty queue name"),
            ("upstream.url", "ftp://x", "expected an http:// or https:// URL"),
            ("upstream.url", "https://", "got \"https://\""),
            ("upstream.url", "https://user:pw@host", "no user info"),
            ("upstream.url", "https://host/?a=b", "query"),
            ("upstream.url", "https://sk-secret@host/v1", #"got "https://***@host/v1""#),
            ("upstream.url", "https://u:p/w?d#x@host/v1?key=sk-secret#frag", #"got "https://***@host/v1?***""#),
            ("upstream.url", "https://host/v1#sk-secret", #"got "https://host/v1#***""#),
            ("cancel.remember_seconds", "0", "> 0"),
            ("cancel.remember_seconds", "nan", "got nan"),
            ("cancel.remember_seconds", "1e400", "got"),
            ("cancel.remember_max", "-1", "expected an integer in 0...100000, got -1"),
            ("cancel.remember_max", "1000001", "got 1000001"),
            ("cancel.remember_max", "99999999999999999999999", "expected an integer in 0...100000"),
            ("queue.cancel_exchange", String(repeating: "x", count: 256), "at most 255 bytes"),
        ]
    )
    func outOfRange(key: String, value: String, message: String) throws {
        let error = try #require(try ConfigFixture.loadError(overrides: [key: value]))
        #expect(error.key == key)
        #expect(error.message.contains(message), "\(error.message)")
        #expect(error.message.contains("command-line override"))
        #expect(!error.message.contains("sk-secret"), "\(error.message)")
    }

    @Test("environment errors name the variable")
    func environmentSource() throws {
        let error = try #require(
            try ConfigFixture.loadError(environment: ["CHATQUEUE_WORKER_MAX_REQUEST_BYTES": "1MB"]))
        #expect(error.key == "worker.max_request_bytes")
        #expect(
            error.message
                == "expected an integer in 1...134217728, got \"1MB\" (from CHATQUEUE_WORKER_MAX_REQUEST_BYTES)")
    }

    @Test("a higher layer's bad value is an error even when a lower layer is fine")
    func badHigherLayer() throws {
        let error = try #require(
            try ConfigFixture.loadError(
                yaml: "worker:\n  concurrency: 4\n", environment: ["CHATQUEUE_WORKER_CONCURRENCY": "x"]))
        #expect(error.key == "worker.concurrency")
    }

    @Test("secret values never appear in errors")
    func secretsNotInErrors() throws {
        let error = try #require(
            try ConfigFixture.loadError(overrides: ["broker.url": "amqp://u:topsecret@h:99999"]))
        #expect(error.key == "broker.url")
        #expect(!error.message.contains("topsecret"))
    }
}
