import Classifier
import Foundation
import Incidents
import LogFormats
import SystemSupport

/// The report as one self-contained HTML file: no scripts, no external fetches, inline CSS
/// and SVG charts; readable on a phone and printable. Written as well-formed XHTML, so any
/// XML parser can check it.
extension Report {
    /// Text made safe for HTML: control characters and bidi overrides as visible escapes
    /// (`Terminal.escape`), then the five special characters as entities. The console uses it too.
    public static func escape(_ s: String) -> String {
        var out = ""
        for ch in Terminal.escape(s).unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static let colors = [
        "critical": "#b00020", "high": "#e65100", "medium": "#f9a825", "low": "#0277bd", "info": "#9e9e9e",
    ]

    /// Lines received by hour (bars) and new incidents by hour (dots), one SVG.
    var activityChart: String {
        let n = linesByHour.values.first?.count ?? hours
        var lines = Array(repeating: 0, count: n)
        for counts in linesByHour.values { for (i, c) in counts.enumerated() where i < n { lines[i] += c } }
        let width = 640.0
        let height = 200.0
        let left = 48.0
        let bottom = 24.0
        let top = 12.0
        let plotW = width - left - 8
        let plotH = height - bottom - top
        let maxLines = max(1, lines.max() ?? 1)
        let maxIncidents = max(1, incidentsByHour.max() ?? 1)
        let bar = plotW / Double(n)
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" "
            + "aria-labelledby=\"activity-title\" class=\"chart\">"
        svg += "<title id=\"activity-title\">Lines received and new incidents by hour</title>"
        svg +=
            "<line x1=\"\(Int(left))\" y1=\"\(Int(top + plotH))\" x2=\"\(Int(width - 8))\" "
            + "y2=\"\(Int(top + plotH))\" stroke=\"#555\"/>"
        // A scale of round numbers (0, 2,000, 4,000...) with grid lines, the top one at or above
        // the busiest hour.
        let (step, ticks) = Self.ticks(upTo: maxLines)
        let scaleTop = Double(step * ticks)
        for k in 0...ticks {
            let y = top + plotH - plotH * Double(k * step) / scaleTop
            svg +=
                "<line x1=\"\(Int(left))\" y1=\"\(fmt(y))\" x2=\"\(Int(width - 8))\" y2=\"\(fmt(y))\" "
                + "stroke=\"#eceff1\"/><text x=\"\(Int(left - 4))\" y=\"\(fmt(y + 4))\" font-size=\"10\" "
                + "text-anchor=\"end\">\(Self.grouped(k * step))</text>"
        }
        svg += "<text x=\"\(Int(left))\" y=\"9\" font-size=\"10\">lines per hour; dots: new incidents</text>"
        for (i, c) in lines.enumerated() {
            let h = plotH * Double(c) / scaleTop
            let x = left + Double(i) * bar
            svg +=
                "<rect x=\"\(fmt(x + 1))\" y=\"\(fmt(top + plotH - h))\" width=\"\(fmt(max(1, bar - 2)))\" "
                + "height=\"\(fmt(h))\" "
                + "fill=\"#90a4ae\"><title>"
                + "\(Self.clock(options.since + Double(i) * 3600, options.utcOffset)): \(c) "
                + "lines</title></rect>"
            if i % 3 == 0 {
                svg +=
                    "<text x=\"\(fmt(x + bar / 2))\" y=\"\(Int(height - 8))\" font-size=\"10\" "
                    + "text-anchor=\"middle\">"
                    + "\(Self.clock(options.since + Double(i) * 3600, options.utcOffset))</text>"
            }
        }
        for (i, c) in incidentsByHour.enumerated() where c > 0 && i < n {
            let y = top + 12 + (plotH - 12) * (1 - Double(c) / Double(maxIncidents))
            let x = left + (Double(i) + 0.5) * bar
            svg +=
                "<circle cx=\"\(fmt(x))\" cy=\"\(fmt(y))\" r=\"4\" "
                + "fill=\"#b00020\"><title>\(c) new incident(s)</title></circle>"
                + "<text x=\"\(fmt(x))\" y=\"\(fmt(y - 6))\" font-size=\"9\" text-anchor=\"middle\">\(c)</text>"
        }
        svg += "</svg>"
        return svg
    }

    /// A round step (1, 2 or 5 times a power of ten) and how many of them reach `maximum`,
    /// for 3 to 6 grid lines.
    static func ticks(upTo maximum: Int) -> (step: Int, count: Int) {
        let target = Double(max(1, maximum)) / 4
        var power = 1
        while Double(power * 10) <= target { power *= 10 }
        let step = [1, 2, 5, 10].map { $0 * power }.first { Double($0) >= target } ?? power * 10
        return (step, max(1, Int((Double(max(1, maximum)) / Double(step)).rounded(.up))))
    }

    /// `12,500`.
    static func grouped(_ n: Int) -> String {
        let digits = Array(String(n))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(d)
        }
        return out
    }

    /// New incidents by category, each bar split by severity.
    var categoryChart: String {
        let categories = byCategory.map(\.name)
        let rowH = 22.0
        let left = 200.0
        let width = 640.0
        let height = Double(max(1, categories.count)) * rowH + 30
        let maxCount = max(1, byCategory.map(\.count).max() ?? 1)
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" "
            + "aria-labelledby=\"category-title\" class=\"chart\">"
        svg += "<title id=\"category-title\">New incidents by category and severity</title>"
        for (i, category) in categories.enumerated() {
            let y = Double(i) * rowH + 4
            svg +=
                "<text x=\"\(Int(left - 6))\" y=\"\(fmt(y + 14))\" font-size=\"12\" "
                + "text-anchor=\"end\">\(Self.escape(name(category)))</text>"
            var x = left
            for s in Self.severities {
                guard let c = categorySeverity[category]?[s], c > 0 else { continue }
                let w = (width - left - 40) * Double(c) / Double(maxCount)
                svg +=
                    "<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(w))\" height=\"\(fmt(rowH - 6))\" "
                    + "fill=\"\(Self.colors[s]!)\"><title>\(Self.escape(name(category))): \(c) \(s)</title></rect>"
                x += w
            }
            let total = byCategory[i].count
            svg += "<text x=\"\(fmt(x + 4))\" y=\"\(fmt(y + 14))\" font-size=\"12\">\(total)</text>"
        }
        var lx = left
        for s in Self.severities {
            svg +=
                "<rect x=\"\(fmt(lx))\" y=\"\(fmt(height - 18))\" width=\"10\" height=\"10\" "
                + "fill=\"\(Self.colors[s]!)\"/><text x=\"\(fmt(lx + 14))\" y=\"\(fmt(height - 9))\" "
                + "font-size=\"11\">\(s)</text>"
            lx += 80
        }
        svg += "</svg>"
        return svg
    }

    /// The colour class of an action: green when it was blocked, red when the pupil reached it.
    static func actionClass(_ action: String) -> String {
        action.hasPrefix("blocked") ? "blocked" : action == "allowed" ? "allowed" : ""
    }

    func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    public var html: String {
        let e = Self.escape
        var h =
            "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta "
            + "charset=\"utf-8\"/>\n"
        h +=
            "<meta name=\"viewport\" content=\"width=device-width, "
            + "initial-scale=1\"/>\n<title>\(e(options.title))</title>\n"
        h += """
            <style>
            body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:960px;\
            padding:12px;color:#212121;line-height:1.4}
            h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;border-bottom:2px solid #cfd8dc;padding-bottom:2px;\
            margin-top:1.4em}
            .tiles{display:flex;flex-wrap:wrap;gap:8px}.tile{flex:1 1 120px;border:1px solid #cfd8dc;\
            border-radius:6px;padding:8px;text-align:center}
            .tile b{display:block;font-size:1.6em}.warn{background:#fff3e0}.bad{background:#ffebee}
            table{border-collapse:collapse;width:100%;font-size:.9em}th,td{border-bottom:1px solid #eceff1;\
            padding:4px;text-align:left;vertical-align:top}
            .scroll{overflow-x:auto}.chart{width:100%;height:auto;max-width:640px}.sev{color:#fff;border-radius:3px;\
            padding:0 4px;font-size:.85em}
            .critical{background:#b00020}.high{background:#e65100}.medium{background:#f9a825;color:#000}\
            .low{background:#0277bd}.info{background:#9e9e9e}
            li,p{overflow-wrap:anywhere}.search{font-style:italic}.blocked{color:#2e7d32}.allowed{color:#b00020}
            @media (max-width:600px){table.rows,table.rows tbody,table.rows tr,table.rows td{display:block;width:auto}\
            table.rows thead{display:none}table.rows tr{border:1px solid #cfd8dc;border-radius:6px;margin:0 0 8px;\
            padding:4px 8px}table.rows td{border:0;padding:2px 0;overflow-wrap:anywhere}\
            table.rows td:empty{display:none}\
            table.rows td::before{content:attr(data-label);display:inline-block;min-width:6.5em;color:#546e7a}}
            @media print{body{max-width:none}.scroll{overflow:visible}h2{break-after:avoid}table,\
            svg{break-inside:avoid}}
            </style>

            """
        h +=
            "</head>\n<body>\n<h1>\(e(options.title))</h1>\n<p>"
            + "\(e(windowLabel))\(options.anonymise ? " · people anonymised" : "")</p>\n"
        let overdue = open.filter(\.overdue)
        let escalated = open.filter { $0.state == "escalated" }
        func tile(_ label: String, _ value: Int, _ cls: String = "") -> String {
            "<div class=\"tile \(cls)\"><b>\(value)</b>\(e(label))</div>"
        }
        h +=
            "<div class=\"tiles\">" + tile("new incidents", new.count)
            + tile(
                "critical",
                new.filter { $0.severity == "critical" }.count,
                new.contains { $0.severity == "critical" } ? "bad" : ""
            )
            + tile("open", open.count) + tile("overdue", overdue.count, overdue.isEmpty ? "" : "bad")
            + tile("escalated", escalated.count)
            + tile(
                "silent periods",
                silences.count + downtime.count,
                silences.isEmpty && downtime.isEmpty ? "" : "warn"
            )
            + "</div>\n"
        h += "<h2>Activity by hour</h2>\n" + activityChart + "\n"
        h +=
            "<h2>New incidents by category and severity</h2>\n" + (byCategory.isEmpty ? "<p>None.</p>" : categoryChart)
            + "\n"
        h +=
            "<p>By group: "
            + (byGroup.isEmpty ? "none" : byGroup.map { "\(e($0.name)) \($0.count)" }.joined(separator: ", "))
            + "</p>\n"

        /// One row per incident; on a phone each row becomes a card with the column names
        /// beside the values (`data-label`), so nothing is cut off at the right.
        func table(_ rows: [Row], age: Bool) -> String {
            var columns = [
                "Time", "Severity", "Category", "Group", "Person", "Site", "Search", "Action", "Hits", "State",
            ]
            if age { columns += ["Age", "Due"] }
            var t = "<div class=\"scroll\"><table class=\"rows\">\n<thead><tr>"
            t += columns.map { "<th>\($0)</th>" }.joined() + "</tr></thead>\n<tbody>\n"
            for r in rows {
                var cells = [
                    e(dateTime(r.time)), "<span class=\"sev \(e(r.severity))\">\(e(r.severity))</span>",
                    e(r.categoryName), e(r.group), e(r.person), e(r.host),
                    r.searchTerm.map { "<span class=\"search\">\u{201C}\(e($0))\u{201D}</span>" }
                        ?? (r.searchWithheld ? "(withheld)" : ""),
                    "<span class=\"\(Self.actionClass(r.action))\">"
                        + "\(e(r.action))</span>",
                    String(r.hits), r.overdue ? "<b>overdue</b>" : e(r.state),
                ]
                if age { cells += [e(Self.duration(options.until - r.time)), e(r.due.map(dateTime) ?? "")] }
                t += "<tr>"
                for (label, cell) in zip(columns, cells) { t += "<td data-label=\"\(label)\">\(cell)</td>" }
                t += "</tr>\n"
            }
            return t + "</tbody></table></div>\n"
        }
        h +=
            "<h2>Open incidents at the end of the period (\(open.count))</h2>\n"
            + (open.isEmpty ? "<p>None.</p>\n" : table(open, age: true))
        h += "<h2>New incidents (\(new.count))</h2>\n" + (new.isEmpty ? "<p>None.</p>\n" : table(new, age: false))
        h +=
            "<h2>Top sites and people</h2>\n<p>Sites: "
            + (topSites.isEmpty ? "none" : topSites.map { "\(e($0.name)) (\($0.count))" }.joined(separator: ", "))
            + "</p>\n"
        h +=
            "<p>People: "
            + (topPeople.isEmpty ? "none" : topPeople.map { "\(e($0.name)) (\($0.count))" }.joined(separator: ", "))
            + "</p>\n"
        h += "<h2>Escalations, outcomes and response</h2>\n<ul>\n"
        h +=
            "<li>Escalations: "
            + (escalations.isEmpty ? "none" : escalations.map { "\(e($0.name)) \($0.count)" }.joined(separator: ", "))
            + (referrals > 0 ? "; referrals outside school: \(referrals)" : "") + "</li>\n"
        h +=
            "<li>Outcomes: "
            + (outcomes.isEmpty && falsePositives == 0
                ? "none"
                : (outcomes.map { "\(e($0.name)) \($0.count)" }
                    + (falsePositives > 0 ? ["false-positive \(falsePositives)"] : [])).joined(separator: ", "))
            + "</li>\n"
        h += "<li>Response: \(e(responseSummary))</li>\n</ul>\n"
        h += "<h2>Monitoring health</h2>\n<ul>\n"
        h +=
            "<li>Lines received \(received), matched \(matched), malformed \(malformed) "
            + "(\(String(format: "%.2f", parseErrorRate * 100))%)</li>\n"
        for (source, counts) in linesByHour.sorted(by: { $0.key < $1.key }) {
            h += "<li>\(e(source)): \(counts.reduce(0, +)) lines</li>\n"
        }
        for s in silences {
            h +=
                "<li><b>Silent</b>: \(e(s.source)) \(e(dateTime(s.from))) to \(e(dateTime(s.to))) "
                + "(\(e(Self.duration(s.to - s.from))))</li>\n"
        }
        for d in downtime {
            h +=
                "<li><b>esafetyd not running</b>: \(e(dateTime(d.from))) to \(e(dateTime(d.to))) "
                + "(\(e(Self.duration(d.to - d.from))))</li>\n"
        }
        if counterRows == 0 { h += "<li><b>No monitoring counters for this period</b>: was esafetyd running?</li>\n" }
        let generationText = generation.map { ", generation \($0)" } ?? ""
        let failedText =
            failedReloads.isEmpty
            ? "" : "; <b>failed \(failedReloads.count)</b>: " + e(failedReloads.joined(separator: "; "))
        h += "<li>List reloads \(reloads)\(generationText)\(failedText)</li>\n"
        let alertFailuresText = alertFailures.isEmpty ? "" : ": " + e(alertFailures.joined(separator: "; "))
        h += "<li>Alerts sent \(alertsSent), failed \(alertFailures.count)\(alertFailuresText)</li>\n"
        if let integrity {
            h +=
                integrity.broken == nil
                ? "<li>\(e(integrity.summary))</li>\n" : "<li><b>\(e(integrity.summary))</b></li>\n"
        }
        h += "</ul>\n</body>\n</html>\n"
        return h
    }
}
