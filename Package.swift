// swift-tools-version: 6.2
//
// chatqueue: a RabbitMQ worker that answers chat completion requests through a
// DeepSeek-compatible `/chat/completions` API.
//
// Layout (one folder per architectural part):
//   CRabbitMQ, CCurl        system libraries (module map + typed shim for what Swift can't import)
//   CLinux                  Linux headers Glibc's Swift module leaves out (epoll)
//   ChatQueueSystem         the system-call layer: checked calls (EINTR, EAGAIN as a value), SystemError, clocks, file I/O
//   ChatQueueCore           pure logic: JSON, SSE parsing, validation, assembly, error mapping (no I/O)
//   ChatQueueConfig         settings: YAML file < environment < flags, secrets from files
//   ChatQueueAMQP           rabbitmq-c connections, frame-level delivery assembly, publishing
//   ChatQueueHTTP           libcurl multi/easy handles driving upstream transfers
//   ChatQueueWorker         the single-threaded event loop tying the above together
//   ChatQueueMockUpstream   a DeepSeek-like fake API (SwiftNIO) for demos, tests and benchmarks
//   ChatQueueBench          the benchmark harness: load generator, echo ceiling, /proc sampling, reports
//   chatqueue               the command-line executable
import PackageDescription

// Swift 6 language mode and no warnings: a warning in our own targets fails the build
// (dependencies are not affected: SwiftPM applies warning control to root packages only).
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "chatqueue",
    products: [
        .executable(name: "chatqueue", targets: ["chatqueue"]),
        // For the fuzz targets in Fuzz/ (a package of its own, so they never slow this build).
        .library(name: "ChatQueueCore", targets: ["ChatQueueCore"]),
        .library(name: "ChatQueueAMQP", targets: ["ChatQueueAMQP"]),
        .library(name: "ChatQueueWorker", targets: ["ChatQueueWorker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.0.0", traits: ["YAML"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev", "libssl-dev"])]
        ),
        .systemLibrary(name: "CLinux"),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(
            name: "ChatQueueCore",
            swiftSettings: strict
        ),
        .target(
            name: "ChatQueueSystem",
            swiftSettings: strict
        ),
        .target(
            name: "ChatQueueConfig",
            dependencies: [
                "ChatQueueCore", "ChatQueueSystem",
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ChatQueueAMQP",
            dependencies: ["CRabbitMQ", "ChatQueueSystem", "ChatQueueCore"],
            swiftSettings: strict
        ),
        .target(
            name: "ChatQueueHTTP",
            dependencies: ["CCurl"],
            swiftSettings: strict
        ),
        .target(
            name: "ChatQueueWorker",
            dependencies: [
                "ChatQueueCore", "ChatQueueSystem", "ChatQueueConfig", "ChatQueueAMQP", "ChatQueueHTTP", "CLinux",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ChatQueueMockUpstream",
            dependencies: [
                "ChatQueueCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ChatQueueBench",
            dependencies: ["ChatQueueCore", "ChatQueueSystem", "ChatQueueAMQP"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "chatqueue",
            dependencies: [
                "ChatQueueCore", "ChatQueueConfig", "ChatQueueAMQP", "ChatQueueWorker", "ChatQueueMockUpstream",
                "ChatQueueBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // One test target per module, plus the integration tests (a real RabbitMQ, real worker processes).
        .testTarget(
            name: "ChatQueueCoreTests",
            dependencies: ["ChatQueueCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ChatQueueSystemTests",
            dependencies: ["ChatQueueSystem"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ChatQueueConfigTests",
            dependencies: ["ChatQueueConfig", "ChatQueueCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ChatQueueAMQPTests",
            dependencies: ["ChatQueueAMQP", "CRabbitMQ"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ChatQueueHTTPTests",
            dependencies: ["ChatQueueHTTP", "CCurl"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ChatQueueWorkerTests",
            // The mock upstream stands in for an OTLP collector in the span exporter's tests.
            dependencies: ["ChatQueueWorker", "ChatQueueSystem", "ChatQueueAMQP", "ChatQueueCore", "ChatQueueMockUpstream"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ChatQueueMockUpstreamTests",
            dependencies: ["ChatQueueMockUpstream", "ChatQueueCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ChatQueueBenchTests",
            dependencies: ["ChatQueueBench", "ChatQueueCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ChatQueueIntegrationTests",
            dependencies: ["ChatQueueCore", "ChatQueueAMQP", "ChatQueueMockUpstream", "ChatQueueBench", "chatqueue"],
            swiftSettings: strict
        ),
    ]
)
