// swift-tools-version:6.0
// fluxgate: an LLM API proxy. Layout fixed by the design card:
//   Sources/master  -> `fluxgate`        (the master: config, listeners, supervision)
//   Sources/worker  -> `fluxgate-worker` (a stateless worker: the HTTP data plane)
//   Sources/Common  -> shared mechanism (the configuration model, JSON, logging, syscalls)
//   Sources/ConfigLoading -> the YAML file to a validated Configuration: the master's alone, so
//                      the worker (which receives its configuration as JSON) never links libyaml
// System libraries come from Debian through pkg-config; nothing vendors BoringSSL.
import PackageDescription

let package = Package(
    name: "fluxgate",
    products: [
        .executable(name: "fluxgate", targets: ["FluxgateMaster"]),
        .executable(name: "fluxgate-worker", targets: ["FluxgateWorker"]),
    ],
    // Pinned exactly. swift-nio because Sources/worker/Server/SocketOutput.swift reads the
    // channel's `_channelCore`, which NIO's docs/public-api.md does not cover: it was checked
    // against 2.101.3, and WorkerTests' DirectWriteProcessTests fails if the direct path turns off.
    // The other two so that a build resolves the same code everywhere.
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // The usage reader decodes a copy of compressed responses (gzip/deflate, br, zstd).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CBrotli", pkgConfig: "libbrotlidec", providers: [.apt(["libbrotli-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // The rate limits' Redis client: hiredis's command formatter and reply reader over NIO.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        // Brotli's encoder, for the tests that compress the usage corpus; the worker never links it.
        .systemLibrary(name: "CBrotliEncoder", pkgConfig: "libbrotlienc", providers: [.apt(["libbrotli-dev"])]),
        // SSE2 byte classes as bit masks for the usage reader's scans (header only, nothing to link).
        .systemLibrary(name: "CByteClasses"),
        // Linux headers Glibc's module leaves out (signalfd, inotify, mman): no library to link.
        .systemLibrary(name: "CLinux"),
        .target(
            name: "Common",
            dependencies: [
                "CLinux",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // libyaml and the PEM checks of the loader (OpenSSL) for the master; nothing here is
        // linked into the worker.
        .target(name: "ConfigLoading", dependencies: ["Common", "CYAML", "COpenSSL"]),
        .executableTarget(
            name: "FluxgateMaster",
            dependencies: [
                // libsystemd (sd_notify, sd_watchdog_enabled) is linked into the master alone.
                "Common", "ConfigLoading", "CSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/master"
        ),
        .executableTarget(
            name: "FluxgateWorker",
            dependencies: [
                "Common", "COpenSSL", "CZlib", "CBrotli", "CZstd", "CHiredis", "CByteClasses",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/worker",
            // Dynamic exclusivity checks cost ~4% of a proxied request's CPU (bench/profile.sh);
            // the worker is single-threaded per event loop and the debug build keeps them on.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        // bench/metrics-render.sh: how long the master takes to render /metrics for 10,000 series.
        .executableTarget(name: "FluxgateMetricsBench", dependencies: ["Common", "CLinux"], path: "bench/metrics-render"),
        // Helpers for process-level tests: locating the built binaries, child processes, temp dirs.
        .target(
            name: "TestSupport",
            dependencies: [
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "CommonTests", dependencies: ["Common", "TestSupport"]),
        .testTarget(name: "ConfigLoadingTests", dependencies: ["ConfigLoading", "Common", "TestSupport"]),
        .testTarget(name: "MasterTests", dependencies: ["FluxgateMaster", "ConfigLoading", "Common", "TestSupport"]),
        .testTarget(
            name: "WorkerTests",
            dependencies: [
                "FluxgateWorker", "Common", "TestSupport", "CLinux", "CZlib", "CBrotliEncoder", "CZstd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            // The usage conformance corpus is read from the source tree by path (UsageCorpus.swift).
            exclude: ["Usage/Corpus"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
