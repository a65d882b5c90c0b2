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
    ],
    targets: [
        // The one C dependency: PCRE2 (8-bit code units), from Debian's libpcre2-dev.
        .systemLibrary(
            name: "CPCRE2",
            pkgConfig: "libpcre2-8",
            providers: [.apt(["libpcre2-dev"])]
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
        .target(name: "LogFormats", dependencies: ["Classifier"]),
        .executableTarget(
            name: "esafety",
            dependencies: [
                "Classifier",
                "LogFormats",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "esafetyd",
            dependencies: [
                "Classifier",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "esafety-bench",
            dependencies: ["Classifier", "LogFormats"],
            path: "Benchmarks/esafety-bench",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "ClassifierTests",
            dependencies: ["Classifier"],
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "LogFormatsTests", dependencies: ["LogFormats", "Classifier"]),
    ]
)
