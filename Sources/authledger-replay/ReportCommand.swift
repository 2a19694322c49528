import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import IncidentReport
import LedgerCommandSupport
import LedgerCore
import LedgerJournal

/// `authledger-replay report --html OUT.html`: a self-contained page for a responder — charts of
/// decisions, failed logins, codes and consent over time, and the anomalies with the commands that
/// explain them.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an incident report: one self-contained HTML page (inline SVG charts, no script, no network).",
        discussion: """
            The page shows authorization decisions over time by outcome, failed logins by account and by address, \
            codes issued, redeemed and replayed, consent granted, denied and revoked, and a table of anomalies \
            (code replays, refresh token reuse, bursts of failed logins) each with its explain and timeline commands. \
            The journal is verified first, against --public-key when given, and the page says how it verified; \
            the report is written even when it does not, and the command then exits 1.
            """)

    @OptionGroup var journalOptions: JournalOptions
    @Option(help: ArgumentHelp("The HTML file to write.", valueName: "file")) var html: String
    @Option(help: "From this time (RFC 3339) or #sequence.") var from: String?
    @Option(help: "To this time (RFC 3339) or #sequence, inclusive.") var to: String?
    @Option(help: "Number of time buckets in the charts (1–500).") var buckets: Int = 48
    @OptionGroup var pinnedKeys: PinnedKeyOptions
    @OptionGroup var dataKeyOptions: DataKeyOptions

    func run() async throws {
        guard (1...500).contains(buckets) else { throw CommandExit.badInput("--buckets must be between 1 and 500") }
        let report = try Self.render(
            journalOptions, from: from, to: to, buckets: buckets, trust: try pinnedKeys.trust(), dataKey: try dataKeyOptions.loadIfPresent(journalOptions))
        do {
            try report.page.write(toFile: html, atomically: true, encoding: .utf8)
        } catch {
            throw CommandExit.badInput("cannot write \(html): \(error.localizedDescription)")
        }
        printText("report: \(html) (events #\(report.range.lowerBound)–#\(report.range.upperBound))")
        guard report.verified else { throw CommandExit.checkFailed("the journal did not verify; the report says so at the top") }
    }

    /// The report page of the journal `journalOptions` names, over `from`…`to` (verified first, and only
    /// what verified): what `run()` writes, and what the investigation console serves (with `links`).
    static func render(
        _ journalOptions: JournalOptions, from: String?, to: String?, buckets: Int, trust: JournalVerifier.Trust, dataKey: DataKey?,
        links: IncidentReportPage.Links? = nil
    ) throws -> (page: String, range: ClosedRange<UInt64>, verified: Bool) {
        let reader = try openReader(journalOptions)
        defer { reader.close() }
        let verification: (text: String, ok: Bool, origin: String?, verifiedEvents: UInt64?)
        do {
            switch try reader.verify(trust: trust) {
            case .success(let report):
                let what = "\(report.eventCount) events: signatures, hash chain, Merkle root, \(report.checkpointsVerified) checkpoints"
                verification = (
                    report.pinned
                        ? "Verified against the pinned key: \(what)"
                        : "Self-consistent, not pinned: \(what); the journal's own genesis key was trusted (pass --public-key to pin it)",
                    true, report.origin, report.eventCount
                )
            case .failure(let failure):
                verification = ("NOT VERIFIED: verification failed at \(failure)", false, nil, nil)
            }
        } catch {
            throw CommandExit.badInput("cannot read the journal: \(error)")
        }
        // A server may still be appending: the report covers what was verified, and no more.
        guard var range = try JournalPoint.range(from: from, to: to, in: reader) else {
            throw CommandExit.badInput("no event in the range")
        }
        if let verifiedEvents = verification.verifiedEvents {
            guard range.lowerBound <= verifiedEvents else { throw CommandExit.badInput("no verified event in the range") }
            range = range.lowerBound...min(range.upperBound, verifiedEvents)
        }
        let bounds = range
        do {
            let page = try reader.read { snapshot in
                guard let first = try snapshot.event(bounds.lowerBound), let last = try snapshot.event(bounds.upperBound) else {
                    throw CommandExit.badInput("no event in the range")
                }
                var summary = IncidentSummary(buckets: .init(start: first.timestamp, end: last.timestamp, count: buckets))
                let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
                try snapshot.forEachEvent(from: bounds.lowerBound) { envelope in
                    guard envelope.sequence <= bounds.upperBound else { return false }
                    summary.record(sequence: envelope.sequence, timestamp: envelope.timestamp, event: try opener.event(envelope))
                    return true
                }
                var context = IncidentReportPage.Context(
                    journal: journalOptions.journal, origin: verification.origin ?? "unverified", verification: verification.text,
                    verified: verification.ok, from: first.timestamp, to: last.timestamp, generatedAt: Journal.systemClock())
                context.links = links
                return IncidentReportPage.render(summary, context: context)
            }
            return (page, bounds, verification.ok)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw CommandExit.badInput("cannot read the journal: \(error)")
        }
    }
}
