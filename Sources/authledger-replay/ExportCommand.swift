import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal

/// `authledger-replay export`: a compliance bundle that a third party can verify offline
/// (`tools/verify_bundle.py`): the selected events, the signed checkpoint they belong to, an inclusion
/// proof for each, and the public keys.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a compliance bundle: selected events, the signed checkpoint, an inclusion proof per event, the public keys.",
        discussion: """
            Files: manifest.json, checkpoint.txt (C2SP signed note), keys.txt (signed-note verifier keys), and the events \
            as events.jsonl, events.csv or events.ocsf.jsonl. Each event carries its stored record (base64) and its \
            RFC 9162 inclusion proof. With --personal-data hash or omit, records are replaced by their leaf hashes \
            (inclusion still verifies; signatures cannot) and personal fields are hashed or left out.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case jsonl, csv, ocsf
    }


    @OptionGroup var journalOptions: JournalOptions
    @Option(help: "Event file format.") var format: Format
    @Option(help: ArgumentHelp("The bundle directory (created).", valueName: "dir")) var out: String
    @Option(help: "From this time (RFC 3339) or #sequence.") var from: String?
    @Option(help: "To this time (RFC 3339) or #sequence, inclusive.") var to: String?
    @Option(help: "Only events concerning this user id.") var user: String?
    @Option(help: "Only events concerning this client id.") var client: String?
    @Option(
        name: .customLong("personal-data"),
        help: "Keep personal data, replace it with keyed pseudonyms (needs the journal's data key), or omit it.")
    var personalData: PersonalDataHandling = .keep
    @OptionGroup var dataKeyOptions: DataKeyOptions

    func run() async throws {
        // Pseudonyms are keyed: a plain hash of an email or an IPv4 address is reversed by trying them all.
        let dataKey = personalData == .hash ? try dataKeyOptions.load(journalOptions, for: "--personal-data hash") : nil
        let reader = try openReader(journalOptions)
        defer { reader.close() }
        let report: VerificationReport
        switch try reader.verify(trust: .genesisKey) {
        case .success(let verified): report = verified
        case .failure(let failure): throw CommandExit.checkFailed("the journal does not verify; nothing exported: \(failure)")
        }
        guard let origin = report.origin else { throw CommandExit.badInput("the journal is empty") }
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw CommandExit.badInput("cannot create \(out): \(error.localizedDescription)")
        }
        let range = try JournalPoint.range(from: from, to: to, in: reader)
        var lines: [String] = []
        var csvRows: [[String]] = [["sequence", "time", "type", "schema_version", "key_id", "payload", "record", "leaf_hash", "proof"]]
        var count = 0
        let checkpoint: SignedCheckpoint = try reader.read { snapshot in
            guard let latest = try snapshot.latestCheckpoint() else { throw CommandExit.badInput("the journal has no checkpoint") }
            let treeSize = latest.checkpoint.treeSize
            let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
            var events = AuthEventReader(snapshot: snapshot)
            if let range {
                try snapshot.forEachRecord(from: range.lowerBound) { sequence, record in
                    guard sequence <= min(range.upperBound, treeSize) else { return false }
                    let envelope = try EventEnvelope(record: record)
                    if user != nil || client != nil {
                        guard let event = try events.event(envelope) else { return true }
                        let subjects = EventSubjects(event)
                        if let user, !subjects.users.contains(user) { return true }
                        if let client, !subjects.clients.contains(client) { return true }
                    }
                    let proof = try snapshot.inclusionProof(sequence: sequence, treeSize: treeSize).hashes.map(\.base64)
                    let leaf = MerkleHashing.leafHash(record).base64
                    let keepRecord = personalData == .keep
                    let payload: Any? = personalData.payload(of: envelope, opener: opener, dataKey: dataKey, domain: "export")
                    var entry: [String: Any] = [
                        "sequence": sequence, "time": envelope.timestamp.rfc3339, "type": envelope.type.name,
                        "schema_version": Int(envelope.schemaVersion), "key_id": envelope.keyID.hex, "leaf_hash": leaf, "proof": proof,
                    ]
                    if keepRecord { entry["record"] = Base64.encode(record) }
                    if let payload { entry["payload"] = payload }
                    switch format {
                    case .jsonl:
                        lines.append(jsonLine(entry))
                    case .ocsf:
                        lines.append(jsonLine(OCSF.record(for: envelope, payload: payload, authledger: entry)))
                    case .csv:
                        csvRows.append([
                            String(sequence), envelope.timestamp.rfc3339, envelope.type.name, String(envelope.schemaVersion), envelope.keyID.hex,
                            payload.map { jsonLine($0) } ?? "", keepRecord ? Base64.encode(record) : "", leaf, proof.joined(separator: " "),
                        ])
                    }
                    count += 1
                    return true
                }
            }
            return latest
        }
        let eventFile: String
        let eventText: String
        switch format {
        case .jsonl: (eventFile, eventText) = ("events.jsonl", lines.map { $0 + "\n" }.joined())
        case .ocsf: (eventFile, eventText) = ("events.ocsf.jsonl", lines.map { $0 + "\n" }.joined())
        case .csv: (eventFile, eventText) = ("events.csv", csvRows.map { $0.map(Self.csvField).joined(separator: ",") + "\r\n" }.joined())
        }
        let keys = pinnedKeyLines(report, origin: origin)
        let manifest: [String: Any] = [
            "format": "authledger-bundle-v1", "origin": origin, "events": count, "event_file": eventFile, "event_format": format.rawValue,
            "checkpoint_tree_size": checkpoint.checkpoint.treeSize, "personal_data": personalData.rawValue,
            "selection": ["from": from ?? "", "to": to ?? "", "user": user ?? "", "client": client ?? ""],
            "record_format": "docs/journal-format.md, AuthLedger/event/v1",
        ]
        do {
            try eventText.write(toFile: out + "/" + eventFile, atomically: true, encoding: .utf8)
            try checkpoint.text.write(toFile: out + "/checkpoint.txt", atomically: true, encoding: .utf8)
            try keys.write(toFile: out + "/keys.txt", atomically: true, encoding: .utf8)
            try (jsonLine(manifest) + "\n").write(toFile: out + "/manifest.json", atomically: true, encoding: .utf8)
        } catch {
            throw CommandExit.badInput("cannot write the bundle: \(error.localizedDescription)")
        }
        printText("exported \(count) events to \(out) (checkpoint of \(checkpoint.checkpoint.treeSize) events)")
    }

    private func jsonLine(_ object: Any) -> String { EventRendering.jsonLine(object) }

    static func csvField(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}

extension PersonalDataHandling: ExpressibleByArgument {}
