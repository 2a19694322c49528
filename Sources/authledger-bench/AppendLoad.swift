import ArgumentParser
import Foundation
import LedgerJournal

/// `authledger-bench append-load`: appends from many tasks until killed, printing `ack <seq> <marker>`
/// for every append the journal has acknowledged as durable. The crash test kills it with SIGKILL and
/// checks that every acknowledged event survived.
struct AppendLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append-load", abstract: "Append until killed, acknowledging each durable event on stdout.")

    @Option(help: ArgumentHelp("The journal directory.", valueName: "dir")) var journal: String
    @Option(help: "Concurrent appenders.") var appenders: Int = 8
    @Option(help: "Stop after this many events (0: never).") var limit: Int = 0

    func run() async throws {
        let journal = try Journal.open(directory: journal)
        let run = UUID().uuidString.prefix(8)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<appenders {
                group.addTask {
                    var index = 0
                    while limit == 0 || index < limit / appenders {
                        let marker = "\(run)-\(worker)-\(index)"
                        let appended = try await journal.append(
                            EventDraft(type: "crash.probe", payload: Array("{\"marker\":\"\(marker)\"}".utf8)))
                        let line = Array("ack \(appended.sequence) \(marker)\n".utf8)
                        _ = line.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
                        index += 1
                    }
                }
            }
            try await group.waitForAll()
        }
        await journal.close()
    }
}

/// `authledger-bench hold-reader`: opens a read transaction and waits, so that a test can kill it and
/// leave a stale reader slot behind.
struct HoldReader: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold-reader", abstract: "Hold a read transaction open until killed.")

    @Option(help: ArgumentHelp("The journal directory.", valueName: "dir")) var journal: String

    func run() async throws {
        let reader = try JournalReader(directory: journal)
        try reader.read { snapshot in
            let head = try snapshot.head
            let line = Array("holding \(head.sequence)\n".utf8)
            _ = line.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            while true { sleep(60) }
        }
    }
}
