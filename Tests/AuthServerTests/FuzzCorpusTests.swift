import AuthCore
import AuthTokens
import Foundation
import FuzzTargets
import LedgerCore
import Testing

/// The fuzz targets' committed inputs as regression tests: every seed (Fuzz/Corpus) and every crash the
/// fuzzer found (Fuzz/Crashes) runs through its target without crashing — and the seeds are what they are
/// meant to be, valid inputs that take the fuzzer deep into each parser rather than stopping at its first check.
@Suite("Fuzz targets: committed seeds and crashes (tools/fuzz)")
struct FuzzCorpusTests {
    static let fuzz = InteropTests.root.appendingPathComponent("Fuzz")

    static func inputs(_ folder: String, _ target: FuzzTarget) -> [(String, [UInt8])] {
        let directory = fuzz.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
        return names.compactMap { name in
            FileManager.default.contents(atPath: directory.appendingPathComponent(name).path).map { (name, Array($0)) }
        }
    }

    @Test("every seed and every crash found runs through its target without crashing", arguments: FuzzTarget.allCases)
    func regressions(target: FuzzTarget) {
        let seeds = Self.inputs("Corpus", target)
        #expect(!seeds.isEmpty, "every target has seeds")
        for (_, bytes) in seeds + Self.inputs("Crashes", target) { target.run(bytes) }
    }

    @Test("the bundle target (tools/verify_bundle.py): its seeds verify and fail with a changed byte, its crashes run clean")
    func bundleRegressions() throws {
        let harness = Self.fuzz.appendingPathComponent("bundle_fuzz.py").path
        let seeds = try Self.python([harness, "--check-seeds", Self.fuzz.appendingPathComponent("Corpus/bundle").path])
        #expect(seeds.status == 0, "\(seeds.output)")
        #expect(seeds.output.components(separatedBy: "\nok ").count >= 4, "\(seeds.output)")
        let crashes = Self.fuzz.appendingPathComponent("Crashes/bundle")
        let names = try FileManager.default.contentsOfDirectory(atPath: crashes.path).sorted()
        #expect(!names.isEmpty)
        let replayed = try Self.python([harness, "--replay"] + names.map { crashes.appendingPathComponent($0).path })
        #expect(replayed.status == 0, "\(replayed.output)")
        #expect(replayed.output.split(separator: "\n").count == names.count, "\(replayed.output)")
    }

    @Test("the projection seeds: Fuzz/make_seeds.py's own compact encoder and Swift's write the same bytes for each stored value")
    func projectionSeeds() throws {
        let seeds = Dictionary(uniqueKeysWithValues: Self.inputs("Corpus", .projection))
        let compactNames = seeds.keys.filter { !$0.hasSuffix(".json") }.sorted()
        #expect(compactNames.count >= 6, "\(compactNames)")
        for name in compactNames {
            let compact = try #require(seeds[name])
            let json = try #require(seeds[name + ".json"], "\(name).json")
            #expect(ProjectionCoding.isCompact(compact) && !ProjectionCoding.isCompact(json), "\(name)")
            let value = try CompactCoding.decode(JSONValue.self, from: compact)
            #expect(try CompactCoding.encode(value) == compact, "\(name): Swift encodes the value as Python did")
            #expect(try CompactCoding.encode(PayloadCoding.decode(JSONValue.self, from: json)) == compact, "\(name)")
            #expect(try ProjectionCoding.json(compact) == PayloadCoding.canonical(json), "\(name): the same JSON value")
        }
        let code = try ProjectionCoding.decode(CodeRecord.self, from: try #require(seeds["codes"]))
        #expect(code == (try ProjectionCoding.decode(CodeRecord.self, from: try #require(seeds["codes.json"]))))
    }

    /// Runs python3 with `arguments`: its exit status and what it printed (stdout and stderr).
    static func python(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, "\n" + String(decoding: output, as: UTF8.self))
    }

    @Test("the journal seed is a real journal: it verifies, and one flipped byte is a verification failure that names it")
    func journalSeed() throws {
        let whole = JournalInput(try #require(Self.inputs("Corpus", .journal).first { $0.0 == "whole" }).1)
        #expect(whole.records.count >= 79)
        func verify(_ records: [[UInt8]]) -> VerificationFailure? {
            let checkpoints = whole.checkpoints.compactMap { try? SignedCheckpoint(text: $0) }.map { ($0, JournalVerifier.CheckpointSource.journal) }
            #expect(checkpoints.count == whole.checkpoints.count)
            var verifier = JournalVerifier(trust: .genesisKey, checkpoints: checkpoints)
            do throws(VerificationFailure) {
                for (index, record) in records.enumerated() { try verifier.verify(storedKey: UInt64(index + 1), record: record) }
                _ = try verifier.finish()
                return nil
            } catch {
                return error
            }
        }
        #expect(verify(whole.records) == nil)
        var tampered = whole.records
        tampered[10][tampered[10].count / 2] ^= 0x01
        // Found by the checkpoint of size 11 (its Merkle root) or by the record itself: either way a failure
        // that names event 11.
        let failure = try #require(verify(tampered))
        #expect(failure.sequence <= 11 && failure.description.contains("#11"), "\(failure)")
    }

    @Test("the JOSE seeds are a valid client assertion and a valid DPoP proof under their JWK Set")
    func joseSeeds() async throws {
        let now = LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000)
        func split(_ name: String) throws -> (JSONValue, String) {
            let text = String(decoding: try #require(Self.inputs("Corpus", .jose).first { $0.0 == name }).1, as: UTF8.self)
            let newline = try #require(text.firstIndex(of: "\n"))
            return (try PayloadCoding.decode(JSONValue.self, from: Array(text[..<newline].utf8)), String(text[text.index(after: newline)...]))
        }
        let (jwks, assertion) = try split("assertion")
        let verified = try await ClientAssertionVerifier.verify(
            assertion, clientID: "client", jwks: jwks, audiences: ["https://tenant.example/oauth/token"], now: now)
        #expect(verified.jti == "j1")
        let (_, proof) = try split("dpop")
        _ = try await DPoPVerifier.verify(proof, method: "POST", url: "https://tenant.example/oauth/token", now: now)
        let (_, broken) = try split("broken")
        await #expect(throws: ClientAssertionError.self) {
            try await ClientAssertionVerifier.verify(broken, clientID: "client", jwks: jwks, audiences: ["https://tenant.example/oauth/token"], now: now)
        }
    }

    @Test("the tenant, checkpoint and parameter seeds parse")
    func otherSeeds() throws {
        let yaml = String(decoding: try #require(Self.inputs("Corpus", .tenant).first { $0.0 == "incident.yaml" }).1, as: UTF8.self)
        #expect(try !TenantFile.parse(yaml: yaml).clients.isEmpty)
        let note = String(decoding: try #require(Self.inputs("Corpus", .checkpoint).first { $0.0 == "note-0" }).1, as: UTF8.self)
        #expect(try SignedCheckpoint(text: note).checkpoint.treeSize > 0)
        let query = String(decoding: try #require(Self.inputs("Corpus", .parameters).first { $0.0 == "authorize" }).1, as: UTF8.self)
        #expect(AuthorizeParameters(query: query)["client_id"] == "web-app")
    }
}
