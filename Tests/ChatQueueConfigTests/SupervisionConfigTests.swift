import Testing

@testable import ChatQueueConfig

@Suite("Supervision: status.* and metrics.* keys")
struct SupervisionConfigTests {
    @Test("defaults: default status path, every 5 s, no metrics file")
    func defaults() {
        #expect(Settings.defaults.status == Settings.Status(file: nil, interval: 5))
        #expect(Settings.defaults.metrics == Settings.Metrics(textfile: nil))
    }

    @Test("set from the file, the environment and overrides")
    func layers() throws {
        let settings = try ConfigFixture.load(
            yaml: "status:\n  file: /run/w/status.json\n  interval: 2.5\n",
            environment: ["CHATQUEUE_METRICS_TEXTFILE": "/var/lib/node_exporter/chatqueue-1.prom"])
        #expect(settings.status == Settings.Status(file: "/run/w/status.json", interval: 2.5))
        #expect(settings.metrics.textfile == "/var/lib/node_exporter/chatqueue-1.prom")

        let overridden = try ConfigFixture.load(overrides: ["status.interval": "1", "status.file": ""])
        #expect(overridden.status == Settings.Status(file: nil, interval: 1))
    }

    @Test(
        "bad values name the key",
        arguments: [
            ("status.interval", "0", "expected a number of seconds > 0"),
            ("metrics.textfile", "/var/lib/node_exporter/chatqueue.txt", "expected a file path ending in .prom"),
            ("metrics.textfile", "/var/lib/node_exporter/.prom", "ending in .prom"),
        ])
    func invalid(key: String, value: String, message: String) throws {
        let error = try #require(try ConfigFixture.loadError(overrides: [key: value]))
        #expect(error.key == key)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test("check-config shows the keys")
    func effectiveValues() throws {
        let yaml = try ConfigFixture.load(overrides: ["metrics.textfile": "/m/w.prom"]).redactedYAML()
        #expect(yaml.contains("status:\n  file: \"\"\n  interval: 5\n"))
        #expect(yaml.contains("metrics:\n  textfile: \"/m/w.prom\"\n"))
    }
}
