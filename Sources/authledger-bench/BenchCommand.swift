import ArgumentParser

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authledger-bench",
        abstract: "Load generators for AuthLedger: the ledger benchmark and the crash-test appender.",
        subcommands: [LedgerBenchmark.self, ReplayBenchmark.self, AppendLoad.self, HoldReader.self]
    )
}
