import AuthJournal
import Foundation
import LedgerCore
import LedgerJournal

/// One request's worth of events, rendered in the stream's format: what is POSTed, and the last
/// sequence number it carries.
public struct LogStreamBatch: Sendable {
    public var body: [UInt8]
    public var contentType: String
    /// The first and last sequence numbers in the body.
    public var first: UInt64
    public var last: UInt64
    public var count: Int

    /// How many events before an event it may take values from (journal format §14): a code's decision is
    /// one or two before it, and the decision's request one before that.
    public static let valuesLookback: UInt64 = 3

    /// Renders `events` (each with its payload, personal fields already handled) in `format`.
    /// - Parameters:
    ///   - origin: the journal's origin (`authledger/<journal id>`): with the sequence number, it
    ///     identifies an event across journals, so that a receiver can drop one delivered twice.
    ///   - context: the events just before the first (up to ``valuesLookback``), rendered the same way and
    ///     not delivered: what the first events may take values from.
    public static func render(
        _ events: [(envelope: EventEnvelope, payload: Any)], format: LogStreamConfiguration.Format, origin: String,
        context: [(envelope: EventEnvelope, payload: Any)] = []
    ) -> LogStreamBatch? {
        guard let first = events.first?.envelope.sequence, let last = events.last?.envelope.sequence else { return nil }
        let text: String
        let contentType: String
        switch format {
        case .jsonl, .ocsf:
            contentType = "application/x-ndjson"
            text = events.map { event in
                var object = EventRendering.object(event.envelope, payload: event.payload)
                object["origin"] = origin
                let line = format == .jsonl ? object : OCSF.record(for: event.envelope, payload: event.payload, authledger: object)
                return EventRendering.jsonLine(line) + "\n"
            }.joined()
        case .auth0:
            contentType = "application/json"
            // A code's grant is its decision's, and a decision's values its request's: events of its commit,
            // in this batch or in the context before it.
            let earlier = [UInt64: Any]((context + events).map { ($0.envelope.sequence, $0.payload) }, uniquingKeysWith: { first, _ in first })
            text = EventRendering.jsonLine(events.map { Auth0LogFormat.log($0.envelope, payload: $0.payload, origin: origin, earlier: earlier) })
        }
        return LogStreamBatch(body: Array(text.utf8), contentType: contentType, first: first, last: last, count: events.count)
    }
}
