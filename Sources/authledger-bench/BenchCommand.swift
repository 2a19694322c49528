import ArgumentParser

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authledger-bench",
        abstract: "Load generators for AuthLedger: the benchmarks, their baselines, the journal filler and the crash-test appender.",
        subcommands: [LedgerBenchmark.self, ReplayBenchmark.self, ArchiveGrowthBenchmark.self, SealingBenchmark.self, RSABaseline.self, FillJournal.self, AppendLoad.self, HoldReader.self]
    )
}
