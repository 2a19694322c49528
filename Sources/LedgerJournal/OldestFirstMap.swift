/// A map of at most ``capacity`` keys that forgets the oldest key set to make room for a new one: for
/// things set up once and used once, if at all, soon after (the reads a code's redemption will make, a
/// code kept for its redemption), where the oldest is the least likely to be asked for.
///
/// The order keys came in is a ring of `capacity` slots; a key taken before its slot comes round leaves
/// the slot stale, and each key's generation tells a stale slot from the key set up again since. Every
/// operation is O(1). A value type: its owner decides how it is shared (a `Mutex`, say).
public struct OldestFirstMap<Key: Hashable, Value> {
    /// The most keys held at once.
    public let capacity: Int
    private var entries: [Key: (value: Value, generation: UInt64)] = [:]
    private var order: [(key: Key, generation: UInt64)] = []
    private var oldest = 0
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
        if order.count < capacity {
            order.append((key, generation))
        } else {
            let slot = order[oldest]
            if entries[slot.key]?.generation == slot.generation { entries[slot.key] = nil }
            order[oldest] = (key, generation)
            oldest = (oldest + 1) % capacity
        }
        entries[key] = (value, generation)
    }

    /// Removes and returns the value under `key`.
    public mutating func take(_ key: Key) -> Value? {
        entries.removeValue(forKey: key)?.value
    }

    /// Forgets every key.
    public mutating func removeAll() {
        entries.removeAll()
        order.removeAll()
        oldest = 0
    }
}

extension OldestFirstMap: Sendable where Key: Sendable, Value: Sendable {}
