import LedgerCore

/// The trace of the request that records events: its W3C trace id is written into each event's payload
/// (`trace_id`, a top-level member), so that an investigator can go from an event to the request's trace
/// and back (`authledger-replay timeline --trace ID`).
///
/// The server binds ``traceID`` for the duration of a traced request; the events it records then carry
/// it, wherever they are encoded (the caller captures it before handing work to another thread). Events
/// recorded outside a traced request carry none.
public enum RequestTrace {
    /// The trace id of the request being served (32 lowercase hex digits), or `nil`.
    @TaskLocal public static var traceID: String?

    /// The payload member that holds the trace id.
    public static let member = "trace_id"
    private static let quotedMember = Array("\"\(member)\"".utf8)
    /// The member as ``CompactCoding`` writes it, in either form of objects: its name, then the tag and
    /// length of a trace id's 16 bytes.
    private static let compactMembers = CompactCoding.memberNameForms(member).map { $0 + [CompactCoding.Tag.hex.rawValue, 16] }

    /// Whether `payload` is an object, JSON or compact, by its first byte.
    private static func isObject(_ payload: [UInt8]) -> Bool {
        guard let first = payload.first else { return false }
        return first == UInt8(ascii: "{") || first == CompactCoding.Tag.object.rawValue || first == CompactCoding.Tag.namedObject.rawValue
    }

    /// Whether `text` is a W3C trace id: 32 lowercase hex digits, not all zero.
    public static func isTraceID(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } && text.utf8.contains { $0 != 48 }
    }

    /// `payload` (an object, JSON or compact) with `trace_id` set to `traceID`, re-encoded canonically in
    /// its encoding; `payload` itself when it is not an object or `traceID` is not a trace id. (The journal
    /// adds the member while encoding the event: ``PayloadEncoding/encode(_:adding:)``.)
    public static func annotate(_ payload: [UInt8], traceID: String) -> [UInt8] {
        let encoding = PayloadEncoding.of(payload)
        guard isTraceID(traceID), isObject(payload),
            case .object(var members) = try? PayloadCoding.decode(JSONValue.self, from: payload)
        else { return payload }
        members[member] = .string(traceID)
        return (try? encoding.encode(JSONValue.object(members))) ?? payload
    }

    /// The trace id an event's payload (JSON or compact) carries at its top level, if any. Only the top
    /// level counts: a request parameter named `trace_id` is nested in the payload and names nothing.
    public static func traceID(in payload: [UInt8]) -> String? {
        // Most payloads have none: look for the name before parsing (rebuild asks this of every event).
        let names = PayloadCoding.isCompact(payload) ? compactMembers : [quotedMember]
        guard isObject(payload), names.contains(where: { payload.firstIndex(of: $0, in: 0..<payload.count) != nil }),
            case .object(let members) = try? PayloadCoding.decode(JSONValue.self, from: payload),
            let id = members[member]?.string, isTraceID(id)
        else { return nil }
        return id
    }
}
