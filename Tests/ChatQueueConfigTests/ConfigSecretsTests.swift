import Foundation
import Testing

@testable import ChatQueueConfig

@Suite("Config: secrets")
struct ConfigSecretsTests {
    @Test("Secret never shows its value")
    func secretIsRedacted() {
        let secret = Secret("sk-123")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("sk-123"))
    }

    @Test("*_file keys are read, trailing newline trimmed")
    func fromFiles() throws {
        try ConfigFixture.withDirectory { directory in
            let keyFile = try directory.write("key", "sk-file\n")
            let passwordFile = try directory.write("password", "pw file\r\n")
            let settings = try SettingsLoader.load(
                configFile: try directory.write("c.yaml", "upstream:\n  api_key_file: \(keyFile)\n"),
                environment: ["CHATQUEUE_BROKER_PASSWORD_FILE": passwordFile],
                overrides: [:]
            )
            #expect(settings.upstream.apiKey == Secret("sk-file"))
            #expect(settings.broker.endpoints[0].password == Secret("pw file"))
        }
    }

    @Test("the credentials directory supplies secrets not otherwise set")
    func fromCredentialsDirectory() throws {
        try ConfigFixture.withDirectory { directory in
            try directory.write("upstream.api_key", "sk-credential\n")
            try directory.write("broker.password", "pw-credential")
            let settings = try SettingsLoader.load(
                configFile: nil, environment: ["CREDENTIALS_DIRECTORY": directory.path], overrides: [:])
            #expect(settings.upstream.apiKey == Secret("sk-credential"))
            #expect(settings.broker.endpoints[0].password == Secret("pw-credential"))
        }
    }

    @Test("a credential missing from the directory is simply not set")
    func missingCredential() throws {
        try ConfigFixture.withDirectory { directory in
            let settings = try SettingsLoader.load(
                configFile: nil, environment: ["CREDENTIALS_DIRECTORY": directory.path], overrides: [:])
            #expect(settings.upstream.apiKey == nil)
            #expect(settings.broker.endpoints[0].password == Secret("guest"))
        }
    }

    @Test("precedence: the key itself > its *_file > the credentials directory")
    func precedence() throws {
        try ConfigFixture.withDirectory { directory in
            try directory.write("upstream.api_key", "from-credentials")
            let file = try directory.write("key", "from-file")
            let environment = ["CREDENTIALS_DIRECTORY": directory.path]
            func apiKey(yaml: String = "", environment extra: [String: String] = [:], overrides: [String: String] = [:])
                throws -> Secret?
            {
                try SettingsLoader.load(
                    configFile: try directory.write("c.yaml", yaml),
                    environment: environment.merging(extra) { $1 },
                    overrides: overrides
                ).upstream.apiKey
            }
            #expect(try apiKey() == Secret("from-credentials"))
            #expect(try apiKey(yaml: "upstream:\n  api_key_file: \(file)\n") == Secret("from-file"))
            // The key itself wins from any layer, even the lowest.
            #expect(
                try apiKey(yaml: "upstream:\n  api_key: from-yaml\n  api_key_file: \(file)\n") == Secret("from-yaml"))
            #expect(try apiKey(environment: ["CHATQUEUE_UPSTREAM_API_KEY_FILE": file]) == Secret("from-file"))
            #expect(
                try apiKey(
                    yaml: "upstream:\n  api_key: from-yaml\n",
                    environment: ["CHATQUEUE_UPSTREAM_API_KEY": "from-env"],
                    overrides: ["upstream.api_key": "from-override"]
                ) == Secret("from-override"))
            // An empty value counts as unset and doesn't hide the file.
            #expect(
                try apiKey(environment: ["CHATQUEUE_UPSTREAM_API_KEY": "", "CHATQUEUE_UPSTREAM_API_KEY_FILE": file])
                    == Secret("from-file"))
        }
    }

    @Test("unreadable or empty secret files are errors naming their key")
    func unreadableFiles() throws {
        try ConfigFixture.withDirectory { directory in
            let missing = directory.path + "/missing"
            let empty = try directory.write("empty", "\n")
            let cases: [(overrides: [String: String], key: String)] = [
                (["upstream.api_key_file": missing], "upstream.api_key_file"),
                (["broker.password_file": missing], "broker.password_file"),
                (["upstream.api_key_file": directory.path], "upstream.api_key_file"),
                (["upstream.api_key_file": empty], "upstream.api_key_file"),
            ]
            for (overrides, key) in cases {
                let error = try #require(try ConfigFixture.loadError(overrides: overrides))
                #expect(error.key == key)
                #expect(error.message.contains(directory.path))
            }
        }
    }

    @Test("an unreadable credential is an error naming the secret's key")
    func unreadableCredential() throws {
        try ConfigFixture.withDirectory { directory in
            // A directory where the file should be: unreadable even for root.
            try FileManager.default.createDirectory(
                atPath: directory.path + "/broker.password", withIntermediateDirectories: false)
            let error = try #require(
                try ConfigFixture.loadError(environment: ["CREDENTIALS_DIRECTORY": directory.path]))
            #expect(error.key == "broker.password")
            #expect(error.message.contains("broker.password"))
        }
    }

    @Test("redactedYAML and descriptions never contain secret values")
    func redactedYAMLHidesSecrets() throws {
        try ConfigFixture.withDirectory { directory in
            try directory.write("upstream.api_key", "sk-credential-value")
            let settings = try SettingsLoader.load(
                configFile: nil,
                environment: [
                    "CREDENTIALS_DIRECTORY": directory.path,
                    "CHATQUEUE_BROKER_URL": "amqp://bob:url-password@h/%2f,amqp://h2",
                ],
                overrides: [:]
            )
            let yaml = settings.redactedYAML()
            #expect(!yaml.contains("sk-credential-value"))
            #expect(!yaml.contains("url-password"))
            #expect(yaml.contains("api_key: \"<redacted>\""))
            #expect(yaml.contains("amqp://bob:***@h:5672/%2F"))
            #expect(!"\(settings)".contains("sk-credential-value"))
            #expect(!"\(settings)".contains("url-password"))

            let withPassword = try ConfigFixture.load(overrides: ["broker.password": "override-password"])
            #expect(!withPassword.redactedYAML().contains("override-password"))
            #expect(!withPassword.redactedYAML().contains("guest:guest"))
        }
    }
}
