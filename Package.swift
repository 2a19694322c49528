// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "AuthLedger",
    platforms: [.macOS(.v14)],
    products: [
        // The signed journal, embeddable by other Swift programs.
        .library(name: "Ledger", targets: ["LedgerCore", "LedgerJournal", "LedgerLMDB"]),
        .executable(name: "authledger", targets: ["authledger"]),
        .executable(name: "authledger-replay", targets: ["authledger-replay"]),
        .executable(name: "authledger-bench", targets: ["authledger-bench"]),
        .executable(name: "authledger-fuzz", targets: ["authledger-fuzz"]),
    ],
    traits: [
        // The OTLP exporter of `authledger serve`'s traces (swift-otel). On by default; the sanitizer builds
        // (tools/sanitizers) leave it out: swift-otel 1.6 does not compile with -sanitize=thread (a
        // region-isolation error in its batch log processor). Without it, spans are still made by our code
        // through swift-distributed-tracing; `serve` just has no exporter to send them to.
        .trait(name: "OTLPExport", description: "Export traces over OTLP from authledger serve (swift-otel)."),
        .default(enabledTraits: ["OTLPExport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Outbound HTTP: back-channel logout tokens POSTed to clients.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Traces: the tracing API (our spans) and its OTLP backend (OTLP/HTTP only: the gRPC exporter and
        // its dependencies are left out).
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `swift package generate-documentation`: the DocC documentation of the Ledger library (tools/docs).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found with pkg-config; the tools/ scripts install them with apt-get.
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),

        // Pure ledger core: envelope, canonical encoding, signing, Merkle tree, checkpoints, verification.
        .target(name: "LedgerCore", dependencies: ["CSodium", .product(name: "Crypto", package: "swift-crypto")]),
        // The journal: group-committed appends, projections, snapshots, verification, keys on disk; kept in a
        // JournalStorage.
        .target(name: "LedgerJournal", dependencies: ["LedgerCore", .product(name: "Tracing", package: "swift-distributed-tracing")]),
        // The embedded store: the journal in an LMDB environment, one writing process.
        .target(name: "LedgerLMDB", dependencies: ["LedgerJournal", "CLMDB"]),
        // A store in memory, for unit tests of the layers above the store (never a journal's home).
        .target(name: "LedgerMemory", dependencies: ["LedgerJournal"]),
        // The shared store: the journal in PostgreSQL, appended to by many processes (postgres-nio).
        .target(
            name: "LedgerPostgres",
            dependencies: [
                "LedgerJournal",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Pure authorization logic: tenant model, configuration events, the authorize decision and its rules.
        .target(
            name: "AuthCore",
            dependencies: ["LedgerCore", "CSodium", .product(name: "Yams", package: "Yams")]
        ),
        // Tokens: JWT signing keys (RS256, EdDSA), JWKS, minting access and ID tokens. No I/O but the key file.
        .target(
            name: "AuthTokens",
            dependencies: [
                "AuthCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // HTML with every value escaped: the server's pages and the incident report.
        .target(name: "PageMarkup"),
        // The incident report: counts and anomalies from a stretch of the journal, drawn as one HTML page.
        .target(name: "IncidentReport", dependencies: ["AuthCore", "LedgerCore", "PageMarkup"]),
        // The investigation console's pages: the forensics commands' answers as HTML, linked together.
        .target(name: "InvestigationConsole", dependencies: ["LedgerCore", "PageMarkup"]),
        // AuthLedger's state in the journal: event appends and the projections the server reads.
        // No store driver: the executables (and the server, for its archives) choose LMDB or PostgreSQL.
        .target(
            name: "AuthJournal",
            dependencies: ["AuthCore", "LedgerJournal", .product(name: "Tracing", package: "swift-distributed-tracing")]),
        // The HTTP server: Hummingbird routes, pages, cookies. Decisions come from AuthCore.
        .target(
            name: "AuthServer",
            dependencies: [
                "AuthCore", "AuthJournal", "AuthTokens", "AuthStreams", "PageMarkup",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),

        // Log streams: the journal's events pushed, in order and at least once, to an HTTP receiver.
        .target(
            name: "AuthStreams",
            dependencies: [
                "AuthJournal", "LedgerJournal",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),

        // What the command-line tools share: journal option, exit codes, output formats.
        .target(
            name: "LedgerCommandSupport",
            dependencies: [
                "LedgerJournal", "LedgerLMDB", "LedgerPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .executableTarget(
            name: "authledger",
            dependencies: [
                "LedgerJournal", "LedgerLMDB", "LedgerPostgres", "AuthCore", "AuthJournal", "AuthServer", "AuthStreams", "AuthTokens",
                "LedgerCommandSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTLPExport"])),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .executableTarget(
            name: "authledger-replay",
            dependencies: [
                "LedgerLMDB", "AuthJournal", "AuthCore", "IncidentReport", "InvestigationConsole",
                "LedgerCommandSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // Load generators: the benchmarks and their raw baselines (libsodium, LMDB, RSA through swift-crypto's
        // _RSA, the primitive of the RS256 tokens), the journal filler and the crash-test appender.
        .executableTarget(
            name: "authledger-bench",
            dependencies: [
                "LedgerLMDB", "LedgerPostgres", "AuthCore", "AuthJournal",
                "LedgerCommandSupport",
                "CLMDB",
                "CSodium",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),

        // The parsers of untrusted bytes as fuzz targets (tools/fuzz builds authledger-fuzz under libFuzzer and
        // AddressSanitizer; without them it replays files through a target).
        .target(name: "FuzzTargets", dependencies: ["LedgerCore", "LedgerJournal", "AuthCore", "AuthTokens"]),
        .executableTarget(name: "authledger-fuzz", dependencies: ["FuzzTargets"]),
        .testTarget(name: "LedgerCoreTests", dependencies: ["LedgerCore"]),
        .testTarget(name: "AuthCoreTests", dependencies: ["AuthCore", "LedgerCore"]),
        .testTarget(name: "IncidentReportTests", dependencies: ["IncidentReport", "AuthCore", "LedgerCore"]),
        .testTarget(name: "InvestigationConsoleTests", dependencies: ["InvestigationConsole", "LedgerCore"]),
        .testTarget(
            name: "AuthServerTests",
            dependencies: [
                "AuthServer", "AuthJournal", "AuthCore", "AuthStreams", "AuthTokens", "LedgerLMDB", "LedgerCommandSupport", "authledger-replay",
                "FuzzTargets",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .testTarget(
            name: "LedgerPostgresTests",
            dependencies: [
                "LedgerJournal", "LedgerLMDB", "LedgerMemory", "LedgerPostgres", "LedgerCore", "AuthCore", "AuthJournal",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "LedgerLMDBTests",
            dependencies: ["LedgerJournal", "LedgerLMDB", "authledger-bench", "authledger", "authledger-replay"]
        ),
    ]
)
