// swift-tools-version: 6.0
import PackageDescription

// Linux only: esafetyd is a Linux daemon (SO_PEERCRED, accept4, eventfd, systemd), built and
// tested on Debian 12. No other platform is claimed, so there are no #if branches for one.
//
// Dependencies point one way:
//   CShims, CPCRE2, CCrypto <- SystemSupport <- Classifier <- LogFormats <- Pipeline
//   <- Incidents <- IncidentIndex, Reports <- Daemon <- esafetyd, esafety, esafety-bench
//   CSQLiteReset <- IncidentIndex
//   Incidents <- Central (PostgreSQL) <- esafety
//   IncidentIndex, Reports, Central <- Console (Hummingbird) <- esafety
//   CShims <- Threads <- Incidents, Daemon
//
// The hot path's modules (Classifier, LogFormats, Pipeline) are built with
// -enforce-exclusivity=unchecked: they mutate per-thread scratch state owned by one caller,
// and the dynamic exclusivity checks cost 3-5% of ingest there while guarding nothing. That
// is an unsafe flag, which SwiftPM refuses in a package used as a versioned dependency, so
// this package vends no library product: its modules are esafety's own, not an API.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"])]

let package = Package(
    name: "esafety",
    products: [
        .executable(name: "esafetyd", targets: ["esafetyd"]),
        .executable(name: "esafety", targets: ["esafety"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // PCRE2 (8-bit code units), from Debian's libpcre2-dev. Only PCRE2Regex.swift imports it.
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        // OpenSSL's libcrypto, for the incident chain's SHA-256. Only SHA256.swift imports it.
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // What Swift cannot spell itself: a prefetch hint, peer credentials, accept4, eventfd,
        // thread names. Linux calls, compiled with _GNU_SOURCE.
        .target(name: "CShims", cSettings: [.define("_GNU_SOURCE")]),
        // What every module may use: files, the clock and RFC 3339 time text, JSON text,
        // escaping text for terminals, child processes.
        .target(name: "SystemSupport", dependencies: ["CShims"]),
        // Named POSIX threads and eventfd wake-ups, for the daemon's long-lived workers (not
        // for the classifier, which runs on whatever thread calls it).
        .target(name: "Threads", dependencies: ["CShims"]),
        // Classification only: host/URL normalisation, category lists and metadata, the
        // compiled tables, PCRE2 patterns, verdicts with provenance, snapshots and lint.
        .target(name: "Classifier", dependencies: ["CPCRE2", "CShims", "SystemSupport"], swiftSettings: hotPath),
        // Pure byte parsers: Squid, dnsmasq/Pi-hole, BIND, unbound, JSON lines, syslog
        // envelopes, log times -> one ParsedRequest.
        .target(name: "LogFormats", dependencies: ["Classifier", "SystemSupport"], swiftSettings: hotPath),
        // Parse and classify: list generations (reload), the match sink, the line pipeline
        // and its counters, replay.
        .target(name: "Pipeline", dependencies: ["Classifier", "LogFormats", "SystemSupport"], swiftSettings: hotPath),
        // Incidents: the typed records, policy, de-duplication, the hash-chained incident log,
        // the workflow, alerts.
        .target(
            name: "Incidents",
            dependencies: [
                "Classifier", "LogFormats", "Pipeline", "SystemSupport", "Threads", "CShims", "CCrypto",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // SQLite's reset of a database to empty (a variadic call Swift cannot make). Only the
        // index uses it, so only what links the index links SQLite.
        .target(name: "CSQLiteReset", linkerSettings: [.linkedLibrary("sqlite3")]),
        // The incident log's SQLite index: derived from the log, followed as it grows, rebuilt
        // when it disagrees; what the tools query.
        .target(
            name: "IncidentIndex",
            dependencies: [
                "Classifier", "Incidents", "SystemSupport", "CSQLiteReset",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The report: aggregation of incidents and counters, and its renderers (text, HTML,
        // JSON, CSV).
        .target(name: "Reports", dependencies: ["Incidents", "LogFormats", "SystemSupport"]),
        // The running service: sockets, workers, reload, control socket, sd_notify, status,
        // the counters file.
        .target(
            name: "Daemon",
            dependencies: [
                "Classifier", "Incidents", "IncidentIndex", "CShims", "LogFormats", "Pipeline", "SystemSupport",
                "Threads",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // PAM (libpam), for the console's log-in with a school's directory accounts.
        .target(
            name: "CPAM",
            linkerSettings: [.linkedLibrary("pam")]
        ),
        // The safeguarding console: accounts, sessions, the pages and forms over a school's index
        // or a trust's central store, the access log of every view. Served by `esafety web`, never inside esafetyd.
        .target(
            name: "Console",
            dependencies: [
                "CPAM", "Central",
                "Classifier", "Incidents", "IncidentIndex", "Reports", "SystemSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // A trust's central store: the PostgreSQL schema with its roles and row-level security,
        // and the forwarder that ships a site's incident log to it.
        .target(
            name: "Central",
            dependencies: [
                "Incidents", "LogFormats", "SystemSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "esafety",
            dependencies: [
                "Classifier", "Incidents", "IncidentIndex", "LogFormats", "Pipeline", "Reports", "Daemon",
                "Console", "Central", "SystemSupport", "Threads",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .executableTarget(
            name: "esafetyd",
            dependencies: [
                "Classifier", "Daemon", "SystemSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "esafety-bench",
            dependencies: [
                "Classifier", "LogFormats", "Pipeline", "Daemon", "Incidents", "SystemSupport", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/esafety-bench",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // libFuzzer targets for every reader of untrusted bytes (scripts/fuzz builds them with
        // --sanitize=fuzzer -DFUZZING; an ordinary build only prints how to run them).
        .executableTarget(
            name: "esafety-fuzz",
            dependencies: ["Classifier", "LogFormats", "Incidents", "Daemon", "SystemSupport"],
            path: "Fuzz/esafety-fuzz"
        ),
        // The helpers every test target shares, one copy each.
        .target(
            name: "TestSupport",
            dependencies: ["Classifier", "Pipeline"],
            path: "Tests/TestSupport"
        ),
        // Unit tests, one target per module.
        .testTarget(name: "ClassifierTests", dependencies: ["Classifier", "SystemSupport", "TestSupport"]),
        .testTarget(
            name: "LogFormatsTests",
            dependencies: ["LogFormats", "Pipeline", "Classifier", "SystemSupport", "TestSupport"]
        ),
        .testTarget(
            name: "IncidentsTests",
            dependencies: ["Incidents", "LogFormats", "Pipeline", "Classifier", "SystemSupport", "TestSupport"]
        ),
        .testTarget(
            name: "IncidentIndexTests",
            dependencies: [
                "IncidentIndex", "Incidents", "Reports", "Classifier", "Pipeline", "SystemSupport", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "ReportsTests",
            dependencies: ["Reports", "Incidents", "LogFormats", "SystemSupport", "TestSupport"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "ConsoleTests",
            dependencies: ["Console", "Incidents", "IncidentIndex", "SystemSupport", "TestSupport"]
        ),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Incidents", "SystemSupport", "TestSupport"]),
        // Everything that runs a built executable (esafetyd, esafety) or a real peer (Squid,
        // dnsmasq, logrotate, Chromium...), against real sockets and files.
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "Daemon", "Incidents", "IncidentIndex", "LogFormats", "Pipeline", "Classifier", "SystemSupport",
                "TestSupport", "Central",
            ],
            exclude: ["Fixtures"]
        ),
    ]
)
