import ArgumentParser
import Foundation
import LedgerCommandSupport
import LedgerCore
import LedgerLMDB

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Show, rotate and export the journal's signing keys.",
        subcommands: [Show.self, Rotate.self, ExportPublic.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the active signing key and the key history.")
        @OptionGroup var journalOptions: JournalOptions
        @Option(help: "Output format.") var format: OutputFormat = .text

        func run() async throws {
            let reader = try openReader(journalOptions.journal)
            let (active, origin) = try reader.read { (try $0.activeKey, try $0.origin) }
            guard let active, let origin else { throw CommandExit.badInput("journal has no genesis event yet") }
            for (sequence, key) in try reader.keyHistory() {
                let verifier = NoteVerifierKey(name: origin, publicKey: key)
                switch format {
                case .text:
                    print("\(key.keyID)\(key == active ? " (active)" : "")  introduced at #\(sequence)  \(verifier)")
                case .jsonl:
                    printJSONLine([
                        "key_id": key.keyID.hex, "active": key == active, "introduced_at": sequence,
                        "verifier_key": verifier.description, "public_key": Base64.encode(key.bytes),
                    ])
                }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate the signing key: a key-rotation event signed by the old key, then the new key in the key file.",
            discussion: "The server must be stopped: a journal has one writer at a time.")
        @OptionGroup var journalOptions: JournalOptions
        @OptionGroup var writerOptions: JournalWriterOptions

        func run() async throws {
            let journal = try writerOptions.openJournal(journalOptions.journal)
            let old = journal.activeKeyID
            let new: KeyID
            do {
                new = try await journal.rotateSigningKey()
                _ = try await journal.checkpoint()
            } catch {
                await journal.close()
                throw CommandExit.badInput("rotation failed: \(error)")
            }
            await journal.close()
            print("rotated signing key \(old) -> \(new)")
        }
    }

    struct ExportPublic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-public",
            abstract: "Print every public key of the journal as signed-note verifier keys, for an auditor to pin.")
        @OptionGroup var journalOptions: JournalOptions
        @Option(help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file")) var out: String?

        func run() async throws {
            // Export the key chain as verification establishes it from the signed events, not from an index.
            let reader = try openReader(journalOptions.journal)
            let report: VerificationReport
            switch try reader.verify(trust: .genesisKey) {
            case .success(let verified): report = verified
            case .failure(let failure): throw CommandExit.checkFailed("journal does not verify, refusing to export its keys: \(failure)")
            }
            guard let origin = report.origin else { throw CommandExit.badInput("journal has no genesis event yet") }
            let lines = report.keys.map { NoteVerifierKey(name: origin, publicKey: $0).description }
            let text = lines.joined(separator: "\n") + "\n"
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

