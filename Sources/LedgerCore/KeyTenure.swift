/// The sequence numbers a journal key may sign: from the event after the one that introduced it (event #1
/// for the genesis key, which signs the genesis event itself) to the last event it signed before a rotation
/// replaced it or a removal retired it — open-ended while it is still a signer.
///
/// A key is trusted only within its tenure: a retired key that leaks must not be able to sign anything
/// after its retirement, neither events nor checkpoints, whatever else it can forge.
public struct KeyTenure: Sendable, Equatable, CustomStringConvertible {
    /// The first sequence number the key may sign.
    public var first: UInt64
    /// The last sequence number it may sign; `nil` while it is a signer.
    public var last: UInt64?

    public init(first: UInt64, last: UInt64? = nil) {
        self.first = first
        self.last = last
    }

    /// Whether the key may sign event `sequence`.
    public func allowsEvent(_ sequence: UInt64) -> Bool {
        sequence >= first && last.map { sequence <= $0 } ?? true
    }

    /// Whether the key may sign a checkpoint of `size` events: it signed the last of them, or it signs the
    /// next one (the checkpoint of the batch that rotates to a key is signed by the new key).
    public func allowsCheckpoint(size: UInt64) -> Bool {
        first <= size + 1 && last.map { size <= $0 } ?? true
    }

    /// `#first-#last`, or `#first-` while open: how a pinned key file writes it.
    public var description: String {
        "#\(first)-" + (last.map { "#\($0)" } ?? "")
    }

    /// Parses ``description``.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].hasPrefix("#"), let first = UInt64(parts[0].dropFirst()), first >= 1 else { return nil }
        if parts[1].isEmpty {
            self.init(first: first)
        } else {
            guard parts[1].hasPrefix("#"), let last = UInt64(parts[1].dropFirst()), last >= first - 1 else { return nil }
            self.init(first: first, last: last)
        }
    }
}

/// A key an auditor pins, with the tenure in which it signed (as `authledger keys export-public` writes
/// it: `<signed-note verifier key> #first-#last`). A key pinned without a tenure — a pin file of an earlier
/// release — is trusted wherever the verified key chain makes it a signer, which does not stop a retired
/// key from forging a history in which it was never retired: pin tenures.
public struct PinnedKey: Sendable, Equatable, CustomStringConvertible {
    public var verifierKey: NoteVerifierKey
    public var tenure: KeyTenure?

    public var key: Ed25519PublicKey { verifierKey.publicKey }

    public init(_ verifierKey: NoteVerifierKey, tenure: KeyTenure? = nil) {
        self.verifierKey = verifierKey
        self.tenure = tenure
    }

    /// A key pinned by its public key alone (any name: the verifier matches keys, not names).
    public init(_ key: Ed25519PublicKey, tenure: KeyTenure? = nil) {
        self.init(NoteVerifierKey(name: "pinned", publicKey: key), tenure: tenure)
    }

    /// `<verifier key>` or `<verifier key> #first-#last`.
    public var description: String {
        verifierKey.description + (tenure.map { " \($0)" } ?? "")
    }

    /// Parses one line of a pin file: a signed-note verifier key, optionally followed by a tenure.
    public init(parsing line: String) throws(CheckpointError) {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count == 1 || fields.count == 2 else { throw .malformed("a pinned key is a verifier key and an optional tenure #first-#last") }
        let verifierKey = try NoteVerifierKey(parsing: String(fields[0]))
        guard fields.count == 2 else {
            self.init(verifierKey)
            return
        }
        guard let tenure = KeyTenure(parsing: fields[1]) else { throw .malformed("not a key tenure (#first-#last or #first-): \(fields[1])") }
        self.init(verifierKey, tenure: tenure)
    }
}
