import Crypto

/// A SHA-256 digest: 32 bytes.
///
/// Used for event hashes, the hash chain and every node of the Merkle tree.
public struct SHA256Digest: Hashable, Sendable, CustomStringConvertible {
    /// The digest's 32 bytes.
    public let bytes: [UInt8]

    /// The digest of 32 zero bytes, used as the previous-event hash of the first event.
    public static let zero = SHA256Digest(unchecked: [UInt8](repeating: 0, count: 32))

    /// Wraps 32 bytes; `nil` for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// Parses 64 hexadecimal digits; `nil` for anything else.
    public init?(hex: String) {
        guard let bytes = Hex.decode(hex), bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// Parses standard base64 of exactly 32 bytes; `nil` for anything else.
    public init?(base64: String) {
        guard let bytes = Base64.decode(base64), bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    init(unchecked bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Lower-case hexadecimal.
    public var hex: String { Hex.encode(bytes) }

    /// Standard base64 with padding.
    public var base64: String { Base64.encode(bytes) }

    public var description: String { hex }

    /// SHA-256 of `data`.
    public static func hash(_ data: some ContiguousBytes) -> SHA256Digest {
        var hasher = SHA256()
        data.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return SHA256Digest(hasher)
    }

    /// Calls `body` with the SHA-256 of `data`, read in place: no digest is kept (where many are taken,
    /// the array ``bytes`` would be an allocation each).
    public static func withHash<R>(of data: some ContiguousBytes, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var hasher = SHA256()
        data.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return try hasher.finalize().withUnsafeBytes(body)
    }

    /// `SHA-256(prefix || first || second)`, without building the concatenation (the Merkle hot path).
    static func hash(prefix: UInt8, _ first: [UInt8], _ second: [UInt8] = []) -> SHA256Digest {
        var hasher = SHA256()
        withUnsafeBytes(of: prefix) { hasher.update(bufferPointer: $0) }
        first.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        second.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return SHA256Digest(hasher)
    }

    /// SHA-256 over several byte strings, as if they were concatenated.
    public static func hash(parts: [[UInt8]]) -> SHA256Digest {
        var hasher = SHA256()
        for part in parts { part.withUnsafeBytes { hasher.update(bufferPointer: $0) } }
        return SHA256Digest(hasher)
    }

    /// The digest of what `hasher` has read.
    ///
    /// SHA-256 is swift-crypto's (BoringSSL's, which uses the processor's SHA extensions where it has
    /// them: about three times libsodium's portable SHA-256 on the journal's 300-byte records). It is
    /// the hash of the writer's chain and Merkle tree and of every verification.
    private init(_ hasher: SHA256) {
        self.bytes = hasher.finalize().withUnsafeBytes { Array($0) }
    }
}

/// Anything whose bytes can be read in place: `[UInt8]`, `ArraySlice<UInt8>`, `UnsafeRawBufferPointer`.
public protocol ContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
extension UnsafeRawBufferPointer: ContiguousBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try body(self) }
}
