import LedgerCore
import PageMarkup

/// The investigation console's pages: the answers of `authledger-replay`'s commands as HTML, with links
/// between them. Pure: the caller runs the commands and passes their answers in.
///
/// Every page is one document with an inline style sheet and no script; every value from the journal or
/// the request is escaped (``PageMarkup/HTML``). At the top of each: how the journal verified.
public enum ConsolePages {
    /// What each page shows besides its answer.
    public struct Frame: Sendable {
        /// The journal, as the commands name it.
        public var journal: String
        public var verification: ConsoleVerification
        /// The journal's last sequence number now (it may have grown since it was verified).
        public var head: UInt64?

        public init(journal: String, verification: ConsoleVerification, head: UInt64?) {
            self.journal = journal
            self.verification = verification
            self.head = head
        }
    }

    public static let style = """
        body{font-family:system-ui,sans-serif;max-width:72rem;margin:0 auto;padding:0 1rem 2rem;color:#1b1b1b;line-height:1.45}
        header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:baseline;border-bottom:1px solid #ccc;padding:.75rem 0}
        header strong{font-size:1.1rem}nav a{margin-right:1rem}
        .banner{padding:.5rem .75rem;margin:.75rem 0;border-radius:4px}
        .ok{background:#e6f4e6;color:#0b4d0b}.warn{background:#fff4d6;color:#5c4300}.bad{background:#fde2e2;color:#7a0000;font-weight:600}
        h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
        table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.3rem .4rem;text-align:left;vertical-align:top}
        td.n{white-space:nowrap}code,pre{font-size:.85rem}pre{background:#f6f6f6;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
        .refs a{display:inline-block;margin:0 .5rem .1rem 0;font-size:.85rem}
        form{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.4rem .8rem;align-items:end;margin:.5rem 0 1rem}
        label{display:flex;flex-direction:column;font-size:.85rem}input{font:inherit;padding:.2rem .3rem}
        button{font:inherit;padding:.3rem .8rem;justify-self:start}
        .muted{color:#555}
        """

    /// A page of the console: the header, the verification banner, `body`.
    public static func page(title: String, frame: Frame, body: HTML) -> String {
        var html = HTML("<header><strong>AuthLedger investigation console</strong><nav>")
        html.raw("<a href=\"\(ConsoleLink.home)\">Home</a><a href=\"\(HTML.escape(ConsoleLink.report()))\">Report</a>")
        html.raw("<a href=\"\(ConsoleLink.verify)\">Verify again</a></nav><span class=\"muted\">journal <code>")
        html.value(frame.journal)
        html.raw("</code>, read-only</span></header>\n")
        banner(&html, frame)
        html.raw(body.text)
        return HTML.document(title: "\(title) · AuthLedger console", style: style, body: html)
    }

    static func banner(_ html: inout HTML, _ frame: Frame) {
        let verification = frame.verification
        switch verification.state {
        case .verified(let events, let pinned, let keys, let checkpoints):
            html.raw("<p class=\"banner \(pinned ? "ok" : "warn")\" id=\"verification\">")
            html.value(
                pinned
                    ? "Verified against the pinned key: \(events) events, every signature, the hash chain, the Merkle root and \(checkpoints) checkpoints."
                    : "Self-consistent, NOT pinned: \(events) events verified against the journal's own genesis key (trust on first use). Start the console with --public-key to pin it.")
            html.raw(" <span class=\"muted\">Keys ")
            html.value(keys.joined(separator: ", "))
            html.raw("; checked ")
            html.value(verification.checkedAt)
            if let head = frame.head, head > events {
                html.raw(".</span> <strong>")
                html.value("\(head - events) events appended since (now #\(head)): not yet verified.")
                html.raw("</strong></p>\n")
            } else {
                html.raw(".</span></p>\n")
            }
        case .failed(let sequence, let reason):
            html.raw("<p class=\"banner bad\" id=\"verification\">NOT VERIFIED: ")
            if let sequence {
                html.raw("the journal fails at <a href=\"\(ConsoleLink.event(sequence))\">#\(sequence)</a>: ")
            }
            html.value(reason)
            html.raw(". Nothing on these pages can be trusted past that point.</p>\n")
        case .unreadable(let reason):
            html.raw("<p class=\"banner bad\" id=\"verification\">NOT VERIFIED: ")
            html.value(reason)
            html.raw("</p>\n")
        }
    }

    // MARK: - Home

    /// The home page: a form per question, and the latest events.
    public static func home(frame: Frame, recent: [ConsoleEvent]) -> String {
        var html = HTML("<h1>Investigate</h1>\n")
        form(&html, action: "/timeline", title: "Timeline", button: "Show the events",
             fields: [("user", "User id"), ("client", "Client id"), ("ip", "IP address"), ("code", "Authorization code"),
                      ("session", "Session id (al_session)"), ("trace", "Trace id"), ("from", "From (RFC 3339 or #N)"), ("to", "To (RFC 3339 or #N)")])
        form(&html, action: "/report", title: "Incident report", button: "Write the report",
             fields: [("from", "From (RFC 3339 or #N)"), ("to", "To (RFC 3339 or #N)")])
        form(&html, action: "/explain", title: "Explain a decision", button: "Explain", fields: [("sequence", "Event number")])
        form(&html, action: "/consent", title: "Consent at a moment", button: "Show consent",
             fields: [("user", "User id"), ("at", "At (RFC 3339 or #N; empty: now)")])
        html.raw("<h2>Latest events</h2>\n")
        events(&html, recent)
        return page(title: "Home", frame: frame, body: html)
    }

    private static func form(_ html: inout HTML, action: String, title: String, button: String, fields: [(String, String)]) {
        let id = action.dropFirst()
        html.raw("<h2 id=\"\(id)-form\">")
        html.value(title)
        html.raw("</h2>\n<form method=\"get\" action=\"\(action)\" aria-labelledby=\"\(id)-form\">\n")
        for (name, label) in fields {
            html.raw("<label for=\"\(id)-\(name)\">")
            html.value(label)
            html.raw("<input id=\"\(id)-\(name)\" name=\"\(name)\" autocomplete=\"off\"></label>\n")
        }
        html.raw("<button type=\"submit\">")
        html.value(button)
        html.raw("</button>\n</form>\n")
    }

    // MARK: - Timeline

    /// A timeline: the events the filters select, each linking to what it names.
    public static func timeline(frame: Frame, filters: [(String, String)], events list: [ConsoleEvent]) -> String {
        var html = HTML("<h1>Timeline</h1>\n<p>")
        html.value(filters.isEmpty ? "Every event" : filters.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        html.value(": \(list.count) event\(list.count == 1 ? "" : "s").")
        html.raw(" <span class=\"muted\">authledger-replay timeline")
        html.value(filters.map { " --\($0.0)=\($0.1)" }.joined())
        html.raw("</span></p>\n")
        events(&html, list)
        return page(title: "Timeline", frame: frame, body: html)
    }

    static func events(_ html: inout HTML, _ list: [ConsoleEvent]) {
        guard !list.isEmpty else {
            html.raw("<p>No events.</p>\n")
            return
        }
        html.raw("<table>\n<tr><th scope=\"col\">event</th><th scope=\"col\">time</th><th scope=\"col\">type</th><th scope=\"col\">what</th><th scope=\"col\">follow</th></tr>\n")
        for event in list {
            html.raw("<tr id=\"e\(event.sequence)\"><td class=\"n\"><a href=\"\(ConsoleLink.event(event.sequence))\">#\(event.sequence)</a></td><td class=\"n\">")
            html.value(event.time)
            html.raw("</td><td><code>")
            html.value(event.type)
            html.raw("</code></td><td>")
            html.value(event.description)
            html.raw("</td><td class=\"refs\">")
            references(&html, event)
            html.raw("</td></tr>\n")
        }
        html.raw("</table>\n")
    }

    static func references(_ html: inout HTML, _ event: ConsoleEvent) {
        if event.isExplainable {
            html.raw("<a href=\"\(ConsoleLink.explain(event.sequence))\">explain</a>")
        }
        for reference in event.references {
            html.raw("<a href=\"\(HTML.escape(ConsoleLink.timeline([(reference.filter, reference.value)])))\">")
            let shown = reference.filter.hasSuffix("-hash") || reference.filter == "trace" ? String(reference.value.prefix(12)) + "…" : reference.value
            html.value("\(reference.filter) \(shown)")
            html.raw("</a>")
        }
        if let user = event.references.first(where: { $0.filter == "user" }) {
            html.raw("<a href=\"\(HTML.escape(ConsoleLink.consent(user: user.value, at: "#\(event.sequence)")))\">consent then</a>")
        }
    }

    // MARK: - One event

    /// One event: what the timeline says of it, its payload, and where it leads.
    public static func event(frame: Frame, _ event: ConsoleEvent, previous: UInt64?, next: UInt64?) -> String {
        var html = HTML("<h1>Event #\(event.sequence)</h1>\n<p><code>")
        html.value(event.type)
        html.raw("</code> at ")
        html.value(event.time)
        html.raw("</p>\n<p>")
        html.value(event.description)
        html.raw("</p>\n<p class=\"refs\">")
        references(&html, event)
        html.raw("</p>\n<h2>Payload, as signed (sealed values opened when the data key is at hand)</h2>\n<pre>")
        html.value(pretty(event.payload))
        html.raw("</pre>\n<p>")
        if let previous { html.raw("<a href=\"\(ConsoleLink.event(previous))\">← #\(previous)</a> ") }
        if let next { html.raw("<a href=\"\(ConsoleLink.event(next))\">#\(next) →</a>") }
        html.raw("</p>\n")
        return page(title: "Event #\(event.sequence)", frame: frame, body: html)
    }

    /// A line of JSON (a command's `--format jsonl` answer) indented for reading; the line itself when it
    /// is not JSON.
    public static func indentedJSON(_ line: String) -> String {
        guard let value = try? PayloadCoding.decode(JSONValue.self, from: Array(line.utf8)) else { return line }
        return pretty(value)
    }

    /// `value` as indented JSON, keys sorted.
    static func pretty(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .object(let members) where !members.isEmpty:
            let lines = members.sorted { $0.key < $1.key }.map { "\(inner)\(quoted($0.key)): \(pretty($0.value, indent: inner))" }
            return "{\n" + lines.joined(separator: ",\n") + "\n\(indent)}"
        case .array(let elements) where !elements.isEmpty:
            return "[\n" + elements.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object: return "{}"
        case .array: return "[]"
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let number): return String(number)
        case .unsigned(let number): return String(number)
        case .number(let number): return String(number)
        case .string(let text): return quoted(text)
        }
    }

    private static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || [0x2028, 0x2029, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069].contains(scalar.value) {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    // MARK: - A command's text answer

    /// A command's text answer (`explain`, `consent`, `verify`) as preformatted text, every `#N` a link to
    /// event N; `errors` (its one-line reasons) above it.
    public static func answer(frame: Frame, title: String, command: String, lines: [String], errors: [String], links: [(String, String)] = []) -> String {
        var html = HTML("<h1>")
        html.value(title)
        html.raw("</h1>\n<p class=\"muted\">")
        html.value(command)
        html.raw("</p>\n")
        for error in errors {
            html.raw("<p class=\"banner bad\">")
            html.value(error)
            html.raw("</p>\n")
        }
        if !links.isEmpty {
            html.raw("<p class=\"refs\">")
            for (label, target) in links {
                html.raw("<a href=\"\(HTML.escape(target))\">")
                html.value(label)
                html.raw("</a>")
            }
            html.raw("</p>\n")
        }
        if !lines.isEmpty {
            html.raw("<pre>")
            html.raw(linkingSequences(lines.joined(separator: "\n")))
            html.raw("</pre>\n")
        }
        return page(title: title, frame: frame, body: html)
    }

    /// `text`, escaped, with each `#N` (N digits) a link to event N.
    static func linkingSequences(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let hash = rest.firstIndex(of: "#") {
            out += HTML.escape(String(rest[..<hash]))
            let digits = rest[rest.index(after: hash)...].prefix { $0.isASCII && $0.isNumber }
            if let sequence = UInt64(digits), !digits.isEmpty {
                out += "<a href=\"\(ConsoleLink.event(sequence))\">#\(sequence)</a>"
                rest = rest[digits.endIndex...]
            } else {
                out += "#"
                rest = rest[rest.index(after: hash)...]
            }
        }
        return out + HTML.escape(String(rest))
    }

    /// A request the console cannot answer: the reason, and the way home.
    public static func problem(frame: Frame, title: String, reasons: [String]) -> String {
        var html = HTML("<h1>")
        html.value(title)
        html.raw("</h1>\n")
        for reason in reasons {
            html.raw("<p class=\"banner bad\">")
            html.value(reason)
            html.raw("</p>\n")
        }
        html.raw("<p><a href=\"\(ConsoleLink.home)\">Back to the console</a></p>\n")
        return page(title: title, frame: frame, body: html)
    }
}
