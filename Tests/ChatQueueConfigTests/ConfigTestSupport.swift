import Foundation
import Testing

@testable import ChatQueueConfig

/// Files for configuration tests, in a fresh directory removed afterwards.
/// (Helpers live in this namespace so they don't clash with the target's other tests.)
enum ConfigFixture {
    /// Runs `body` with a new empty directory, removed afterwards.
    static func withDirectory<Result>(_ body: (Directory) throws -> Result) throws -> Result {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("chatqueue-config-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(Directory(path: path))
    }

    struct Directory {
        let path: String

        /// Writes `contents` to `name` in this directory; returns its path.
        @discardableResult
        func write(_ name: String, _ contents: String) throws -> String {
            let filePath = path + "/" + name
            try contents.write(toFile: filePath, atomically: false, encoding: .utf8)
            return filePath
        }
    }

    /// Loads settings, failing the test on error.
    static func load(
        yaml: String? = nil,
        environment: [String: String] = [:],
        overrides: [String: String] = [:]
    ) throws -> Settings {
        try withDirectory { directory in
            let file = try yaml.map { try directory.write("chatqueue.yaml", $0) }
            return try SettingsLoader.load(configFile: file, environment: environment, overrides: overrides)
        }
    }

    /// The error loading fails with, or nil if it succeeds.
    static func loadError(
        yaml: String? = nil,
        environment: [String: String] = [:],
        overrides: [String: String] = [:]
    ) throws -> ConfigError? {
        try withDirectory { directory -> ConfigError? in
            let file = try yaml.map { try directory.write("chatqueue.yaml", $0) }
            do throws(ConfigError) {
                _ = try SettingsLoader.load(configFile: file, environment: environment, overrides: overrides)
                return nil
            } catch {
                return error
            }
        }
    }

    /// config/chatqueue.yaml in this repository.
    static let templatePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ChatQueueConfigTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("config/chatqueue.yaml").path
}
