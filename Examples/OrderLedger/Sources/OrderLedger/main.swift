import Foundation
import LedgerCore
import LedgerJournal
import LedgerLMDB

/// The example's domain events.
struct OrderPlaced: Codable { var orderID: String; var item: String; var quantity: Int }
struct OrderShipped: Codable { var orderID: String; var carrier: String }
struct AlreadyShipped: Error {}

let directory = FileManager.default.temporaryDirectory.path + "/order-ledger-\(UUID().uuidString.prefix(8))"
defer { try? FileManager.default.removeItem(atPath: directory) }

// A journal with one projection table of our own: order id → status.
var configuration = Journal.Configuration(keyBeside: directory + "/journal")
configuration.projections = ["orders"]
let journal = try Journal.open(directory: directory + "/journal", configuration)

// Place three orders concurrently: the events are signed in these tasks and group-committed.
try await withThrowingTaskGroup(of: Void.self) { group in
    for (id, item) in [("o-1", "tea"), ("o-2", "coffee"), ("o-3", "cocoa")] {
        group.addTask {
            let event = try journal.prepare(EventDraft(type: "order.placed", encoding: OrderPlaced(orderID: id, item: item, quantity: 1)))
            try await journal.transact { transaction in
                try transaction.append(event)
                try transaction.projection("orders").put(Array("placed".utf8), for: Array(id.utf8))
            }
        }
    }
    try await group.waitForAll()
}

/// Ships an order once: the check and the event are in one transaction, so two shipments cannot both win.
func ship(_ id: String, carrier: String) async throws {
    let event = try journal.prepare(EventDraft(type: "order.shipped", encoding: OrderShipped(orderID: id, carrier: carrier)))
    try await journal.transact { transaction in
        let orders = try transaction.projection("orders")
        guard try orders.get(Array(id.utf8)) == Array("placed".utf8) else { throw AlreadyShipped() }
        try transaction.append(event)
        try orders.put(Array("shipped".utf8), for: Array(id.utf8))
    }
}
try await ship("o-2", carrier: "post")
let second: Bool
do {
    try await ship("o-2", carrier: "courier")
    second = true
} catch is AlreadyShipped {
    second = false
}

let statuses = try journal.read { snapshot in
    try ["o-1", "o-2", "o-3"].map { id in (id, String(decoding: try snapshot.projection("orders").get(Array(id.utf8)) ?? [], as: UTF8.self)) }
}
let checkpoint = try await journal.checkpoint()
let proof = try journal.read { try $0.inclusionProof(sequence: 2, treeSize: checkpoint.checkpoint.treeSize) }
let record = try journal.read { try $0.record(2) }!
try proof.verify(leafHash: MerkleHashing.leafHash(record), root: checkpoint.checkpoint.rootHash)
await journal.close()

let report = try JournalReader(directory: directory + "/journal").verify(trust: .genesisKey)
for (id, status) in statuses { print("\(id): \(status)") }
print("second shipment of o-2 refused: \(!second)")
print("inclusion proof of event #2 verified against checkpoint \(checkpoint.checkpoint.treeSize)")
switch report {
case .success(let verified):
    print("journal verified: \(verified.eventCount) events")
case .failure(let failure):
    print("journal FAILED: \(failure)")
    exit(1)
}
exit(second ? 1 : 0)
