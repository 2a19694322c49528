import Synchronization

/// Whether this process traces its requests (a tracer is bootstrapped: `authledger serve` with `OTEL_*`).
///
/// The journal's writer and the PostgreSQL store make spans of their commits and round trips only then:
/// with tracing off they skip even the no-op spans and the attributes those would carry.
public enum JournalTracing {
    private static let enabled = Atomic<Bool>(false)

    /// Whether spans are wanted.
    public static var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Turns spans on, for the rest of the process (once a tracer is bootstrapped).
    public static func enable() { enabled.store(true, ordering: .relaxed) }
}
