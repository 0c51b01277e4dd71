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
    ],
    targets: [
        // C libraries: module maps and shims only.
        .systemLibrary(
            name: "CFFmpeg", pkgConfig: "libavformat libavcodec libavutil libswscale",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev"])]),
        .systemLibrary(name: "COpenVINO"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // Libraries: all the logic.
        .target(
            name: "VantageMedia",
            dependencies: ["CFFmpeg", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swift6),
        .target(
            name: "VantageInference",
            dependencies: ["COpenVINO", "VantageApp", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .target(name: "VantageApp", swiftSettings: swift6),
        .target(name: "VantageProtocol", swiftSettings: swift6),
        .target(
            name: "VantageRuntime",
            dependencies: [
                "VantageMedia", "VantageInference", "VantageApp", "VantageProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .target(name: "VantageSDK", dependencies: ["VantageProtocol"], swiftSettings: swift6),
        // The control plane: the API's resource types (shared by server and client), the server, the client.
        .target(name: "VantageAPI", swiftSettings: swift6),
        .target(
            name: "VantageServer",
            dependencies: [
                "VantageAPI", "VantageApp", "CSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: swift6),
        .target(
            name: "VantageClient",
            dependencies: ["VantageAPI", .product(name: "ZIPFoundation", package: "ZIPFoundation")],
            swiftSettings: swift6),

        // The one binary.
        .executableTarget(
            name: "vantage",
            dependencies: [
                "VantageRuntime", "VantageApp", "VantageInference", "VantageMedia", "VantageServer",
                "VantageClient", "VantageAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),

        // Example applications' code nodes (their manifests live beside them under examples/).
        .executableTarget(
            name: "PeopleCounter", dependencies: ["VantageSDK"],
            path: "examples/people-counter/packages/123456789012-people_counter_code-1.0/src",
            swiftSettings: swift6),

        // Tests.
        .testTarget(name: "VantageAppTests", dependencies: ["VantageApp"], swiftSettings: swift6),
        .testTarget(
            name: "VantageMediaTests", dependencies: ["VantageMedia"], swiftSettings: swift6),
        .testTarget(
            name: "VantageInferenceTests", dependencies: ["VantageInference", "VantageApp"],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .testTarget(
            name: "VantageRuntimeTests",
            dependencies: [
                "VantageRuntime", "VantageSDK", "VantageMedia", "VantageProtocol",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swift6 + openVINOSwift, linkerSettings: openVINOLinker),
        .testTarget(
            name: "VantageServerTests",
            dependencies: [
                "VantageServer", "VantageAPI", "VantageClient", "VantageApp",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: swift6),
        .testTarget(
            name: "EndToEndTests", dependencies: ["VantageApp"], swiftSettings: swift6),
    ]
)
