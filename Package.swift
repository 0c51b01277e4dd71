// swift-tools-version: 6.2
import PackageDescription

// OpenVINO's C API comes from the pinned PyPI wheel that `scripts/setup` unpacks into .deps/openvino.
// The wheel has no pkg-config file and SwiftPM drops -rpath from pkg-config output anyway, so the
// include path, library path and run-time path are given here, relative to this package.
let openVINO = "\(Context.packageDirectory)/.deps/openvino"
let openVINOSwift: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I\(openVINO)/include"])]
let openVINOLinker: [LinkerSetting] = [
    .unsafeFlags(["-L\(openVINO)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(openVINO)/lib"])
]
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "vantage",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vantage", targets: ["vantage"]),
        .library(name: "VantageSDK", targets: ["VantageSDK"]),
        .executable(name: "people-counter", targets: ["PeopleCounter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        // Device identity and mutual TLS between agent and server (both already pulled in by the packages above).
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Prometheus metrics (`/metrics`) of the server and the agent, through swift-metrics.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries: module maps and shims only.
        .systemLibrary(
            name: "CFFmpeg", pkgConfig: "libavformat libavcodec libavutil libswscale",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev"])]),
        .systemLibrary(name: "COpenVINO"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(
            name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        // GNU-only libc calls Swift cannot import (renameat2).
        .target(name: "CVantageShims"),

        // Libraries: all the logic.
        // What several modules share (JSON values, time formats, SQLite, the outputs document, model specs):
        // a leaf, so that every other module may depend on it.
        .target(name: "VantageCore", dependencies: ["CSQLite"], swiftSettings: swift6),
        .target(
            name: "VantageMedia",
            dependencies: ["CFFmpeg", "VantageCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swift6),
        .target(
            name: "VantageInference",
            dependencies: ["COpenVINO", "VantageCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .target(
            name: "VantageApp",
            dependencies: ["VantageCore", .product(name: "ZIPFoundation", package: "ZIPFoundation")],
            swiftSettings: swift6),
        .target(name: "VantageProtocol", swiftSettings: swift6),
        // What every HTTP listener shares: idle timeout, connection cap, the open-file limit.
        .target(
            name: "VantageListeners",
            dependencies: [
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swift6),
        // Tracking, zones and counting lines: plain Swift on VantageCore's geometry, so the SDK can use it in apps.
        .target(name: "VantageAnalytics", dependencies: ["VantageCore"], swiftSettings: swift6),
        // Events on their way out: the sink outbox, rules, and the MQTT, S3 and webhook sinks.
        .target(
            name: "VantageOutputs",
            dependencies: [
                "CMosquitto", "VantageCore", "VantageAnalytics",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swift6),
        .target(
            name: "VantageRuntime",
            dependencies: [
                "VantageMedia", "VantageInference", "VantageApp", "VantageProtocol", "VantageAnalytics",
                "VantageOutputs", "VantageCore", "VantageListeners", "CVantageShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .target(
            name: "VantageSDK", dependencies: ["VantageProtocol", "VantageAnalytics", "VantageCore"],
            swiftSettings: swift6),
        // The control plane: the API's resource types (shared by server and client), the server, the client.
        .target(name: "VantageAPI", dependencies: ["VantageCore"], swiftSettings: swift6),
        .target(
            name: "VantageServer",
            dependencies: [
                "VantageCore", "VantageAPI", "VantageApp", "VantageListeners",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swift6),
        // The appliance daemon: enrollment, desired-state reconciliation, outbox, health.
        .target(
            name: "VantageAgent",
            dependencies: [
                "VantageCore", "VantageAPI", "VantageApp", "VantageRuntime", "VantageOutputs", "VantageListeners",
                "CVantageShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .target(
            name: "VantageClient",
            dependencies: ["VantageCore", "VantageAPI", .product(name: "ZIPFoundation", package: "ZIPFoundation")],
            swiftSettings: swift6),

        // The one binary.
        .executableTarget(
            name: "vantage",
            dependencies: [
                "VantageRuntime", "VantageApp", "VantageInference", "VantageMedia", "VantageServer",
                "VantageClient", "VantageCore", "VantageAPI", "VantageAgent", "VantageListeners",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),

        // Example applications' code nodes (their manifests live beside them under examples/).
        .executableTarget(
            name: "PeopleCounter", dependencies: ["VantageSDK"],
            path: "examples/people-counter/packages/123456789012-people_counter_code-1.0/src",
            swiftSettings: swift6),

        // Fuzz targets (make fuzz, docs/fuzzing.md): their bodies, shared with FuzzRegressionTests, and the driver.
        .target(
            name: "VantageFuzz", dependencies: ["VantageProtocol", "VantageApp", "VantageCore"],
            swiftSettings: swift6),
        .executableTarget(
            name: "vantage-fuzz", dependencies: ["VantageFuzz"], path: "fuzz", exclude: ["run"], swiftSettings: swift6),

        // Benchmarks' load generators (make bench).
        .executableTarget(
            name: "agent-load",
            dependencies: [
                "VantageAgent", "VantageCore", "VantageAPI", "VantageClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/AgentLoad", swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),

        // The power-cut harness's workload and checker (scripts/power-cut, docs/reliability.md): the agent's own
        // file code (outbox, deployment folders, artifact cache, identity) driven until the "power" is cut.
        .executableTarget(
            name: "power-cut-workload",
            dependencies: [
                "VantageAgent", "VantageOutputs", "VantageCore", "VantageApp",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Tests/PowerCut/Workload", swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),

        // Tests.
        .testTarget(name: "VantageAppTests", dependencies: ["VantageApp", "VantageCore"], swiftSettings: swift6),
        .testTarget(
            name: "VantageMediaTests", dependencies: ["VantageMedia"], swiftSettings: swift6),
        .testTarget(
            name: "VantageInferenceTests", dependencies: ["VantageInference", "VantageCore", "VantageApp"],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .testTarget(
            name: "VantageRuntimeTests",
            dependencies: [
                "VantageRuntime", "VantageSDK", "VantageMedia", "VantageProtocol", "VantageCore",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .testTarget(
            name: "VantageServerTests",
            dependencies: [
                "VantageServer", "VantageCore", "VantageAPI", "VantageClient", "VantageApp", "VantageAgent",
                "VantageRuntime",
                "VantageMedia", "VantageListeners",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .testTarget(
            name: "VantageAgentTests",
            dependencies: [
                "VantageAgent", "VantageCore", "VantageAPI", "VantageServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .testTarget(
            name: "VantageAnalyticsTests",
            dependencies: ["VantageAnalytics", "VantageInference", "VantageMedia", "VantageCore"],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .testTarget(
            name: "VantageOutputsTests",
            dependencies: [
                "VantageOutputs", "VantageCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swift6),
        .testTarget(
            name: "EndToEndTests", dependencies: ["VantageApp"], swiftSettings: swift6),
        .testTarget(
            name: "FuzzRegressionTests",
            dependencies: ["VantageFuzz", "VantageApp", "VantageCore", "VantageProtocol"],
            swiftSettings: swift6),
    ]
)
