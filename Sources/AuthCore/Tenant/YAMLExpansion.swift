// libyaml, as Yams builds it. Yams offers no event-level API, and its composer expands aliases (and hashes
// every mapping key, alias keys included, to find duplicates) before a caller sees a node: the size of what
// a document stands for has to be measured on libyaml's events, before Yams composes it.
internal import CYaml

/// How many values a YAML text stands for once its aliases are expanded, measured without expanding them.
///
/// An alias (`*name`) stands for the whole node its anchor (`&name`) names, so a few hundred bytes of
/// aliases of aliases ("billion laughs") stand for billions of values. Walking libyaml's event stream, each
/// anchored node's expanded size is recorded once and an alias adds it, so the count costs one pass over
/// the text whatever it expands to.
enum YAMLExpansion {
    /// The outcome of a count.
    enum Count: Equatable {
        /// The text stands for this many values (scalars, sequences and mappings, keys included).
        case values(Int)
        /// The text stands for more than the limit; counting stopped there.
        case overLimit
        /// libyaml could not parse the text; the composer that runs next reports why.
        case unparsable
    }

    /// Counts the values `yaml` stands for, stopping once the count passes `limit`.
    static func count(_ yaml: String, limit: Int) -> Count {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return .unparsable }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(yaml.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var counter = Counter()
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else { return .unparsable }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return .values(counter.total)
                case YAML_SCALAR_EVENT:
                    counter.add(size: 1, anchor: Self.name(event.data.scalar.anchor))
                case YAML_ALIAS_EVENT:
                    // An alias to no anchor is the composer's error to report; it stands for nothing here.
                    counter.add(size: Self.name(event.data.alias.anchor).flatMap { counter.anchored[$0] } ?? 0, anchor: nil)
                case YAML_SEQUENCE_START_EVENT:
                    counter.open(anchor: Self.name(event.data.sequence_start.anchor))
                case YAML_MAPPING_START_EVENT:
                    counter.open(anchor: Self.name(event.data.mapping_start.anchor))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    counter.close()
                default:
                    break
                }
                if counter.total > limit { return .overLimit }
            }
        }
    }

    private static func name(_ anchor: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        anchor.map { String(cString: $0) }
    }

    /// Sizes of the collections still open, innermost last, and of every anchored node seen. `count` stops
    /// as soon as the total passes its limit, so no size grows past twice the limit.
    private struct Counter {
        /// Values in the nodes finished at the top level (whole documents) and in the collections still open.
        private(set) var total = 0
        var anchored: [String: Int] = [:]
        private var open: [(anchor: String?, size: Int)] = []

        /// A collection starts: it is one value, and its children will add theirs.
        mutating func open(anchor: String?) {
            open.append((anchor, 1))
            total += 1
        }

        /// A collection ends: its size is final, and already in the total.
        mutating func close() {
            guard let collection = open.popLast() else { return }
            if let anchor = collection.anchor { anchored[anchor] = collection.size }
            if !open.isEmpty { open[open.count - 1].size += collection.size }
        }

        /// A scalar or an alias: `size` values added to the collection it is in (or to the top level).
        mutating func add(size: Int, anchor: String?) {
            if let anchor { anchored[anchor] = size }
            if !open.isEmpty { open[open.count - 1].size += size }
            total += size
        }
    }
}
