import Foundation

/// A statement of the journal's Merkle tree at one size: the C2SP tlog-checkpoint body.
///
/// ```
/// authledger/3f2a…            ← origin: the journal's unique name
/// 1024                        ← tree size (events 1…1024)
/// 9Xn0…=                      ← root hash, base64
/// time 2026-11-27T11:01:20.123456Z   ← extension line: when it was made
/// ```
public struct Checkpoint: Sendable, Equatable {
    /// The journal's name, `authledger/<journal id>`.
    public var origin: String
    /// Number of events the tree covers.
    public var treeSize: UInt64
    /// RFC 9162 root of those events' records.
    public var rootHash: SHA256Digest
    /// When the checkpoint was made.
    public var timestamp: LedgerTimestamp

    public init(origin: String, treeSize: UInt64, rootHash: SHA256Digest, timestamp: LedgerTimestamp) {
        self.origin = origin
        self.treeSize = treeSize
        self.rootHash = rootHash
        self.timestamp = timestamp
    }

    /// The note body that is signed, ending with a newline.
    public var body: String {
        "\(origin)\n\(treeSize)\n\(rootHash.base64)\ntime \(timestamp.rfc3339)\n"
    }

    /// Parses a checkpoint body.
    public init(body: String) throws(CheckpointError) {
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count == 5, lines[4].isEmpty else { throw .malformed("expected four lines") }
        guard !lines[0].isEmpty else { throw .malformed("empty origin") }
        guard let size = UInt64(lines[1]), String(size) == lines[1] else { throw .malformed("bad tree size") }
        guard let root = SHA256Digest(base64: lines[2]) else { throw .malformed("bad root hash") }
        guard lines[3].hasPrefix("time "), let time = LedgerTimestamp(rfc3339: String(lines[3].dropFirst(5))) else {
            throw .malformed("bad time line")
        }
        self.init(origin: lines[0], treeSize: size, rootHash: root, timestamp: time)
    }

    /// Signs the checkpoint as a C2SP signed note under the key name `origin`.
    public func signed(with key: Ed25519SigningKey) -> SignedCheckpoint {
        let verifier = NoteVerifierKey(name: origin, publicKey: key.publicKey)
        let signature = key.signature(for: Array(body.utf8))
        return SignedCheckpoint(
            checkpoint: self,
            signatures: [NoteSignature(keyName: origin, keyHash: verifier.keyHash, signature: signature)])
    }
}

/// One signature line of a signed note: `— <key name> base64(key hash || signature)`.
public struct NoteSignature: Sendable, Equatable {
    public var keyName: String
    /// The first four bytes of `SHA-256(name || "\n" || 0x01 || public key)`.
    public var keyHash: [UInt8]
    /// The 64-byte Ed25519 signature over the note body.
    public var signature: [UInt8]

    var line: String { "\u{2014} \(keyName) \(Base64.encode(keyHash + signature))\n" }
}

/// A C2SP signed note: a UTF-8 text body ending in a newline, a blank line, then one signature line per
/// signer. Signatures cover the body's bytes.
public struct SignedNote: Sendable, Equatable {
    /// The signed text, ending with a newline.
    public var body: String
    public var signatures: [NoteSignature]

    public init(body: String, signatures: [NoteSignature]) {
        self.body = body
        self.signatures = signatures
    }

    /// The full note: body, a blank line, then one line per signature.
    public var text: String { body + "\n" + signatures.map(\.line).joined() }

    /// Parses a signed note's text. Signatures are not checked here; see ``verifier(among:)``.
    public init(text: String) throws(CheckpointError) {
        guard let split = text.range(of: "\n\n", options: .backwards) else { throw .malformed("no signature block") }
        let body = String(text[..<split.lowerBound]) + "\n"
        let signatureBlock = text[split.upperBound...]
        guard signatureBlock.hasSuffix("\n") else { throw .malformed("signature block must end with a newline") }
        var signatures: [NoteSignature] = []
        for line in signatureBlock.dropLast().split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("\u{2014} ") else { throw .malformed("signature line must start with an em dash") }
            let fields = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, let raw = Base64.decode(String(fields[1])), raw.count == 68 else {
                throw .malformed("bad signature line")
            }
            signatures.append(
                NoteSignature(keyName: String(fields[0]), keyHash: Array(raw.prefix(4)), signature: Array(raw.dropFirst(4))))
        }
        guard !signatures.isEmpty else { throw .malformed("no signatures") }
        self.init(body: body, signatures: signatures)
    }

    /// The first of `keys` with a valid signature on the note (matching name, key hash and signature).
    public func verifier(among keys: [NoteVerifierKey]) -> NoteVerifierKey? {
        let message = Array(body.utf8)
        for signature in signatures {
            for key in keys where key.name == signature.keyName && key.keyHash == signature.keyHash {
                if key.publicKey.isValidSignature(signature.signature, for: message) { return key }
            }
        }
        return nil
    }
}

/// A checkpoint with its signatures, in the C2SP signed-note text format.
public struct SignedCheckpoint: Sendable, Equatable {
    public var checkpoint: Checkpoint
    public var signatures: [NoteSignature]

    public init(checkpoint: Checkpoint, signatures: [NoteSignature]) {
        self.checkpoint = checkpoint
        self.signatures = signatures
    }

    /// The signed note.
    public var note: SignedNote { SignedNote(body: checkpoint.body, signatures: signatures) }

    /// The full note text.
    public var text: String { note.text }

    /// Parses a signed note holding a checkpoint. Signatures are not checked here; see ``verify(with:)``.
    public init(text: String) throws(CheckpointError) {
        let note = try SignedNote(text: text)
        self.init(checkpoint: try Checkpoint(body: note.body), signatures: note.signatures)
    }

    /// The first key among `keys` that has a valid signature on this checkpoint under its origin, or `nil`.
    public func verify(with keys: [Ed25519PublicKey]) -> Ed25519PublicKey? {
        note.verifier(among: keys.map { NoteVerifierKey(name: checkpoint.origin, publicKey: $0) })?.publicKey
    }
}

/// A signed-note verifier key, `<name>+<hash hex>+<base64(0x01 || public key)>`: the line an auditor pins,
/// and the form that standard transparency-log tools (such as Go's `golang.org/x/mod/sumdb/note`) read.
public struct NoteVerifierKey: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var publicKey: Ed25519PublicKey

    /// Signed-note algorithm byte for Ed25519.
    static let ed25519Algorithm: UInt8 = 0x01

    public init(name: String, publicKey: Ed25519PublicKey) {
        self.name = name
        self.publicKey = publicKey
    }

    /// `SHA-256(name || "\n" || 0x01 || public key)[0..<4]`.
    public var keyHash: [UInt8] {
        Array(SHA256Digest.hash(parts: [Array(name.utf8), [0x0a, Self.ed25519Algorithm], publicKey.bytes]).bytes.prefix(4))
    }

    public var description: String {
        "\(name)+\(Hex.encode(keyHash))+\(Base64.encode([Self.ed25519Algorithm] + publicKey.bytes))"
    }

    /// Parses a verifier key line, checking that its hash matches its name and key.
    public init(parsing text: String) throws(CheckpointError) {
        // The base64 key may itself contain "+", so split only at the first two.
        let fields = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, !fields[0].isEmpty, let hash = Hex.decode(String(fields[1])), hash.count == 4,
            let raw = Base64.decode(String(fields[2])), raw.count == 33, raw[0] == Self.ed25519Algorithm,
            let key = Ed25519PublicKey(bytes: Array(raw.dropFirst()))
        else { throw .malformed("not an Ed25519 verifier key: <name>+<hash>+<base64 key>") }
        self.init(name: String(fields[0]), publicKey: key)
        guard keyHash == hash else { throw .malformed("verifier key hash does not match its name and key") }
    }
}

/// Why a checkpoint, signed note or verifier key could not be read.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let reason): "malformed checkpoint: \(reason)"
        }
    }
}

/// How the journal keeps its own checkpoints in the `checkpoints` table: as the signed note's text, or
/// **shortened** — without what the journal knows anyway (journal format §6).
///
/// A checkpoint's note repeats its origin twice (`authledger/` and the journal id), its tree size (the key
/// it is stored under) and the root of the tree of that size, which the `merkle` table and the events give
/// again: about 200 of its 270 bytes. The shortened form keeps the rest:
///
/// | field | size |
/// |---|---|
/// | form tag ``shortenedTag`` (`0x01`; a note starts with its origin, `a`) | 1 |
/// | time (microseconds since 1970, signed) | 8 |
/// | key hash (4) and Ed25519 signature (64) of the note's one signature | 68 |
///
/// It stands for exactly one note: the checkpoint of the journal's origin, the tree size it is stored
/// under, the root of the tree of that size and its time, signed by the journal's key (key name: the
/// origin). A verifier rebuilds the note with the root it computed itself, so a shortened checkpoint
/// whose signature does not hold over that root proves nothing: the events since the last proven size
/// are not the ones it signed, or it is not genuine.
public enum StoredCheckpoint {
    /// The first byte of a shortened checkpoint.
    public static let shortenedTag: UInt8 = 0x01
    static let shortenedCount = 1 + 8 + 4 + 64

    /// Whether `stored` is a shortened checkpoint (else it is the note's text).
    public static func isShortened(_ stored: [UInt8]) -> Bool { stored.first == shortenedTag }

    /// The shortened form of `signed`, a checkpoint with one signature whose key name is its origin (as
    /// the journal's writer signs them).
    public static func shortened(_ signed: SignedCheckpoint) -> [UInt8] {
        precondition(signed.signatures.count == 1 && signed.signatures[0].keyName == signed.checkpoint.origin, "one signature by the origin's key")
        var writer = ByteWriter(capacity: shortenedCount)
        writer.write(shortenedTag)
        writer.write(signed.checkpoint.timestamp.microseconds)
        writer.write(signed.signatures[0].keyHash)
        writer.write(signed.signatures[0].signature)
        return writer.bytes
    }

    /// The checkpoint that `stored`, stored under `treeSize` in the journal of `origin`, stands for, the
    /// tree of that size having the root `rootHash`: a note stored as text is read as it is.
    /// - Throws: ``CheckpointError`` when the text is not a signed checkpoint, or the shortened form is not
    ///   exactly 77 bytes.
    public static func signed(expanding stored: [UInt8], treeSize: UInt64, origin: String, rootHash: SHA256Digest) throws(CheckpointError) -> SignedCheckpoint {
        guard isShortened(stored) else { return try SignedCheckpoint(text: String(decoding: stored, as: UTF8.self)) }
        var signed = try unresolved(stored, treeSize: treeSize)
        signed.resolve(origin: origin, rootHash: rootHash)
        return signed
    }

    /// A shortened checkpoint with its origin and root still to be filled in (``SignedCheckpoint/resolve(origin:rootHash:)``):
    /// empty, and the empty tree's.
    public static func unresolved(_ stored: [UInt8], treeSize: UInt64) throws(CheckpointError) -> SignedCheckpoint {
        guard stored.count == shortenedCount, isShortened(stored) else { throw .malformed("a shortened checkpoint is \(shortenedCount) bytes") }
        var reader = ByteReader(stored)
        _ = reader.readUInt8()
        let micros = reader.readInt64()!
        let keyHash = reader.read(count: 4)!
        let signature = reader.read(count: 64)!
        return SignedCheckpoint(
            checkpoint: Checkpoint(origin: "", treeSize: treeSize, rootHash: MerkleHashing.emptyRoot, timestamp: LedgerTimestamp(microsecondsSinceEpoch: micros)),
            signatures: [NoteSignature(keyName: "", keyHash: keyHash, signature: signature)])
    }
}

extension SignedCheckpoint {
    /// Fills in what a shortened checkpoint leaves out (``StoredCheckpoint/unresolved(_:treeSize:)``).
    public mutating func resolve(origin: String, rootHash: SHA256Digest) {
        checkpoint.origin = origin
        checkpoint.rootHash = rootHash
        for index in signatures.indices { signatures[index].keyName = origin }
    }
}
