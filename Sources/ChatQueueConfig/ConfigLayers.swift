import ChatQueueCore
import ChatQueueSystem
import Configuration
import Synchronization

/// The three configuration layers behind one swift-configuration reader, read key by
/// key as `SettingKeys` describes them.
///
/// swift-configuration's getters fall back to nil when a value has the wrong type
/// (reporting it to an access reporter); here that must be an error naming the key,
/// so a reporter records those failures and each read checks it.
struct ConfigLayers {
    private let reader: ConfigReader
    private let failures = LookupFailures()
    private let configFile: String?
    /// Only the `CHATQUEUE_` variables.
    private let environment: [String: String]
    private let overrides: [String: String]
    /// systemd's `$CREDENTIALS_DIRECTORY`, if set.
    private let credentialsDirectory: String?
    /// The keys the configuration file sets.
    private var fileKeys: [String] = []

    /// Secrets are short; anything larger is a wrong path.
    static let secretFileLimit = 64 * 1024
    /// A configuration file larger than this is certainly not one.
    static let configFileLimit = 16 * 1024 * 1024

    init(configFile: String?, environment: [String: String], overrides: [String: String]) throws(ConfigError) {
        for key in overrides.keys.sorted() where !SettingKeys.isKnown(key) {
            throw Self.unknownKey(key, source: "a command-line override")
        }
        self.configFile = configFile
        self.environment = environment.filter { $0.key.hasPrefix(SettingsLoader.environmentPrefix) }
        self.overrides = overrides
        self.credentialsDirectory = environment["CREDENTIALS_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 }

        // Overrides are strings like environment values, so the environment provider
        // parses them too (numbers, booleans, comma-separated lists), under unprefixed names.
        let overridesProvider = EnvironmentVariablesProvider(
            environmentVariables: Dictionary(
                uniqueKeysWithValues: overrides.map { (SettingsLoader.encodedKey($0.key), $0.value) }
            ),
            secretsSpecifier: .dynamic { key, _ in
                overrides.keys.contains { SettingsLoader.encodedKey($0) == key && SettingKeys.isSecret($0) }
            }
        )
        let environmentProvider = EnvironmentVariablesProvider(
            environmentVariables: self.environment,
            secretsSpecifier: .dynamic { variable, _ in
                SettingKeys.secretNames.contains { SettingsLoader.environmentVariableName(forKey: $0) == variable }
                    || (variable.hasPrefix("CHATQUEUE_UPSTREAMS_") && variable.hasSuffix("_API_KEY"))
            }
        ).prefixKeys(with: "chatqueue")  // worker.concurrency → CHATQUEUE_WORKER_CONCURRENCY

        var providers: [any ConfigProvider] = [overridesProvider, environmentProvider]
        if let configFile, let file = try Self.yamlProvider(path: configFile) {
            providers.append(file.provider)
            fileKeys = file.keys
        }
        reader = ConfigReader(providers: providers, accessReporter: failures)
    }

    // MARK: Typed reads (each returns the key's default when no layer sets it)

    func int(_ key: IntKey) throws(ConfigError) -> Int {
        guard let value = try lookup(key.name, expecting: key.expectation, { $0.int(forKey: $1) }) else {
            return key.defaultValue
        }
        guard key.range.contains(value) else { throw invalid(key.name, expected: key.expectation, got: "\(value)") }
        return value
    }

    func seconds(_ key: SecondsKey) throws(ConfigError) -> Double {
        guard let value = try lookup(key.name, expecting: key.expectation, { $0.double(forKey: $1) }) else {
            return key.defaultValue
        }
        guard key.allows(value) else { throw invalid(key.name, expected: key.expectation, got: "\(value)") }
        return value
    }

    func bool(_ key: BoolKey) throws(ConfigError) -> Bool {
        try lookup(key.name, expecting: "true or false", { $0.bool(forKey: $1) }) ?? key.defaultValue
    }

    func text(_ key: TextKey) throws(ConfigError) -> String {
        try lookup(key.name, expecting: "a string", { $0.string(forKey: $1) }) ?? key.defaultValue
    }

    func choice<Choice>(_ key: ChoiceKey<Choice>) throws(ConfigError) -> Choice {
        guard let text = try lookup(key.name, expecting: key.expectation, { $0.string(forKey: $1) }) else {
            return key.defaultValue
        }
        guard let choice = Choice(rawValue: text.lowercased()) else {
            throw invalid(key.name, expected: key.expectation, got: String(reflecting: text))
        }
        return choice
    }

    /// The non-empty items of a list key, or nil when no layer sets it.
    func list(_ key: ListKey) throws(ConfigError) -> [String]? {
        let configKey = ConfigKey(key.name)
        var items = reader.stringArray(forKey: configKey, isSecret: key.isSecret)
        if failures.takeFailure(of: key.name) {
            // A YAML scalar rather than a list: split it like an environment value.
            let text = reader.string(forKey: configKey, isSecret: key.isSecret)
            guard let text, !failures.takeFailure(of: key.name) else {
                throw invalid(key.name, expected: "a list of strings or a comma-separated string", got: "another type")
            }
            items = text.split(separator: ",").map(String.init)
        }
        return items?.map(trimmingWhitespace).filter { !$0.isEmpty }
    }

    /// A secret from the key itself, else the file its `_file` key names, else the
    /// credentials directory; nil if none. An empty value counts as not set, so an
    /// empty variable doesn't hide the file.
    func secret(_ key: SecretKey) throws(ConfigError) -> Secret? {
        let direct = try lookup(key.name, expecting: "a string", isSecret: true) {
            $0.string(forKey: $1, isSecret: true)
        }
        if let direct, !direct.isEmpty {
            return Secret(direct)
        }
        let path = try text(key.fileKey)
        if !path.isEmpty {
            return try Self.secret(fromFile: path, key: key.fileKey.name)
        }
        if let credentialsDirectory {
            let path = credentialsDirectory + "/" + key.credentialName
            // LoadCredential= may provide only some credentials: a missing one is not set.
            return try Self.secret(fromFile: path, key: key.name, missingMeansUnset: true)
        }
        return nil
    }

    // MARK: Named upstreams

    /// Refuses `upstreams.<name>.*` keys, in any layer, of a name not in `upstreams.names`
    /// (a typo there would otherwise leave an upstream silently unconfigured).
    func checkUpstreamKeys(declared names: [String]) throws(ConfigError) {
        let known = Set(names)
        let namesKey = SettingKeys.upstreamsNames.name
        for key in fileKeys + overrides.keys.sorted() {
            guard let name = SettingKeys.upstreamField(of: key)?.name ?? upstreamSection(key) else { continue }
            guard known.contains(name) else {
                throw ConfigError(key: key, message: "the upstream \"\(name)\" is not in \(namesKey)\(source(of: key))")
            }
        }
        let prefix = SettingsLoader.environmentVariableName(forKey: "upstreams") + "_"
        let allowed = Set(
            [namesKey, SettingKeys.routes.name].map(SettingsLoader.environmentVariableName)
                + names.flatMap { name in
                    SettingKeys.upstreamFields.map {
                        SettingsLoader.environmentVariableName(forKey: SettingKeys.upstreamKey(name, $0.field))
                    }
                })
        for variable in environment.keys.sorted() where variable.hasPrefix(prefix) && !allowed.contains(variable) {
            throw ConfigError(
                key: variable,
                message: "not a key of an upstream in \(namesKey) (CHATQUEUE_UPSTREAMS_<NAME>_<FIELD>, the name upper-cased)")
        }
    }

    /// `upstreams.<name>` written alone (an empty section).
    private func upstreamSection(_ key: String) -> String? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "upstreams", !RoutingTable.reservedNames.contains(String(parts[1])) else {
            return nil
        }
        return String(parts[1])
    }

    // MARK: Errors

    /// An error for a value of `key` that isn't allowed, saying which layer set it.
    func invalid(_ key: String, expected: String, got: String) -> ConfigError {
        ConfigError(key: key, message: "expected \(expected), got \(got)\(source(of: key))")
    }

    /// `error` with the layer that set its key added to the message.
    func addingSource(to error: ConfigError) -> ConfigError {
        ConfigError(key: error.key, message: error.message + source(of: error.key))
    }

    private func source(of key: String) -> String {
        if overrides[key] != nil { return " (from a command-line override)" }
        let variable = SettingsLoader.environmentVariableName(forKey: key)
        if environment[variable] != nil { return " (from \(variable))" }
        if let configFile { return " (from \(configFile))" }
        return ""
    }

    private static func unknownKey(_ key: String, source: String) -> ConfigError {
        let hint = SettingKeys.suggestion(for: key).map { "; did you mean \($0)?" } ?? ""
        return ConfigError(key: key, message: "unknown key in \(source)\(hint)")
    }

    // MARK: Lookups

    private func lookup<Value>(
        _ key: String,
        expecting expectation: String,
        isSecret: Bool = false,
        _ read: (ConfigReader, ConfigKey) -> Value?
    ) throws(ConfigError) -> Value? {
        let value = read(reader, ConfigKey(key))
        guard failures.takeFailure(of: key) else { return value }
        throw invalid(key, expected: expectation, got: isSecret ? "another type" : describeRawValue(of: key))
    }

    /// The value of `key` as written, for "got …" in messages (never for secrets).
    private func describeRawValue(of key: String) -> String {
        let text = reader.string(forKey: ConfigKey(key))
        // Only a YAML list can't be read as a string.
        guard let text, !failures.takeFailure(of: key) else { return "a list" }
        return String(reflecting: text)
    }

    // MARK: Files

    private static func secret(fromFile path: String, key: String, missingMeansUnset: Bool = false)
        throws(ConfigError) -> Secret?
    {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.read(path, limit: secretFileLimit)
        } catch {
            if missingMeansUnset, error.isNotFound { return nil }
            throw ConfigError(key: key, message: "cannot read \(path): \(error.reason)")
        }
        guard var text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(key: key, message: "\(path) is not UTF-8 text")
        }
        // Files written by editors and `echo` end with a newline that isn't part of the secret.
        while let last = text.last, last.isNewline { text.removeLast() }
        guard !text.isEmpty else { throw ConfigError(key: key, message: "\(path) is empty") }
        return Secret(text)
    }

    /// The YAML file as a provider and the keys it sets, or nil when it holds nothing but comments.
    private static func yamlProvider(path: String) throws(ConfigError) -> (provider: any ConfigProvider, keys: [String])? {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.read(path, limit: configFileLimit)
        } catch {
            throw ConfigError(key: ConfigError.fileKey, message: "cannot read config file \(path): \(error.reason)")
        }
        // YAMLSnapshot rejects a document without a mapping; a file of comments means "all defaults".
        guard hasYAMLContent(bytes) else { return nil }

        // YAMLSnapshot doesn't list its keys, but asks its secrets specifier about each
        // one while parsing: collect them there to reject unknown (misspelled) keys.
        let seenKeys = KeyCollector()
        let options = YAMLSnapshot.ParsingOptions(
            secretsSpecifier: .dynamic { key, _ in
                seenKeys.insert(key)
                return SettingKeys.isSecret(key)
            }
        )
        let snapshot: YAMLSnapshot
        do {
            snapshot = try YAMLSnapshot(
                data: bytes.span.bytes, providerName: "config file \(path)", parsingOptions: options)
        } catch {
            throw ConfigError(
                key: ConfigError.fileKey, message: "cannot parse config file \(path): \(parseErrorSummary(error))")
        }
        for key in seenKeys.sorted() where !SettingKeys.isKnown(key) {
            guard SettingKeys.isSection(key) else { throw unknownKey(key, source: path) }
            // A section whose keys are all commented out (`log:` alone) is null: nothing set.
            let value = try? snapshot.value(forKey: AbsoluteConfigKey(ConfigKey(key)), type: .string).value?.content
            guard let value, [.string(""), .string("~"), .string("null")].contains(value) else {
                throw ConfigError(key: key, message: "expected a mapping of \(key).* keys in \(path)")
            }
        }
        return (SnapshotProvider(fixedSnapshot: snapshot), seenKeys.sorted())
    }

    /// A YAML parse error on one line, without the parts where Yams quotes the file
    /// (they may hold a secret): the line and column are enough to find the problem.
    private static func parseErrorSummary(_ error: any Error) -> String {
        var lines = "\(error)".split(separator: "\n").map { trimmingWhitespace(String($0)) }
        // Syntax errors end with the offending line and a caret under the column.
        if lines.count >= 2, lines.last == "^" { lines.removeLast(2) }
        var summary = lines.filter { !$0.isEmpty }.joined(separator: " ")
        // Duplicate-key errors end with "Context:" and the mapping's text.
        if let context = summary.firstRange(of: "Context:") { summary = String(summary[..<context.lowerBound]) }
        summary = trimmingWhitespace(summary)
        while summary.hasSuffix(":") { summary.removeLast() }
        return summary
    }

    /// Whether a YAML file has anything besides comments, blank lines and document markers.
    private static func hasYAMLContent(_ bytes: [UInt8]) -> Bool {
        String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).contains { line in
            let content = trimmingWhitespace(String(line))
            return !content.isEmpty && !content.hasPrefix("#") && content != "---" && content != "..."
        }
    }
}

/// Records the keys whose lookup failed: a provider threw (a value of the wrong type)
/// or the value didn't convert. Errors are only recorded, never logged, so secrets stay out.
private final class LookupFailures: AccessReporter, Sendable {
    private let failedKeys = Mutex<Set<String>>([])

    func report(_ event: AccessEvent) {
        let providerFailed = event.providerResults.contains {
            if case .failure = $0.result { true } else { false }
        }
        guard providerFailed || event.conversionError != nil else { return }
        let key = event.metadata.key.components.joined(separator: ".")
        failedKeys.withLock { _ = $0.insert(key) }
    }

    /// Whether a lookup of `key` failed since the last call; forgets it.
    func takeFailure(of key: String) -> Bool {
        failedKeys.withLock { $0.remove(key) != nil }
    }
}

/// The keys met while parsing a file.
private final class KeyCollector: Sendable {
    private let keys = Mutex<Set<String>>([])

    func insert(_ key: String) {
        keys.withLock { _ = $0.insert(key) }
    }

    func sorted() -> [String] {
        keys.withLock { $0.sorted() }
    }
}

func trimmingWhitespace(_ text: String) -> String {
    String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
}
