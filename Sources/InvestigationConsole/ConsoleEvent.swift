import Foundation
import LedgerCore

/// One event as `authledger-replay timeline --format jsonl` answers it: sequence, time, type, the text
/// output's description, and the payload with sealed values opened or marked.
public struct ConsoleEvent: Sendable, Equatable {
    public var sequence: UInt64
    public var time: String
    public var type: String
    /// What the text output says of it (after the type).
    public var description: String
    public var payload: JSONValue

    public init(sequence: UInt64, time: String, type: String, description: String, payload: JSONValue) {
        self.sequence = sequence
        self.time = time
        self.type = type
        self.description = description
        self.payload = payload
    }

    /// The events of a `timeline --format jsonl` answer; lines that are not events are skipped.
    public static func parse(jsonl: [String]) -> [ConsoleEvent] {
        jsonl.compactMap { line in
            guard case .object(let members)? = try? PayloadCoding.decode(JSONValue.self, from: Array(line.utf8)),
                let sequence = members["sequence"].flatMap(Self.unsigned), let time = members["time"]?.string, let type = members["type"]?.string
            else { return nil }
            return ConsoleEvent(
                sequence: sequence, time: time, type: type, description: members["description"]?.string ?? "", payload: members["payload"] ?? .null)
        }
    }

    private static func unsigned(_ value: JSONValue) -> UInt64? {
        switch value {
        case .unsigned(let number): number
        case .integer(let number): number >= 0 ? UInt64(number) : nil
        default: nil
        }
    }

    /// A `timeline` the event leads to: the filter (`user`, `client`, `ip`, `trace`, `code-hash`,
    /// `session-hash`) and the value the event records for it.
    public struct Reference: Sendable, Equatable, Hashable {
        public var filter: String
        public var value: String
    }

    /// The payload members that name something a timeline can follow, by filter.
    static let followed: [String: String] = [
        "user_id": "user", "client_id": "client", "client_ip": "ip", "trace_id": "trace", "code_hash": "code-hash",
        "session_hash": "session-hash",
    ]

    /// What the event names that a timeline can follow, found anywhere in its payload, in a stable order.
    /// Markers (`[sealed]`, `[erased]`) and pseudonyms name nothing to follow.
    public var references: [Reference] {
        var found = Set<Reference>()
        func walk(_ value: JSONValue, depth: Int) {
            guard depth < 8 else { return }
            switch value {
            case .object(let members):
                for (name, member) in members {
                    // A trace id counts only at the top level (``RequestTrace``): a nested one is a value a request sent.
                    if let filter = Self.followed[name], filter != "trace" || depth == 0, let text = member.string, Self.followable(text) {
                        found.insert(Reference(filter: filter, value: text))
                    }
                    walk(member, depth: depth + 1)
                }
            case .array(let elements):
                for element in elements { walk(element, depth: depth + 1) }
            default:
                break
            }
        }
        walk(payload, depth: 0)
        let order = ["user", "client", "ip", "session-hash", "code-hash", "trace"]
        return found.sorted { ($0.filter == $1.filter) ? $0.value < $1.value : order.firstIndex(of: $0.filter)! < order.firstIndex(of: $1.filter)! }
    }

    private static func followable(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 256 && !text.hasPrefix("[") && !text.hasPrefix("hmac-sha256:")
    }

    /// The event types `authledger-replay explain` answers for.
    public static let explainable: Set<String> = [
        "auth.authorize.requested", "auth.authorize.decided", "auth.client_credentials.decided", "auth.par.pushed",
        "auth.logout.decided", "auth.token.introspected",
    ]

    public var isExplainable: Bool { Self.explainable.contains(type) }
}
