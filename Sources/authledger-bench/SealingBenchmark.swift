import ArgumentParser
import AuthCore
import AuthJournal
import Foundation
import LedgerCore
import LedgerJournal

/// `authledger-bench sealing --journal DIR`: the CPU time the server spends sealing the personal values of
/// one authorize-and-token flow, measured on the real events of the last flow in a journal the server
/// wrote (`tools/bench http` runs it on its own journal, and sets it beside the CPU time of one
/// `/authorize` measured in the same run).
///
/// What is timed is exactly what sealing adds to appending those events (``AuthRecorder``): finding the
/// personal values in the payload, unwrapping the subject's key, encrypting, and decoding the stored event
/// again for the projections.
struct SealingBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sealing", abstract: "CPU time to seal the personal values of one authorize-and-token flow (one core).")

    @Option(help: ArgumentHelp("A journal the server wrote, with its data key beside it.", valueName: "dir")) var journal: String
    @Option(help: "Seconds to measure.") var seconds: Double = 2

    func run() async throws {
        let dataKey = try JournalDataKeyFile(journal: journal).load()
        let reader = try JournalReader(directory: journal)
        defer { reader.close() }
        // One flow, as the last events of each of its types: a request, its decision, its code, a token
        // exchange — in clear (opened), with their subjects' wrapped keys.
        let types = [AuthEvent.authorizeRequestedType, AuthEvent.authorizeDecidedType, AuthEvent.codeIssuedType, AuthEvent.tokenIssuedType]
        var flow: [(EventType, [UInt8], LedgerTimestamp)] = []
        var wrapped: [String: [UInt8]] = [:]
        try reader.read { snapshot in
            let opener = SealedValueOpener(snapshot: snapshot, dataKey: dataKey)
            var last: [EventType: EventEnvelope] = [:]
            try snapshot.forEachEvent { envelope in
                if types.contains(envelope.type) { last[envelope.type] = envelope }
                return true
            }
            for type in types {
                guard let envelope = last[type] else { continue }
                flow.append((type, try PersonalData.open(envelope.payload, type: type, opener: opener.opener), envelope.timestamp))
            }
            for subject in try snapshot.subjects(withPrefix: "") {
                if let key = try snapshot.subjectKey(subject, dataKey: dataKey) { wrapped[subject] = dataKey.wrap(key, subject: subject) }
            }
        }
        guard !flow.isEmpty else { throw ValidationError("\(journal) holds no authorize-and-token flow") }
        let sealed = try flow.filter { PersonalData.schemaVersion(of: $0.0) != nil }.map { type, payload, time in
            (type, payload, time, try AuthEvent(type: type, payload: payload))
        }
        // As the recorder does it: from the typed event where it can, through the JSON otherwise.
        func sealFlow() throws {
            let key = { (subject: String, dataKey: DataKey) -> SubjectKey in
                guard let stored = wrapped[subject], let key = dataKey.unwrap(stored, subject: subject) else { return SubjectKey.generate() }
                return key
            }
            for (type, payload, time, event) in sealed {
                if let event, try PersonalData.sealedWithoutParsing(event, time: time, dataKey: dataKey, key: key) != nil { continue }
                let result = try PersonalData.sealed(payload, type: type, time: time, dataKey: dataKey, key: key)
                if let result { _ = try AuthEvent(type: type, payload: result.unopened) }
            }
        }
        try sealFlow()
        var flows = 0
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            for _ in 0..<16 { try sealFlow() }
            flows += 16
        }
        let rate = Double(flows) / Date().timeIntervalSince(start)
        let names = flow.map(\.0.name).joined(separator: " ")
        print(#"{"flows_per_second_one_core": \#(Int(rate)), "events": \#(flow.count), "sealed_events": \#(sealed.count), "types": "\#(names)"}"#)
    }
}
