// swift-tools-version:6.0
import PackageDescription

// An example of embedding AuthLedger's signed journal in another program: an order service that records
// its own domain events, keeps its own projection, and proves its history with the same verifier.
let package = Package(
    name: "OrderLedger",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "AuthLedger", path: "../..")],
    targets: [
        .executableTarget(name: "OrderLedger", dependencies: [.product(name: "Ledger", package: "AuthLedger")])
    ]
)
