// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "AuthLedger",
    platforms: [.macOS(.v14)],
    products: [
        // The signed journal, embeddable by other Swift programs.
        .library(name: "Ledger", targets: ["LedgerCore", "LedgerLMDB"]),
        .executable(name: "authledger", targets: ["authledger"]),
        .executable(name: "authledger-replay", targets: ["authledger-replay"]),
        .executable(name: "authledger-bench", targets: ["authledger-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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
        .target(name: "LedgerCore", dependencies: ["CSodium"]),
        // The journal on LMDB: group-committed appends, projections, snapshots, keys on disk.
        .target(name: "LedgerLMDB", dependencies: ["LedgerCore", "CLMDB"]),

        // What the command-line tools share: journal option, exit codes, output formats.
        .target(
            name: "LedgerCommandSupport",
            dependencies: [
                "LedgerLMDB",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "authledger",
            dependencies: [
                "LedgerLMDB",
                "LedgerCommandSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "authledger-replay",
            dependencies: [
                "LedgerLMDB",
                "LedgerCommandSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Load generators: the ledger benchmark and the crash-test appender.
        .executableTarget(
            name: "authledger-bench",
            dependencies: [
                "LedgerLMDB",
                "LedgerCommandSupport",
                "CLMDB",
                "CSodium",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "LedgerCoreTests", dependencies: ["LedgerCore"]),
        .testTarget(
            name: "LedgerLMDBTests",
            dependencies: ["LedgerLMDB", "authledger-bench", "authledger", "authledger-replay"]
        ),
    ]
)
