import Testing

@testable import ChatQueueConfig

@Suite("Tracing: tracing.* and log.request_summary keys")
struct TracingConfigTests {
    @Test("defaults: no traces started, no export, a summary line at info")
    func defaults() {
        #expect(Settings.defaults.tracing == Settings.Tracing())
        #expect(Settings.defaults.tracing.otlpEndpoint == nil)
        #expect(!Settings.defaults.tracing.startTraces)
        #expect(Settings.defaults.log.requestSummary == .info)
    }

    @Test("set from the file, the environment and overrides; a trailing slash on the endpoint is dropped")
    func layers() throws {
        let settings = try ConfigFixture.load(
            yaml: "tracing:\n  otlp_endpoint: http://127.0.0.1:4318/\n  max_queued_spans: 10\nlog:\n  request_summary: off\n",
            environment: ["CHATQUEUE_TRACING_START_TRACES": "true"],
            overrides: ["tracing.service_name": "chat-worker-eu", "tracing.export_interval": "0.5"])
        #expect(settings.tracing.otlpEndpoint == "http://127.0.0.1:4318")
        #expect(settings.tracing.startTraces)
        #expect(settings.tracing.serviceName == "chat-worker-eu")
        #expect(settings.tracing.maxQueuedSpans == 10)
        #expect(settings.tracing.exportInterval == 0.5)
        #expect(settings.log.requestSummary == .off)
    }

    @Test(
        "bad values name the key",
        arguments: [
            ("tracing.otlp_endpoint", "ftp://collector:4318", "http:// or https://"),
            ("tracing.otlp_endpoint", "http://user:secret@collector:4318", "no user info"),
            ("tracing.otlp_endpoint", "http://collector:4318/?x=1", "no user info, query"),
            ("tracing.otlp_endpoint", "http://", "with a host"),
            ("tracing.service_name", "", "1 to 255 bytes"),
            ("tracing.service_name", "a\nb", "on one line"),
            ("tracing.service_name", String(repeating: "x", count: 256), "1 to 255 bytes"),
            ("tracing.max_queued_spans", "0", "1"),
            ("tracing.max_queued_spans", "99999999999999999999", "integer"),
            ("tracing.max_batch_spans", "-1", "1"),
            ("tracing.export_interval", "0", "seconds > 0"),
            ("tracing.export_timeout", "nan", "seconds"),
            ("tracing.start_traces", "maybe", "true or false"),
            ("log.request_summary", "error", "one of off, trace, debug, info, notice, warning"),
        ])
    func invalid(key: String, value: String, message: String) throws {
        let error = try #require(try ConfigFixture.loadError(overrides: [key: value]))
        #expect(error.key == key)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test("the endpoint's user info never shows in the error")
    func endpointSecretHidden() throws {
        let error = try #require(try ConfigFixture.loadError(overrides: ["tracing.otlp_endpoint": "http://u:hunter2@c:4318"]))
        #expect(!error.message.contains("hunter2"))
    }
}
