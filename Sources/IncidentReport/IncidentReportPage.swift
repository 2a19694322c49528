import LedgerCore
import PageMarkup

/// The incident report: one self-contained HTML page (inline CSS and SVG, no script, no network) that
/// shows an ``IncidentSummary`` as charts, tables and a list of anomalies, each with the commands that
/// take a responder further.
public enum IncidentReportPage {
    /// What the page says about where its numbers come from.
    public struct Context: Sendable {
        /// The journal directory, as the commands on the page should name it.
        public var journal: String
        /// The journal's origin (its checkpoint name).
        public var origin: String
        /// The verifier's one-line result.
        public var verification: String
        /// Whether the journal verified (pinned or not: ``verification`` says which).
        public var verified: Bool
        /// The first and last timestamps of the range.
        public var from: LedgerTimestamp
        public var to: LedgerTimestamp
        /// When the report was written (given by the caller: the page has no clock).
        public var generatedAt: LedgerTimestamp
        /// Links to pages that answer what the commands on the page would (the investigation console);
        /// `nil` for a page that stands alone (`report --html`), which names the commands only.
        public var links: Links?

        /// The context of a report; see the properties.
        public init(
            journal: String, origin: String, verification: String, verified: Bool, from: LedgerTimestamp, to: LedgerTimestamp,
            generatedAt: LedgerTimestamp
        ) {
            self.journal = journal
            self.origin = origin
            self.verification = verification
            self.verified = verified
            self.from = from
            self.to = to
            self.generatedAt = generatedAt
        }
    }

    /// Where a report served by the investigation console links to: the console's home, an `explain` of a
    /// sequence number, a `timeline` for the arguments the page names (`--user=…`, `--from=#…`).
    public struct Links: Sendable {
        public var home: String
        public var explain: @Sendable (UInt64) -> String
        public var timeline: @Sendable ([String]) -> String

        public init(home: String, explain: @escaping @Sendable (UInt64) -> String, timeline: @escaping @Sendable ([String]) -> String) {
            self.home = home
            self.explain = explain
            self.timeline = timeline
        }
    }

    /// The page's style sheet (inline in the page).
    public static var styleSheet: String { style }

    private static let style = """
        body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.45}
        h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
        table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
        td.n{text-align:right}code{font-size:.85rem;word-break:break-all}
        .ok{color:#006100;font-weight:600}.bad{color:#a00000;font-weight:600}
        .axis{font-size:11px;fill:#333}.grid{stroke:#ddd}
        .legend{list-style:none;padding:0;display:flex;gap:1rem;flex-wrap:wrap}.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}
        .pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
        """

    /// The whole page.
    public static func render(_ summary: IncidentSummary, context: Context) -> String {
        var html = HTML()
        if let links = context.links {
            html.raw("<nav><a href=\"\(HTML.escape(links.home))\">Investigation console</a></nav>\n")
        }
        html.raw("<h1>Incident report</h1>\n")
        header(&html, summary, context)

        section(&html, "Authorization decisions over time, by outcome")
        html.raw(SVGChart.stackedBars(id: "decisions", title: "Authorization decisions over time", series: summary.decisions, buckets: summary.buckets))
        table(&html, caption: "Decisions by outcome", header: ["outcome", "decisions"],
              rows: summary.outcomes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { [$0.key, String($0.value)] })

        section(&html, "Failed logins")
        html.raw("<div class=\"pair\">\n<div>\n<h3>By account</h3>\n")
        html.raw(SVGChart.horizontalBars(id: "failed-by-user", title: "Failed logins by account", values: summary.failedLoginsByUser))
        html.raw("</div>\n<div>\n<h3>By address</h3>\n")
        html.raw(SVGChart.horizontalBars(id: "failed-by-address", title: "Failed logins by address", values: summary.failedLoginsByAddress))
        html.raw("</div>\n</div>\n")

        section(&html, "Authorization codes: issued, redeemed, replayed")
        html.raw(SVGChart.stackedBars(id: "codes", title: "Codes issued, redeemed and replayed over time", series: summary.codes, buckets: summary.buckets))
        totals(&html, summary.codes, caption: "Codes")

        section(&html, "Consent: granted, denied, revoked")
        html.raw(SVGChart.stackedBars(id: "consent", title: "Consent over time", series: summary.consent, buckets: summary.buckets))
        totals(&html, summary.consent, caption: "Consent")

        anomalies(&html, summary.anomalies, journal: context.journal, links: context.links)
        return HTML.document(title: "AuthLedger incident report: \(context.origin)", style: style, body: html)
    }

    private static func header(_ html: inout HTML, _ summary: IncidentSummary, _ context: Context) {
        html.raw("<p>Journal <code>")
        html.value(context.journal)
        html.raw("</code> (origin <code>")
        html.value(context.origin)
        html.raw("</code>), events ")
        html.value(summary.firstSequence.map { "#\($0)" } ?? "-")
        html.raw(" to ")
        html.value(summary.lastSequence.map { "#\($0)" } ?? "-")
        html.raw(" (\(summary.events) events), from <time>")
        html.value(context.from.rfc3339)
        html.raw("</time> to <time>")
        html.value(context.to.rfc3339)
        html.raw("</time>. Written <time>")
        html.value(context.generatedAt.rfc3339)
        html.raw("</time>.</p>\n<p class=\"\(context.verified ? "ok" : "bad")\">")
        html.value(context.verification)
        html.raw("</p>\n")
    }

    private static func section(_ html: inout HTML, _ title: String) {
        html.raw("<h2>")
        html.value(title)
        html.raw("</h2>\n")
    }

    private static func totals(_ html: inout HTML, _ series: IncidentSummary.Series, caption: String) {
        table(&html, caption: caption, header: series.names, rows: [series.names.indices.map { String(series.total($0)) }])
    }

    private static func table(_ html: inout HTML, caption: String, header: [String], rows: [[String]]) {
        html.raw("<table>\n<caption>")
        html.value(caption)
        html.raw("</caption>\n<tr>")
        for name in header {
            html.raw("<th scope=\"col\">")
            html.value(name)
            html.raw("</th>")
        }
        html.raw("</tr>\n")
        for row in rows {
            html.raw("<tr>")
            for cell in row {
                html.raw(Int(cell) != nil ? "<td class=\"n\">" : "<td>")
                html.value(cell)
                html.raw("</td>")
            }
            html.raw("</tr>\n")
        }
        html.raw("</table>\n")
    }

    private static func anomalies(_ html: inout HTML, _ anomalies: [IncidentSummary.Anomaly], journal: String, links: Links?) {
        section(&html, "Anomalies (\(anomalies.count))")
        guard !anomalies.isEmpty else {
            html.raw("<p>None: no code replay, no refresh token reuse, no burst of failed logins.</p>\n")
            return
        }
        html.raw("<table>\n<caption>Each with the commands that show it in full</caption>\n")
        html.raw("<tr><th scope=\"col\">event</th><th scope=\"col\">time</th><th scope=\"col\">kind</th><th scope=\"col\">what</th><th scope=\"col\">next</th></tr>\n")
        for (number, anomaly) in zip(1..., anomalies) {
            html.raw("<tr id=\"anomaly-\(number)\"><td><a href=\"#anomaly-\(number)\">#\(anomaly.sequence)</a></td><td>")
            html.value(SVGChart.label(anomaly.time))
            html.raw("</td><td>")
            html.value(anomaly.kind.rawValue)
            html.raw("</td><td>")
            html.value(anomaly.summary)
            html.raw("</td><td>")
            if let links {
                if let decision = anomaly.decisionSequence {
                    html.raw("<a href=\"\(HTML.escape(links.explain(decision)))\">explain #\(decision)</a> · ")
                }
                html.raw("<a href=\"\(HTML.escape(links.timeline(anomaly.timelineArguments)))\">timeline</a><br>")
            }
            if let decision = anomaly.decisionSequence {
                html.raw("<code>")
                html.value(ShellWords.command(["authledger-replay", "explain", String(decision), "--journal=" + journal]))
                html.raw("</code><br>")
            }
            html.raw("<code>")
            html.value(
                ShellWords.command(
                    ["authledger-replay", "timeline"] + anomaly.timelineArguments + ["--journal=" + journal]))
            html.raw("</code></td></tr>\n")
        }
        html.raw("</table>\n")
    }
}
