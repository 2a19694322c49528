import LedgerCore

/// A personal value kept inside a larger record — an email address in the configuration, a `login_hint`
/// in a request's parameters — that must stay sealed where the record is stored (events, and the
/// projections folded from them) and be opened only where it is used.
///
/// In memory a new value is ``clear(_:)``; appending its event seals it (``PersonalData``), and the event
/// and its projections then hold it as ``sealed(_:)``. Whoever holds the journal's data key opens it
/// (``PersonalData/open(_:contextType:opener:)``): back to ``clear(_:)``, or ``erased`` once its subject's
/// key is destroyed, or ``unavailable`` without the data key.
///
/// Encoded as a JSON string when clear (and as the marker texts for ``erased`` and ``unavailable``), as a
/// ``SealedValue`` object when sealed; a marker text decodes back to its case, so a value the caller could
/// not open never passes for a value.
public enum PersonalText: Sendable, Hashable, Codable, ExpressibleByStringLiteral, CustomStringConvertible {
    case clear(String)
    case sealed(SealedValue)
    /// Its subject's key was destroyed.
    case erased
    /// Sealed, and read without the journal's data key.
    case unavailable

    public init(stringLiteral value: String) { self = .clear(value) }

    /// The value, when it is known in clear.
    public var value: String? {
        if case .clear(let value) = self { value } else { nil }
    }

    /// Whether the value is gone or cannot be read here (erased, or sealed and not opened).
    public var isWithheld: Bool { value == nil }

    /// The value, or what stands in its place: ``PersonalData/erased`` or ``PersonalData/sealed``.
    public var description: String {
        switch self {
        case .clear(let value): value
        case .erased: PersonalData.erased
        case .sealed, .unavailable: PersonalData.sealed
        }
    }

    /// Whether both are known and equal ignoring case (email addresses).
    public func matchesIgnoringCase(_ other: PersonalText) -> Bool {
        guard let value, let other = other.value else { return false }
        return value.lowercased() == other.lowercased()
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            switch text {
            case PersonalData.erased: self = .erased
            case PersonalData.sealed: self = .unavailable
            default: self = .clear(text)
            }
        } else {
            self = .sealed(try container.decode(SealedValue.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .sealed(let sealed): try container.encode(sealed)
        default: try container.encode(description)
        }
    }
}
