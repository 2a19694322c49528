/// A map of at most ``capacity`` keys that forgets the oldest key set to make room for a new one: for
/// things set up once and used once, if at all, soon after (the reads a code's redemption will make, a
/// code kept for its redemption), where the oldest is the least likely to be asked for.
///
/// The keys are queued in the order they were set; a key taken before it comes to the front leaves a
/// stale slot there, and each key's generation tells a stale slot from the key set up again since. A slot
/// counts towards ``capacity`` until it leaves the queue. Every operation is O(1), amortized. A value
/// type: its owner decides how it is shared (a `Mutex`, say).
public struct OldestFirstMap<Key: Hashable, Value> {
    /// The most keys held at once.
    public let capacity: Int
    private var entries: [Key: (value: Value, generation: UInt64)] = [:]
    /// The slots in the order they were set, from `head` on (the ones before it have left the queue).
    private var order: [(key: Key, generation: UInt64)] = []
    private var head = 0
    private var generation: UInt64 = 0

    /// An empty map of at most `capacity` keys (at least one).
    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// How many keys are held.
    public var count: Int { entries.count }

    /// The value under `key`, left in place.
    public subscript(key: Key) -> Value? { entries[key]?.value }

    /// Sets `value` under `key` (replacing what it held, as the newest key), forgetting the oldest key
    /// when ``capacity`` are held.
    public mutating func insert(_ value: Value, for key: Key) {
        generation &+= 1
        if order.count - head == capacity { forgetOldestSlot() }
        order.append((key, generation))
        entries[key] = (value, generation)
    }

    /// Removes and returns the value under `key`.
    public mutating func take(_ key: Key) -> Value? {
        entries.removeValue(forKey: key)?.value
    }

    /// Forgets the oldest keys for as long as `isDone` says their values are done with: for values
    /// that lapse in the order they were set (a code's expiry, its issue time plus a fixed lifetime).
    public mutating func removeOldest(while isDone: (Value) -> Bool) {
        while head < order.count {
            let slot = order[head]
            if let entry = entries[slot.key], entry.generation == slot.generation, !isDone(entry.value) { return }
            forgetOldestSlot()
        }
    }

    /// Forgets every key.
    public mutating func removeAll() {
        entries.removeAll()
        order.removeAll()
        head = 0
    }

    /// Takes the oldest slot off the queue, and its key with it unless the key was set again since.
    private mutating func forgetOldestSlot() {
        let slot = order[head]
        if entries[slot.key]?.generation == slot.generation { entries[slot.key] = nil }
        head += 1
        // The slots that left are dropped once they are half the array: each is moved once, at most.
        if head == order.count {
            order.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1_024, head * 2 >= order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}

extension OldestFirstMap: Sendable where Key: Sendable, Value: Sendable {}
