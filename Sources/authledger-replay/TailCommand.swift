import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal
import LedgerLMDB

/// `authledger-replay tail [--follow] [--from #N] --format jsonl|ocsf`: events as they are committed, for
/// SIEM and audit pipelines (Splunk, Elastic, Vector read JSON lines from stdin or a file).
struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Stream events as JSON lines (or OCSF), resuming from a sequence number; --follow keeps streaming new ones.",
        discussion: "Read-only, from LMDB snapshots: a running server is not disturbed. Each line carries its sequence number to resume from.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case jsonl, ocsf
    }

    @OptionGroup var journalOptions: JournalOptions
    @Option(help: "Start at this sequence number (#N or N); default: the next event from now, or 1 without --follow.")
    var from: String?
    @Flag(help: "Keep streaming events as they are committed.") var follow = false
    @Option(help: "Line format.") var format: Format = .jsonl
    @Option(help: "With --follow, how often to look for new events, in milliseconds.") var interval: Int = 200

    func run() async throws {
        let reader = try openReader(journalOptions)
        defer { reader.close() }
        var next: UInt64
        if let from {
            guard let value = UInt64(from.hasPrefix("#") ? String(from.dropFirst()) : from), value >= 1 else {
                throw CommandExit.badInput("--from \(from) is not a sequence number")
            }
            next = value
        } else {
            next = follow ? (try reader.read { try $0.head.sequence }) + 1 : 1
        }
        while true {
            next = try emit(from: next, reader: reader)
            guard follow else { return }
            try await Task.sleep(for: .milliseconds(max(20, interval)))
        }
    }

    /// Prints every committed event from `start`; returns the next sequence number to read.
    private func emit(from start: UInt64, reader: JournalReader) throws -> UInt64 {
        var next = start
        try reader.read { snapshot in
            try snapshot.forEachEvent(from: start) { envelope in
                let payload = EventRendering.jsonObject(ofPayload: envelope.payload) ?? Base64.encode(envelope.payload)
                let line = EventRendering.object(envelope, payload: payload)
                switch format {
                case .jsonl: printJSONLine(line)
                case .ocsf: printJSONLine(OCSF.record(for: envelope, payload: payload, authledger: line))
                }
                next = envelope.sequence + 1
                return true
            }
        }
        fflush(nil)
        return next
    }
}
