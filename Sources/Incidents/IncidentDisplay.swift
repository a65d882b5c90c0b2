import Classifier
import SystemSupport

/// How `esafety incidents show` prints one incident for a person at a terminal: every field
/// of the record, the rule that matched, the hits, the state, the history of actions, and
/// the person's other categorised requests in the hour either side. Control characters in
/// anything the log holds are escaped.
public enum IncidentDisplay {
    /// The lines after the incident's one-line summary, each ending in a newline.
    public static func details(_ v: IncidentView) -> String {
        let r = v.record
        var out = ""
        func row(_ key: String, _ value: String?) {
            out +=
                "  " + key.padding(toLength: max(12, key.count), withPad: " ", startingAt: 0) + " "
                + Terminal.escape(value ?? "null") + "\n"
        }
        row("time", r.time.text)
        row("severity", r.severity?.description)
        row("category", r.categoryName.map { "\(r.category) (\($0))" } ?? r.category)
        row("group", r.group)
        row("client", r.client)
        row("user", r.user)
        row("device", r.device)
        if let mac = r.mac { row("mac", mac) }
        row("host", r.host)
        row("url", r.url)
        row("search_term", r.searchTerm)
        row("action", r.action)
        if let blocker = r.blockedBy { row("blocked_by", blocker) }
        row("due", r.due?.text)
        let rule = r.rule
        row(
            "rule",
            "\(rule.kind?.description ?? "") \(rule.file):\(rule.line) \(rule.rule) (generation \(rule.generation))"
        )
        if !r.route.isEmpty { row("route", r.route.joined(separator: ", ")) }
        out += "  hits         \(v.hits) (last seen \(Terminal.escape(v.lastSeen)))\n"
        out += "  state        \(v.state.rawValue)\n"
        for e in v.events {
            let fields: [(String, String)]
            switch e {
            case .context: continue
            case .hits(let h):
                fields = [
                    ("hits", String(h.hits)), ("first_seen", h.firstSeen.text), ("last_seen", h.lastSeen.text),
                    ("sample_urls", h.sampleURLs.joined(separator: " ")),
                ]
            case .verdict(let d): fields = [("action", d.action), ("blocked_by", d.blockedBy ?? "")]
            case .action(let a): fields = [("by", a.by)] + a.details.map { ($0.key, $0.value) }
            case .lost, .truncated, .incident: fields = []
            }
            let text = fields.map { "\($0.0)=\($0.1)" }.sorted().joined(separator: " ")
            row("event", "\(e.time) \(e.event): \(text)")
        }
        // Matched requests only: esafetyd keeps no browsing history.
        for span in [ContextRecord.Span.before, .after] {
            let requests = v.context.filter { $0.span == span }.flatMap(\.requests)
            guard !requests.isEmpty else { continue }
            out += "  \(span == .before ? "the hour before" : "the hour after"):\n"
            for q in requests {
                let time = String(q.time.text.dropFirst(11).prefix(8))
                let term = q.searchTerm.map { "  search \"\($0)\"" } ?? ""
                out += "    " + Terminal.escape("\(time)  \(q.category)  \(q.host)\(term)") + "\n"
            }
        }
        return out
    }
}

extension Severity {
    /// `text` in this severity's ANSI colour, for a terminal (critical white on red, high
    /// bold red, medium yellow, low cyan, info dim).
    public func colored(_ text: String) -> String {
        let code: String
        switch self {
        case .critical: code = "1;97;41"
        case .high: code = "1;31"
        case .medium: code = "33"
        case .low: code = "36"
        case .info: code = "2"
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }
}
