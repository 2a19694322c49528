import Foundation
import LedgerCore

/// Where a log stream stands, kept in the journal's store (its `consumers` table) so that a restart — or
/// another node of a shared journal — carries on after the last event delivered: the last sequence
/// number the receiver acknowledged, and which node delivers until when.
///
/// Every change is made in the journal writer's transaction, under the journal's lock on a shared
/// journal, from the state stored there: the functions below are the whole protocol, pure.
public struct LogStreamCursor: Codable, Equatable, Sendable {
    /// The last event the receiver acknowledged (0: none yet).
    public var delivered: UInt64
    /// The node delivering the stream, while its lease runs.
    public var holder: String?
    /// Until when (journal time, microseconds) the holder may deliver without renewing.
    public var leaseUntil: Int64

    enum CodingKeys: String, CodingKey {
        case delivered, holder
        case leaseUntil = "lease_until"
    }

    public init(delivered: UInt64 = 0, holder: String? = nil, leaseUntil: Int64 = 0) {
        self.delivered = delivered
        self.holder = holder
        self.leaseUntil = leaseUntil
    }

    /// The stored state (a stream never stored starts before the first event).
    public static func decode(_ bytes: [UInt8]?) -> LogStreamCursor {
        guard let bytes, let cursor = try? JSONDecoder().decode(LogStreamCursor.self, from: Data(bytes)) else { return LogStreamCursor() }
        return cursor
    }

    public var encoded: [UInt8] {
        (try? JSONEncoder().encode(self)).map(Array.init) ?? []
    }

    /// The stream held by `node` until `now` + `lease`, if it may take it: it holds it already, nobody
    /// does, or the holder's lease has run out. `nil` while another node's lease runs.
    public func claimed(by node: String, at now: LedgerTimestamp, lease: Duration) -> LogStreamCursor? {
        guard holder == nil || holder == node || leaseUntil <= now.microseconds else { return nil }
        return LogStreamCursor(delivered: delivered, holder: node, leaseUntil: now.microseconds + lease.microseconds)
    }

    /// The stream moved on to `sequence` by `node`, which delivered the events after `previous`: `nil`
    /// when `node` no longer holds it or someone else moved it meanwhile (the delivery then counted for
    /// nothing here, and the receiver got those events once more — at least once, never lost).
    public func advanced(from previous: UInt64, to sequence: UInt64, by node: String, at now: LedgerTimestamp, lease: Duration)
        -> LogStreamCursor?
    {
        guard holder == node, delivered == previous, sequence >= previous else { return nil }
        return LogStreamCursor(delivered: sequence, holder: node, leaseUntil: now.microseconds + lease.microseconds)
    }

    /// The stream let go by `node` (on shutdown), so that another node takes it at once; unchanged if
    /// `node` does not hold it.
    public func released(by node: String) -> LogStreamCursor {
        guard holder == node else { return self }
        return LogStreamCursor(delivered: delivered)
    }
}

extension Duration {
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
