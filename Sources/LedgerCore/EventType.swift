/// The name of an event's kind, such as `ledger.genesis` or `auth.code.issued`.
///
/// 1 to 128 characters from `a-z 0-9 . _ -`, starting with a letter or digit. Together with the
/// schema version it tells a reader how to interpret the payload.
public struct EventType: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The name.
    public let name: String

    /// Validates `name`; `nil` if it breaks the rules above.
    public init?(_ name: String) {
        let utf8 = Array(name.utf8)
        guard (1...128).contains(utf8.count), Self.isAlphanumeric(utf8[0]),
            utf8.allSatisfy({ Self.isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else { return nil }
        self.name = name
    }

    /// A literal event type; traps on an invalid literal, which is a programming error.
    public init(stringLiteral value: String) {
        guard let type = EventType(value) else { preconditionFailure("invalid event type literal \(value)") }
        self = type
    }

    public var description: String { name }

    private static func isAlphanumeric(_ char: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(char) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(char)
    }
}

extension EventType {
    /// The first event of every journal: its identity and first signing key.
    public static let genesis: EventType = "ledger.genesis"
    /// A signing-key rotation, signed by the outgoing key.
    public static let keyRotated: EventType = "ledger.key.rotated"
    /// Another signing key joins the journal's signers (a node of a cluster with a key of its own),
    /// signed by a key already among them (``KeyAdditionPayload``).
    public static let keyAdded: EventType = "ledger.key.added"
    /// A signing key leaves the journal's signers (a decommissioned node), signed by another signer
    /// (``KeyRemovalPayload``).
    public static let keyRemoved: EventType = "ledger.key.removed"
}
