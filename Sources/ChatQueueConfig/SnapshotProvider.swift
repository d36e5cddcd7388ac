import Configuration

/// A provider serving one fixed snapshot.
///
/// swift-configuration's `FileProvider` reads its file asynchronously, while settings
/// are loaded synchronously at startup; this serves a `YAMLSnapshot` built from bytes
/// the loader already read (and checked for unknown keys).
///
/// (swift-configuration builds with `NonisolatedNonsendingByDefault`, hence the
/// spelled-out `nonisolated(nonsending)` to match its protocol requirements.)
struct SnapshotProvider<Snapshot: ConfigSnapshot>: ConfigProvider {
    let fixedSnapshot: Snapshot

    var providerName: String { fixedSnapshot.providerName }

    func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        try fixedSnapshot.value(forKey: key, type: type)
    }

    func fetchValue(forKey key: AbsoluteConfigKey, type: ConfigType) async throws -> LookupResult {
        try fixedSnapshot.value(forKey: key, type: type)
    }

    nonisolated(nonsending) func watchValue<Return: ~Copyable>(
        forKey key: AbsoluteConfigKey,
        type: ConfigType,
        updatesHandler: nonisolated(nonsending) (
            _ updates: ConfigUpdatesAsyncSequence<Result<LookupResult, any Error>, Never>
        ) async throws -> Return
    ) async throws -> Return {
        try await watchValueFromValue(forKey: key, type: type, updatesHandler: updatesHandler)
    }

    func snapshot() -> any ConfigSnapshot {
        fixedSnapshot
    }

    nonisolated(nonsending) func watchSnapshot<Return: ~Copyable>(
        updatesHandler: nonisolated(nonsending) (
            _ updates: ConfigUpdatesAsyncSequence<any ConfigSnapshot, Never>
        ) async throws -> Return
    ) async throws -> Return {
        try await watchSnapshotFromSnapshot(updatesHandler: updatesHandler)
    }
}
