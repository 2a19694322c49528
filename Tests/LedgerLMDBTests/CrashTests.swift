import Foundation
import LedgerCore
import Testing

@testable import LedgerJournal
@testable import LedgerLMDB

@Suite("Crash safety: SIGKILL under load loses nothing acknowledged")
struct CrashTests {
    @Test("every acknowledged append survives SIGKILL, and the journal verifies, across repeated crashes")
    func killUnderLoad() async throws {
        let directory = TemporaryDirectory("crash")
        var acknowledged: [UInt64: String] = [:]
        for round in 0..<5 {
            let acks = try appendUntilKilled(journal: directory.journal, killAfter: 100 + round * 137)
            for (sequence, marker) in acks {
                #expect(acknowledged[sequence] == nil, "sequence \(sequence) acknowledged twice")
                acknowledged[sequence] = marker
            }
            // Reopening clears the dead writer's reader slot and must find a consistent journal.
            let journal = try openJournal(directory.journal)
            try journal.read { snapshot in
                for (sequence, marker) in acknowledged {
                    let event = try #require(try snapshot.event(sequence), "acknowledged event #\(sequence) is missing")
                    #expect(String(decoding: event.payload, as: UTF8.self).contains("\"\(marker)\""))
                }
            }
            await journal.close()
            let report = try JournalReader(directory: directory.journal).verify(trust: .genesisKey).get()
            #expect(report.eventCount >= UInt64(acknowledged.count))
        }
        #expect(acknowledged.count >= 5 * 100)
    }

    /// Runs `authledger-bench append-load` until it has acknowledged `killAfter` events, then kills it.
    private func appendUntilKilled(journal: String, killAfter: Int) throws -> [(UInt64, String)] {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent("authledger-bench")
        process.arguments = ["append-load", "--journal", journal, "--appenders", "16"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var buffer = ""
        var acks: [(UInt64, String)] = []
        while acks.count < killAfter {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            buffer += String(decoding: data, as: UTF8.self)
            while let newline = buffer.firstIndex(of: "\n") {
                let line = buffer[..<newline].split(separator: " ")
                buffer.removeSubrange(...newline)
                if line.count == 3, line[0] == "ack", let sequence = UInt64(line[1]) {
                    acks.append((sequence, String(line[2])))
                }
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // Acknowledgements still in the pipe were durable too.
        buffer += String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        for line in buffer.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 3, fields[0] == "ack", let sequence = UInt64(fields[1]) {
                acks.append((sequence, String(fields[2])))
            }
        }
        #expect(process.terminationReason == .uncaughtSignal)
        return acks
    }
}
