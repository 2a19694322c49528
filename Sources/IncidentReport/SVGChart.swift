import LedgerCore
import PageMarkup

/// Bar charts as inline SVG.
///
/// Hand-written: none of the offline packages draws charts, and the report must be one self-contained
/// file with no script and no network. Two shapes cover what the report shows — stacked bars over time
/// and horizontal bars per name. Every chart carries a `<title>` and `<desc>` for screen readers, and the
/// page prints the same numbers in a table beside it.
enum SVGChart {
    /// Colour-blind-safe colours (Okabe–Ito), one per series.
    static let palette = ["#0072B2", "#E69F00", "#D55E00", "#009E73", "#CC79A7", "#56B4E9"]

    private static let width = 720
    private static let height = 220
    private static let left = 44
    private static let bottom = 28
    private static let top = 10

    /// Stacked bars, one per time bucket, one colour per series; with a legend.
    static func stackedBars(id: String, title: String, series: IncidentSummary.Series, buckets: IncidentSummary.Buckets) -> String {
        let totals = (0..<buckets.count).map { bucket in series.counts.reduce(0) { $0 + $1[bucket] } }
        let maximum = max(1, totals.max() ?? 0)
        let plotWidth = Double(width - left - 8)
        let plotHeight = Double(height - bottom - top)
        let slot = plotWidth / Double(buckets.count)
        let barWidth = max(1, slot * 0.8)
        var svg = HTML()
        open(&svg, id: id, title: title, description: legendText(series))
        axes(&svg, maximum: maximum)
        for bucket in 0..<buckets.count where totals[bucket] > 0 {
            var base = Double(height - bottom)
            for (index, counts) in series.counts.enumerated() where counts[bucket] > 0 {
                let barHeight = plotHeight * Double(counts[bucket]) / Double(maximum)
                base -= barHeight
                svg.raw("<rect x=\"\(format(Double(left) + Double(bucket) * slot + (slot - barWidth) / 2))\" y=\"\(format(base))\" ")
                svg.raw("width=\"\(format(barWidth))\" height=\"\(format(barHeight))\" fill=\"\(palette[index % palette.count])\">")
                svg.raw("<title>")
                svg.value("\(series.names[index]): \(counts[bucket]) from \(label(buckets.start(of: bucket)))")
                svg.raw("</title></rect>\n")
            }
        }
        let withSeconds = buckets.width < 60_000_000
        for bucket in Set([0, buckets.count / 2, buckets.count - 1]).sorted() {
            let x = Double(left) + Double(bucket) * slot + slot / 2
            let anchor = bucket == 0 ? "start" : bucket == buckets.count - 1 ? "end" : "middle"
            svg.raw("<text x=\"\(format(x))\" y=\"\(height - 8)\" text-anchor=\"\(anchor)\" class=\"axis\">")
            svg.value(label(buckets.start(of: bucket), seconds: withSeconds))
            svg.raw("</text>\n")
        }
        svg.raw("</svg>\n")
        svg.raw(legend(series.names))
        return svg.text
    }

    /// One horizontal bar per name, longest first (at most `limit`).
    static func horizontalBars(id: String, title: String, values: [String: Int], limit: Int = 10) -> String {
        let rows = values.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit)
        let maximum = max(1, rows.first?.value ?? 0)
        // Drawn half as wide as the time charts: the page shows two side by side.
        let width = width / 2
        let rowHeight = 22
        let labelWidth = 130
        let chartHeight = max(1, rows.count) * rowHeight + 4
        var svg = HTML()
        let description = rows.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        svg.raw("<svg id=\"\(HTML.escape(id))\" role=\"img\" aria-labelledby=\"\(HTML.escape(id))-title \(HTML.escape(id))-desc\" ")
        svg.raw("viewBox=\"0 0 \(width) \(chartHeight)\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">\n")
        svg.raw("<title id=\"\(HTML.escape(id))-title\">")
        svg.value(title)
        svg.raw("</title><desc id=\"\(HTML.escape(id))-desc\">")
        svg.value(rows.isEmpty ? "none" : description)
        svg.raw("</desc>\n")
        if rows.isEmpty {
            svg.raw("<text x=\"0\" y=\"16\" class=\"axis\">none</text>\n")
        }
        for (index, row) in rows.enumerated() {
            let y = index * rowHeight + 2
            let barWidth = Double(width - labelWidth - 40) * Double(row.value) / Double(maximum)
            svg.raw("<text x=\"\(labelWidth - 6)\" y=\"\(y + 15)\" text-anchor=\"end\" class=\"axis\">")
            svg.value(row.key.count > 22 ? String(row.key.prefix(21)) + "…" : row.key)
            svg.raw("</text><rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(format(max(1, barWidth)))\" height=\"16\" fill=\"\(palette[2])\">")
            svg.raw("<title>")
            svg.value("\(row.key): \(row.value)")
            svg.raw("</title></rect><text x=\"\(format(Double(labelWidth) + max(1, barWidth) + 6))\" y=\"\(y + 15)\" class=\"axis\">\(row.value)</text>\n")
        }
        svg.raw("</svg>\n")
        return svg.text
    }

    private static func open(_ svg: inout HTML, id: String, title: String, description: String) {
        let id = HTML.escape(id)
        svg.raw("<svg id=\"\(id)\" role=\"img\" aria-labelledby=\"\(id)-title \(id)-desc\" viewBox=\"0 0 \(width) \(height)\" ")
        svg.raw("width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">\n<title id=\"\(id)-title\">")
        svg.value(title)
        svg.raw("</title><desc id=\"\(id)-desc\">")
        svg.value(description)
        svg.raw("</desc>\n")
    }

    private static func axes(_ svg: inout HTML, maximum: Int) {
        let baseline = height - bottom
        for value in Set([0, maximum / 2, maximum]).sorted() {
            let y = Double(baseline) - Double(height - bottom - top) * Double(value) / Double(maximum)
            svg.raw("<line x1=\"\(left)\" x2=\"\(width - 8)\" y1=\"\(format(y))\" y2=\"\(format(y))\" class=\"grid\"/>")
            svg.raw("<text x=\"\(left - 6)\" y=\"\(format(y + 4))\" text-anchor=\"end\" class=\"axis\">\(value)</text>\n")
        }
    }

    private static func legendText(_ series: IncidentSummary.Series) -> String {
        series.names.indices.map { "\(series.names[$0]): \(series.total($0))" }.joined(separator: ", ")
    }

    private static func legend(_ names: [String]) -> String {
        var html = HTML("<ul class=\"legend\">")
        for (index, name) in names.enumerated() {
            html.raw("<li><span class=\"swatch\" style=\"background:\(palette[index % palette.count])\"></span>")
            html.value(name)
            html.raw("</li>")
        }
        html.raw("</ul>\n")
        return html.text
    }

    /// `11-27 12:05` (UTC), or `11-27 12:05:09` with seconds: short enough for an axis.
    static func label(_ time: LedgerTimestamp, seconds: Bool = false) -> String {
        let text = time.rfc3339
        let length = seconds ? 19 : 16
        guard text.count >= length else { return text }
        let start = text.index(text.startIndex, offsetBy: 5)
        let end = text.index(text.startIndex, offsetBy: length)
        return String(text[start..<end].map { $0 == "T" ? " " : $0 })
    }

    private static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
