// swift-tools-version: 6.2
//
// libFuzzer targets for chatqueue's parsers of untrusted input. A package of
// its own so the fuzz builds (instrumented, sanitized) never slow the main
// `swift build` / `swift test`; build and run them with scripts/fuzz.sh
// (docs/fuzzing.md).
//
// Adding a target: a folder Sources/<Name>/ with a main.swift that defines
// `@_cdecl("LLVMFuzzerTestOneInput")` and calls `runLibFuzzer` on it, a seed
// corpus in corpus/<Name>/, and a line below.
import Foundation
import PackageDescription

/// Each fuzz target and the chatqueue modules it reads (all products of the root package).
let fuzzTargets: [(name: String, modules: [String])] = [
    ("FuzzJSON", ["ChatQueueCore"]),
    ("FuzzSSE", ["ChatQueueCore"]),
    ("FuzzRequestValidator", ["ChatQueueCore"]),
    ("FuzzRequestMetadata", ["ChatQueueCore", "ChatQueueAMQP", "ChatQueueWorker"]),
    ("FuzzRetryAfter", ["ChatQueueCore"]),
    ("FuzzUpstreamResponse", ["ChatQueueCore"]),
    ("FuzzRequestStateMachine", ["ChatQueueCore"]),
    ("FuzzCancelsAndRoutes", ["ChatQueueCore"]),
]

// A path dependency's identity is its folder's name, which depends on where the clone lives.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = root.lastPathComponent.lowercased()

let package = Package(
    name: "chatqueue-fuzz",
    products: fuzzTargets.map { .executable(name: $0.name, targets: [$0.name]) },
    dependencies: [.package(path: root.path)],
    targets: [
        .systemLibrary(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
        + fuzzTargets.map { target in
            .executableTarget(
                name: target.name,
                dependencies: ["FuzzSupport"] + target.modules.map { .product(name: $0, package: rootIdentity) },
                swiftSettings: [.swiftLanguageMode(.v6)])
        }
)
