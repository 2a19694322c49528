import ArgumentParser
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerJournal
import LedgerLMDB
import AuthCore
import AuthTokens

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Show, rotate and export the journal's signing keys.",
        subcommands: [Show.self, Rotate.self, Add.self, Remove.self, ExportPublic.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the active signing key and the key history.")
        @OptionGroup var journalOptions: JournalOptions
        @Option(help: "Output format.") var format: OutputFormat = .text

        func run() async throws {
            let reader = try openReader(journalOptions)
            defer { reader.close() }
            let (signers, origin) = try reader.read { (try $0.signers, try $0.origin) }
            guard !signers.isEmpty, let origin else { throw CommandExit.badInput("journal has no genesis event yet") }
            for (sequence, key) in try reader.keyHistory() {
                let verifier = NoteVerifierKey(name: origin, publicKey: key)
                let active = signers.contains(key)
                switch format {
                case .text:
                    printText("\(key.keyID)\(active ? " (active)" : "")  introduced at #\(sequence)  \(verifier)")
                case .jsonl:
                    printJSONLine([
                        "key_id": key.keyID.hex, "active": active, "introduced_at": sequence,
                        "verifier_key": verifier.description, "public_key": Base64.encode(key.bytes),
                    ])
                }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate the journal signing key (a key-rotation event signed by the old key), or with --tokens the token signing keys.",
            discussion: """
                The server must be stopped: an LMDB journal has one writer at a time (on a --store journal, the \
                other nodes must be restarted with the new key file). With --tokens, new RS256 and EdDSA token \
                keys take over and the old ones stay in the JWKS until every token they signed has expired.
                """)
        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions
        @Flag(help: "Rotate the token signing keys (--token-keys, default <journal>.tokenkeys) instead of the journal signing key.")
        var tokens = false
        @OptionGroup var tokenKeyOptions: TokenKeyOptions

        func run() async throws {
            if tokens {
                try await rotateTokenKeys()
                return
            }
            let (old, new) = try await writerOptions.withJournal(journalOptions, failing: "rotation") { journal in
                let old = journal.activeKeyID
                let new = try await journal.rotateSigningKey()
                _ = try await journal.checkpoint()
                return (old, new)
            }
            printText("rotated signing key \(old) -> \(new)")
        }
    }

}

extension KeysCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let another key sign the journal (a ledger.key.added event signed by --key): a cluster node's own key.",
            discussion: """
                FILE gets a new key (mode 0600) unless it holds one already; the journal records it as a signer \
                with an event signed by the journal key in --key (default <journal>.key) and the new key's proof \
                that it is held. Start the node with --key FILE. On a --store journal this can run while the \
                other nodes serve; an LMDB journal's server must be stopped.
                """)
        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions
        @Argument(help: ArgumentHelp("The new signer's key file.", valueName: "file")) var newKey: String

        func run() async throws {
            let file = JournalKeyFile(path: newKey)
            let key: Ed25519SigningKey
            do {
                if file.exists {
                    key = try file.load()
                } else {
                    key = Ed25519SigningKey.generate()
                    try file.create(key)
                }
            } catch {
                throw CommandExit.badInput("\(error)")
            }
            let (sequence, signer) = try await writerOptions.withJournal(journalOptions, failing: "adding the key") { journal in
                let sequence = try await journal.addSigner(key)
                _ = try await journal.checkpoint()
                return (sequence, journal.activeKeyID)
            }
            printText("key \(key.keyID) signs the journal from #\(sequence) on (added by \(signer)); start its node with --key \(newKey)")
        }
    }
}

extension KeysCommand {
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a key from signing the journal (a decommissioned node): a ledger.key.removed event signed by --key, another signer.",
            discussion: """
                KEYID is the key's id as `authledger keys show` prints it. The key signing the removal (--key, \
                default <journal>.key) must be another signer; the last signer cannot be removed. A node still \
                running with the removed key can append nothing more. Destroy the removed key file afterwards.
                """)
        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions
        @Argument(help: ArgumentHelp("The id of the key to remove (16 hex digits).", valueName: "keyid")) var keyID: String

        func run() async throws {
            guard let bytes = Hex.decode(keyID), let id = KeyID(bytes: bytes) else {
                throw CommandExit.badInput("\(keyID) is not a key id (16 hex digits, as `authledger keys show` prints)")
            }
            let (sequence, signer) = try await writerOptions.withJournal(journalOptions, failing: "removing the key") { journal in
                let sequence = try await journal.removeSigner(id)
                _ = try await journal.checkpoint()
                return (sequence, journal.activeKeyID)
            }
            printText("key \(id) no longer signs the journal from #\(sequence) on (removed by \(signer))")
        }
    }
}

extension KeysCommand.Rotate {
    func rotateTokenKeys() async throws {
        let ledger = try await writerOptions.openAuthLedger(journalOptions)
        let path = tokenKeyOptions.path(journalOptions)
        do {
            let ring = try await TokenKeyRing.loadOrCreate(path: path)
            // Retired keys stay published as long as the longest-lived token they may have signed.
            let retention = max(36_000, ledger.configuration.apis.values.map(\.tokenTTLSeconds).max() ?? 86_400)
            let rotated = try await ring.rotated(now: Journal.systemClock(), retentionSeconds: retention)
            let event = TokenKeysRotated(
                activeKeyIDs: rotated.keys.filter { $0.retiredAt == nil }.map(\.kid),
                retiredKeyIDs: rotated.keys.filter { $0.retiredAt != nil }.map(\.kid))
            // Published with the rotation, so the other nodes of a cluster accept the new keys' tokens.
            let dropped = Set(ring.keys.map(\.kid)).subtracting(rotated.keys.map(\.kid)).sorted()
            let published = TokenKeysPublished(node: ledger.journal.activeKeyID.hex, keys: rotated.jwks, dropped: dropped)
            try await ledger.record { recorder in
                try recorder.append(.tokenKeysRotated(event))
                try recorder.append(.tokenKeysPublished(published))
            }
            await ledger.journal.close()
            printText("token signing keys rotated: active \(event.activeKeyIDs.joined(separator: ", "))")
        } catch {
            await ledger.journal.close()
            throw CommandExit.badInput("token key rotation failed: \(error)")
        }
    }
}

extension KeysCommand {
    struct ExportPublic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-public",
            abstract: "Print every public key of the journal as signed-note verifier keys, for an auditor to pin.")
        @OptionGroup var journalOptions: JournalOptions
        @Option(help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file")) var out: String?

        func run() async throws {
            // Export the key chain as verification establishes it from the signed events, not from an index.
            let reader = try openReader(journalOptions)
            defer { reader.close() }
            let report: VerificationReport
            switch try reader.verify(trust: .genesisKey) {
            case .success(let verified): report = verified
            case .failure(let failure): throw CommandExit.checkFailed("journal does not verify, refusing to export its keys: \(failure)")
            }
            guard let origin = report.origin else { throw CommandExit.badInput("journal has no genesis event yet") }
            // Each key with its tenure: a retired key that leaks cannot then vouch for anything after it.
            let text = pinnedKeyLines(report, origin: origin)
            if let out {
                do {
                    try text.write(toFile: out, atomically: true, encoding: .utf8)
                } catch {
                    throw CommandExit.badInput("cannot write \(out): \(error.localizedDescription)")
                }
            } else {
                print(text, terminator: "")
            }
        }
    }
}

