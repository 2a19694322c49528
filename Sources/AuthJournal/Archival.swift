import AuthCore
import Foundation
import LedgerCore
import LedgerJournal

/// What ``AuthLedger/archive(before:to:)`` did.
public struct ArchiveSummary: Sendable, Equatable {
    /// The archived events: the first and the last.
    public var first: UInt64
    public var through: UInt64
    /// The `ledger.archived` event appended to the live journal.
    public var recordedAt: UInt64
    /// Entries removed from the live journal (records, checkpoints, Merkle nodes).
    public var removed: Int
}

/// Why archival did nothing.
public enum ArchiveError: Error, Sendable, CustomStringConvertible {
    /// No signed checkpoint lies after the journal's first event and before the cut asked for.
    case nothingToArchive(before: UInt64)
    /// The archive written does not verify, or does not end where it should: the live journal was not touched.
    case archiveUnverified(String)

    public var description: String {
        switch self {
        case .nothingToArchive(let before): "nothing to archive before #\(before): no signed checkpoint after the journal's first event and before it"
        case .archiveUnverified(let reason): "the archive written does not verify (the journal was not changed): \(reason)"
        }
    }
}

extension AuthLedger {
    /// Moves the events before `sequence` — up to the last signed checkpoint before it — to a new
    /// archive in `destination` (an empty store), then removes their bodies from the journal, which keeps
    /// verifying from the cut and serving: its projections are untouched and keep the state the archived
    /// events made (and a copy of that state is kept for rebuilds).
    ///
    /// The archive is written and verified before the journal changes; the cut and `ledger.archived` are
    /// one commit; the bodies go in bounded commits after. A crash leaves a journal that verifies and has
    /// either not archived (run again into an empty place) or archived, with bodies possibly left, which
    /// readers skip and the next archival (or ``finishArchival()``) removes.
    public func archive(before sequence: UInt64, to destination: any JournalStorage) async throws -> ArchiveSummary {
        // First what a crash may have left of an earlier archival.
        let leftover = try await finishArchival()
        guard let cut = try journal.read({ try $0.archiveCut(before: sequence) }) else {
            destination.close()
            throw ArchiveError.nothingToArchive(before: sequence)
        }
        let written: ArchiveReport
        do {
            written = try journal.read { try $0.writeArchive(through: cut, to: destination) }
        } catch {
            destination.close()
            throw error
        }
        let archive = try JournalReader(storage: destination)
        defer { archive.close() }
        // Verified as it will be read, from the prefix it starts from (if the journal was archived before).
        let prefix: VerifiedPrefix
        switch try archive.verify(trust: .genesisKey, continued: true) {
        case .success(let report):
            guard let verified = report.prefix, verified.size == cut else {
                throw ArchiveError.archiveUnverified("it ends at #\(report.eventCount), not #\(cut)")
            }
            prefix = verified
        case .failure(let failure):
            throw ArchiveError.archiveUnverified("\(failure)")
        }
        let projections = try ArchivedState.projections(after: archive)
        let recorded = try await journal.recordArchive(prefix: prefix, projections: projections)
        let removed = try await finishArchival()
        return ArchiveSummary(first: written.first, through: cut, recordedAt: recorded.sequence, removed: leftover + removed)
    }

    /// Archives the events older than the tenant's `retention.events_days` (up to the last signed
    /// checkpoint before `now` minus that period) into a new directory under `directory`, named by the
    /// cut (`events-<first>-<last>`), in the store `makeStorage` opens there (an LMDB journal directory, as
    /// `authledger journal archive` writes). Nothing when no period is set or nothing is that old.
    public func archiveExpiredEvents(
        now: LedgerTimestamp, into directory: String, makeStorage: (String) throws -> any JournalStorage
    ) async throws -> (summary: ArchiveSummary, directory: String)? {
        guard let days = configuration.retention?.eventsDays else { return nil }
        let (first, cut) = try journal.read { snapshot in
            (try snapshot.firstSequence, try snapshot.archiveCut(before: try snapshot.firstSequence(atOrAfter: now.adding(seconds: -days * 86_400))))
        }
        guard let cut else { return nil }
        let target = directory + "/events-\(first)-\(cut)"
        // A directory left by an archival a crash interrupted before its cut was recorded: written again.
        try? FileManager.default.removeItem(atPath: target)
        let summary = try await archive(before: cut + 1, to: try makeStorage(target))
        return (summary, target)
    }

    /// Removes what is left of archived events: their bodies (which readers skip meanwhile), and their
    /// entries in the timeline's index (an archive is read whole). Returns how many bodies and index
    /// entries (one per event and value) were removed.
    @discardableResult
    public func finishArchival(batch: Int = 10_000) async throws -> Int {
        var removed = try await journal.removeArchivedEvents(batch: batch)
        let index = AuthTable.index.projectionName
        while true {
            let count = try await journal.transact { transaction in
                guard let cut = try transaction.archivedPrefix()?.size else { return 0 }
                let table = try transaction.projection(index)
                // A bucket of archived events only goes; one that holds later events too keeps those.
                var changes: [(key: [UInt8], kept: [UInt8])] = []
                var removed = 0
                try table.forEach { key, value in
                    let sequences = try IndexBucket.storedSequences(inKey: key, value: value)
                    let archived = sequences.prefix { $0 <= cut }.count
                    if archived > 0 {
                        changes.append((key, sequences.dropFirst(archived).flatMap(IndexBucket.entry)))
                        removed += archived
                    }
                    return removed < batch
                }
                for (key, kept) in changes {
                    if kept.isEmpty { try table.delete(key) } else { try table.put(kept, for: key) }
                }
                return removed
            }
            removed += count
            if count == 0 { return removed }
        }
    }
}

/// The projections as archived events left them: what rebuilds and replays start from in a journal
/// whose oldest events were archived.
public enum ArchivedState {
    /// The projections of `archive` (a journal, or an archive): those it starts from, with every event
    /// it holds folded in — by the server's own fold, ``AuthProjection``.
    public static func projections(after archive: JournalReader) throws -> ArchivedProjections.Tables {
        let rebuilt = try archive.read { snapshot in try ProjectionRebuild.rebuild(from: snapshot, progress: nil) }
        return archived(rebuilt.tables)
    }

    /// `tables` keyed as the journal stores projections (`auth.<table>`, key bytes), entries in key order.
    /// The timeline's index is left out: it finds events, and archived events are read in their archive.
    static func archived(_ tables: ProjectionRebuild.Tables) -> ArchivedProjections.Tables {
        var result: ArchivedProjections.Tables = [:]
        for (table, entries) in tables where !entries.isEmpty && table != .index {
            result[table.projectionName] = entries.map { (Array($0.key.utf8), $0.value) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        }
        return result
    }

    /// The consents of `userID` as the archived events of a snapshot's journal left them (key as
    /// ``AuthorizationInput/consents`` keys them → scopes); none when nothing was archived.
    public static func consents(of userID: String, in snapshot: JournalSnapshot) throws -> [String: [String]] {
        var consents: [String: [String]] = [:]
        let prefix = Array("\(userID)\u{1F}".utf8)
        try snapshot.archivedProjection(AuthTable.consents.projectionName) { key, value in
            if key.starts(with: prefix) { consents[String(decoding: key.dropFirst(prefix.count), as: UTF8.self)] = try ProjectionCoding.decode([String].self, from: value) }
            return true
        }
        return consents
    }

    /// The projections a journal keeps as its archived events left them, as stored.
    public static func stored(in reader: JournalReader) throws -> ArchivedProjections.Tables {
        try reader.read { snapshot in archived(try start(in: snapshot)) }
    }

    /// The projections a snapshot's journal starts from: empty, or as its archived events left them.
    static func start(in snapshot: JournalSnapshot) throws -> ProjectionRebuild.Tables {
        var tables: ProjectionRebuild.Tables = [:]
        for table in AuthTable.allCases {
            try snapshot.archivedProjection(table.projectionName) { key, value in
                tables[table, default: [:]][String(decoding: key, as: UTF8.self)] = value
                return true
            }
        }
        return tables
    }

    /// The configuration in force after the archived events of a snapshot's journal (empty when none were
    /// archived), its personal values opened by `opener` (kept sealed without one).
    static func configuration(in snapshot: JournalSnapshot, opener: PersonalData.Opener?) throws -> ConfigurationState {
        var stored: [UInt8]?
        try snapshot.archivedProjection(AuthTable.configuration.projectionName) { key, value in
            if String(decoding: key, as: UTF8.self) == AuthProjection.configurationKey { stored = value }
            return stored == nil
        }
        guard var bytes = stored else { return ConfigurationState() }
        if let opener { bytes = try PersonalData.open(bytes, contextType: AuthProjection.configurationEventType, opener: opener) }
        return try ProjectionCoding.decode(ConfigurationState.self, from: bytes)
    }
}
