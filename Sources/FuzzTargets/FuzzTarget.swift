import AuthCore
import AuthTokens
import Dispatch
import Foundation
import LedgerCore
import LedgerJournal

/// The parsers of untrusted bytes, each as a function of one input that must return — whatever the bytes —
/// without crashing: what `tools/fuzz` runs under libFuzzer and AddressSanitizer (`authledger-fuzz`), and
/// what `FuzzCorpusTests` runs over the committed corpora and every crash found, as regression tests.
///
/// A target may reject its input (a thrown error is the expected answer to most of them); it may not trap,
/// overflow, read out of bounds or hang.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// One stored journal record: ``EventEnvelope/init(record:)``, then its payload decoded as the event its
    /// type names (``AuthEvent``, configuration events).
    case eventRecord = "event-record"
    /// A journal as the verifier reads it: records and checkpoints from the input (``JournalInput``) fed to
    /// ``JournalVerifier`` — a hostile journal must end in a verification failure, never a crash.
    case journal
    /// Signed notes, checkpoints, a checkpoint log and pinned-key lines (``SignedCheckpoint``,
    /// ``CheckpointLogFile``, ``PinnedKey``).
    case checkpoint
    /// A query string or form body: ``FormEncoding`` and the authorization request's
    /// parameters (``AuthorizeParameters``), parsed as the server parses them.
    case parameters
    /// A tenant file, as YAML and as JSON, planned against an empty configuration (``TenantFile``,
    /// ``TenantPlanner``).
    case tenant
    /// JOSE: a JWK Set on the first line, a compact JWS after it, checked as a client assertion (RFC 7523)
    /// and as a DPoP proof (RFC 9449) (``ClientAssertionVerifier``, ``DPoPVerifier``).
    case jose
    /// A stored projection value (``ProjectionCoding``: compact, or JSON from an earlier release), decoded as
    /// the projections' types; a compact value that decodes must encode back to the same value.
    case projection

    /// Runs the target on one input.
    public func run(_ bytes: [UInt8]) {
        switch self {
        case .eventRecord: Self.eventRecord(bytes)
        case .journal: Self.journal(bytes)
        case .checkpoint: Self.checkpoint(bytes)
        case .parameters: Self.parameters(bytes)
        case .tenant: Self.tenant(bytes)
        case .jose: Self.jose(bytes)
        case .projection: Self.projection(bytes)
        }
    }

    static func eventRecord(_ bytes: [UInt8]) {
        // A record as stored: in full, or shortened (expanded as if stored under #2 of a journal whose id is zeros).
        guard let record = try? StoredRecord.record(expanding: bytes, sequence: 2, journalID: Array(repeating: 0, count: 16)),
            let envelope = try? EventEnvelope(record: record)
        else { return }
        if StoredRecord.isShortened(bytes) { _ = StoredRecord.shortened(record) }
        _ = try? AuthEvent(type: envelope.type, payload: envelope.payload, sequence: envelope.sequence)
        _ = try? ConfigurationEvent(type: envelope.type, payload: envelope.payload)
        _ = envelope.record
    }

    static func journal(_ bytes: [UInt8]) {
        let input = JournalInput(bytes)
        let checkpoints = input.checkpoints.compactMap { text in
            (try? SignedCheckpoint(text: text)).map { ($0, JournalVerifier.CheckpointSource.journal) }
        } + input.shortenedCheckpoints.compactMap { size, stored in
            (try? StoredCheckpoint.unresolved(stored, treeSize: size)).map { ($0, JournalVerifier.CheckpointSource.journalShortened) }
        }
        var verifier = JournalVerifier(trust: .genesisKey, checkpoints: checkpoints)
        for (index, record) in input.records.enumerated() {
            do throws(VerificationFailure) {
                try verifier.verify(storedKey: UInt64(index + 1), record: record)
            } catch {
                return  // the clear failure a hostile journal must end in
            }
        }
        _ = try? verifier.finish()
    }

    static func checkpoint(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let signed = try? SignedCheckpoint(text: text) {
            _ = signed.verify(with: [])
            _ = signed.text
        }
        _ = try? SignedNote(text: text)
        _ = try? Checkpoint(body: text)
        _ = try? CheckpointLogFile.parse(text)
        for line in text.split(separator: "\n") { _ = try? PinnedKey(parsing: String(line)) }
    }

    static func parameters(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let pairs = FormEncoding.parse(text)
        let parameters = AuthorizeParameters(pairs: pairs)
        _ = AuthorizeParameters(query: text)
        _ = parameters.values.count
        _ = FormEncoding.decode(text[...])
    }

    static func tenant(_ bytes: [UInt8]) {
        let planner = TenantPlanner(hasher: UnhashedSecrets())
        if let tenant = try? TenantFile.parse(yaml: String(decoding: bytes, as: UTF8.self)) {
            _ = try? planner.plan(tenant, against: ConfigurationState())
        }
        if let tenant = try? TenantFile.parse(json: Data(bytes)) {
            _ = try? planner.plan(tenant, against: ConfigurationState())
        }
    }

    static func jose(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let (first, rest) = text.firstIndex(of: "\n").map { (text[..<$0], text[text.index(after: $0)...]) } ?? ("", text[...])
        let jwks = try? PayloadCoding.decode(JSONValue.self, from: Array(first.utf8))
        let token = String(rest)
        let now = LedgerTimestamp(microsecondsSinceEpoch: 1_800_000_000_000_000)
        _ = ClientAssertionVerifier.claimedClient(token)
        blocking {
            _ = try? await ClientAssertionVerifier.verify(
                token, clientID: "client", jwks: jwks, audiences: ["https://tenant.example/oauth/token"], now: now)
            _ = try? await DPoPVerifier.verify(token, method: "POST", url: "https://tenant.example/oauth/token", now: now)
        }
    }

    static func projection(_ bytes: [UInt8]) {
        _ = try? ProjectionCoding.decode(CodeRecord.self, from: bytes)
        _ = try? ProjectionCoding.decode(TokenRecord.self, from: bytes)
        _ = try? ProjectionCoding.decode(SessionSnapshot.self, from: bytes)
        _ = try? ProjectionCoding.decode(InteractionRecord.self, from: bytes)
        _ = try? ProjectionCoding.decode(ConfigurationState.self, from: bytes)
        _ = try? ProjectionCoding.decode([LedgerTimestamp].self, from: bytes)
        _ = PayloadCoding.canonical(bytes)
        guard ProjectionCoding.isCompact(bytes), let value = try? CompactCoding.decode(JSONValue.self, from: bytes) else { return }
        // What decodes is canonical: it encodes back to itself (a number of 2^53 or more that a JSON value
        // holds as an integer aside, which the value then keeps).
        guard let again = try? CompactCoding.encode(value), let reread = try? CompactCoding.decode(JSONValue.self, from: again), reread == value
        else { fatalError("a compact value that decodes does not encode back to itself") }
    }

    /// Runs async verification code to completion from a fuzzer's synchronous callback (a thread of its own,
    /// never a cooperative one).
    static func blocking(_ body: @escaping @Sendable () async -> Void) {
        let done = DispatchSemaphore(value: 0)
        Task {
            await body()
            done.signal()
        }
        done.wait()
    }

    /// A tenant's secrets are hashed by the planner; fuzzing wants the parser, not Argon2id.
    struct UnhashedSecrets: SecretHasher {
        func hash(_ secret: String) -> String { "" }
        func verify(_ secret: String, against hash: String) -> Bool { false }
    }
}

/// How the `journal` target reads its input: chunks of a one-byte kind and a two-byte big-endian length —
/// kind 0 a stored record, kind 1 a signed checkpoint's text, kind 3 a checkpoint stored shortened (its
/// tree size, 8 bytes, then its stored bytes: ``StoredCheckpoint``) — up to the end (a truncated chunk is
/// taken as far as it goes). ``encode(records:checkpoints:)`` writes a real journal this way, for seeds.
public struct JournalInput: Sendable {
    public var records: [[UInt8]] = []
    public var checkpoints: [String] = []
    public var shortenedCheckpoints: [(treeSize: UInt64, stored: [UInt8])] = []

    public init(_ bytes: [UInt8]) {
        var index = 0
        while index < bytes.count {
            let kind = bytes[index]
            guard index + 3 <= bytes.count else { return }
            let length = Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
            let start = index + 3
            let end = min(start + length, bytes.count)
            let chunk = Array(bytes[start..<end])
            if kind == 3 {
                let size = chunk.count >= 8 ? UInt64(bigEndianBytes: Array(chunk.prefix(8))) ?? 0 : 0
                shortenedCheckpoints.append((size, Array(chunk.dropFirst(8))))
            } else if kind & 1 == 0 {
                records.append(chunk)
            } else {
                checkpoints.append(String(decoding: chunk, as: UTF8.self))
            }
            index = end
        }
    }

    /// The input that reads back as `records` and `checkpoints` (each at most 65,535 bytes).
    public static func encode(records: [[UInt8]], checkpoints: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        func chunk(_ kind: UInt8, _ body: [UInt8]) {
            let body = body.prefix(0xFFFF)
            bytes += [kind, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        }
        for text in checkpoints { chunk(1, Array(text.utf8)) }
        for record in records { chunk(0, record) }
        return bytes
    }
}
