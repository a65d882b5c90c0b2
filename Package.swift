// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "esafety",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "esafetyd", targets: ["esafetyd"]),
        .executable(name: "esafety", targets: ["esafety"]),
        .library(name: "Classifier", targets: ["Classifier"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // The one C dependency: PCRE2 (8-bit code units), from Debian's libpcre2-dev.
        .systemLibrary(
            name: "CPCRE2",
            pkgConfig: "libpcre2-8",
            providers: [.apt(["libpcre2-dev"])]
        ),
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // Category lists, host/URL normalisation, the compiled tables, PCRE2 patterns,
        // verdicts with provenance, snapshots and lint. No sockets, no NIO.
        // Header-only C helpers (a prefetch hint) for the hot path.
        .target(name: "CShims"),
        .target(
            name: "Classifier",
            dependencies: ["CPCRE2", "CShims"],
            // The hot path mutates per-thread scratch state owned by one caller; dynamic
            // exclusivity checks cost ~5% there and guard nothing.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        // Byte-level parsers: Squid, dnsmasq/Pi-hole, BIND, unbound, JSON, syslog envelopes.
        .target(
            name: "LogFormats",
            dependencies: ["Classifier"],
            // The line pipeline runs per line on a worker's own parser and counters; the
            // dynamic exclusivity checks cost ~3% of ingest there and guard nothing.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        // Incidents: policy, de-duplication, the append-only hash-chained incident log.
        .target(
            name: "Incidents",
            dependencies: ["Classifier", "LogFormats", "CShims", "CCrypto", .product(name: "Logging", package: "swift-log")]
        ),
        // The running service: sockets, workers, reload, control socket, sd_notify, status.
        .target(
            name: "Daemon",
            dependencies: [
                "Classifier",
                "Incidents",
                "CShims",
                "LogFormats",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "esafety",
            dependencies: [
                "Classifier",
                "Incidents",
                "LogFormats",
                "Daemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "esafetyd",
            dependencies: [
                "Classifier",
                "Daemon",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "esafety-bench",
            dependencies: ["Classifier", "LogFormats", "Daemon", "Incidents", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/esafety-bench",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "ClassifierTests",
            dependencies: ["Classifier"],
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "LogFormatsTests", dependencies: ["LogFormats", "Classifier"]),
        .testTarget(name: "IncidentsTests", dependencies: ["Incidents", "LogFormats", "Classifier"], exclude: ["Fixtures"]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Incidents", "LogFormats", "Classifier"], exclude: ["Fixtures"]),
    ]
)
