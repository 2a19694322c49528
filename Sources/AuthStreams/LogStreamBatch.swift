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

    /// Renders `events` (each with its payload, personal fields already handled) in `format`.
    /// - Parameter origin: the journal's origin (`authledger/<journal id>`): with the sequence number,
    ///   it identifies an event across journals, so that a receiver can drop one delivered twice.
    public static func render(
        _ events: [(envelope: EventEnvelope, payload: Any)], format: LogStreamConfiguration.Format, origin: String
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
            // A code's grant is its decision's, the event before it in its commit (usually in this batch).
            let earlier = [UInt64: Any](events.map { ($0.envelope.sequence, $0.payload) }, uniquingKeysWith: { first, _ in first })
            text = EventRendering.jsonLine(events.map { Auth0LogFormat.log($0.envelope, payload: $0.payload, origin: origin, earlier: earlier) })
        }
        return LogStreamBatch(body: Array(text.utf8), contentType: contentType, first: first, last: last, count: events.count)
    }
}
