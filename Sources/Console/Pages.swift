import Classifier
import Incidents
import Reports
import SystemSupport

/// The console's pages as HTML text: server-rendered, working without JavaScript, every value
/// from the log escaped (`HTML.escape`), no inline script or style (the Content-Security-Policy
/// forbids both), severities named in words as well as colours.
enum Pages {
    typealias E = HTML

    struct Frame {
        var title: String
        var session: Sessions.Session?
        var current: String = ""
    }

    /// An incident's page (and `suffix`: its person, an action), with its school when it came
    /// from a trust's store (ids are unique per school only); sites are `a-z0-9._-`, ids
    /// `plainID`, so the path needs no escaping beyond HTML's.
    static func path(_ v: IncidentView, _ suffix: String = "") -> String {
        "/incidents/\(v.id)\(suffix)" + (v.site.map { "?site=\($0)" } ?? "")
    }

    /// The pages the navigation links to (and the site switcher may return to).
    static let navigation: Set<String> = ["/", "/incidents?state=open", "/report", "/health", "/access"]

    /// A trust's console: the school shown, and a form to choose another (or all) when the
    /// account has more than one.
    static func switcher(_ s: Sessions.Session, current: String) -> String {
        guard !s.choices.isEmpty else { return "" }
        if s.choices.count == 1 {
            return "<p class=\"school\">School: <strong>\(E.escape(s.choices[0]))</strong></p>"
        }
        let options =
            "<option value=\"\"\(s.site == nil ? " selected" : "")>All my schools (\(s.choices.count))</option>"
            + s.choices.map {
                "<option value=\"\(E.escape($0))\"\($0 == s.site ? " selected" : "")>\(E.escape($0))</option>"
            }.joined()
        return "<form class=\"school\" method=\"post\" action=\"/site\">"
            + "<input type=\"hidden\" name=\"csrf\" value=\"\(E.escape(s.csrf))\">"
            + "<input type=\"hidden\" name=\"back\" value=\"\(navigation.contains(current) ? current : "/")\">"
            + "<label for=\"school\">School</label> <select id=\"school\" name=\"site\">\(options)</select> "
            + "<button type=\"submit\">Show</button></form>"
    }

    /// The page around a body: navigation for what the role may see, the account and log-out
    /// form, the live regions the live script writes to.
    static func frame(_ f: Frame, _ body: String) -> String {
        var nav = ""
        if let s = f.session {
            var links: [(String, String)] = []
            if s.role.readsRecords {
                links += [("/", "Dashboard"), ("/incidents?state=open", "Incidents")]
            }
            links.append(("/report", "Report"))
            if s.role != .governor { links.append(("/health", "Health")) }
            if s.role == .dsl { links.append(("/access", "Access log")) }
            nav =
                "<header class=\"top\"><nav aria-label=\"Main\"><ul>"
                + links.map { href, name in
                    "<li><a href=\"\(href)\"\(f.current == href ? " aria-current=\"page\"" : "")>\(name)</a></li>"
                }.joined()
                + "</ul></nav>" + switcher(s, current: f.current)
                + "<form class=\"logout\" method=\"post\" action=\"/logout\">"
                + "<input type=\"hidden\" name=\"csrf\" value=\"\(E.escape(s.csrf))\">"
                + "<span class=\"who\">\(E.escape(s.account)) (\(s.role.rawValue))</span> "
                + "<button type=\"submit\">Log out</button></form></header>\n"
        }
        return """
            <!doctype html>
            <html lang="en-GB"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(E.escape(f.title)) · esafety</title>
            <link rel="stylesheet" href="/static/console.css">
            \(f.session?.role.readsRecords == true ? "<script src=\"/static/live.js\" defer></script>" : "")
            </head><body>
            <a class="skip" href="#main">Skip to the content</a>
            \(nav)<div id="alert" class="alert" role="alert" hidden></div>
            <div id="live" class="visually-hidden" role="status" aria-live="polite"></div>
            <main id="main" tabindex="-1"><h1>\(E.escape(f.title))</h1>
            \(body)
            </main></body></html>

            """
    }

    static func login(message: String?, csrf: String, name: String = "") -> String {
        let error = message.map { "<p class=\"error\" role=\"alert\" id=\"login-error\">\(E.escape($0))</p>" } ?? ""
        return frame(
            Frame(title: "Log in"),
            """
            \(error)<form class="login" method="post" action="/login">
            <input type="hidden" name="csrf" value="\(E.escape(csrf))">
            <p><label for="username">Name</label>
            <input id="username" name="username" autocomplete="username" required value="\(E.escape(name))"\
            \(message == nil ? "" : " aria-describedby=\"login-error\"")></p>
            <p><label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required></p>
            <p><button type="submit">Log in</button></p></form>
            """
        )
    }

    static func severityBadge(_ s: Severity?) -> String {
        let name = s?.description ?? "none"
        return "<span class=\"sev sev-\(name)\">\(name)</span>"
    }

    /// Time as `YYYY-MM-DD HH:MM:SS` (UTC), with the machine-readable value.
    static func time(_ t: String) -> String {
        let shown = String(t.prefix(19)).replacingOccurrences(of: "T", with: " ")
        return "<time datetime=\"\(E.escape(t))\">\(E.escape(shown))</time>"
    }

    /// One incident as a row of the list; `schools`: a trust's console, with each one's school.
    static func row(_ v: IncidentView, schools: Bool) -> String {
        let r = v.record
        return """
            <tr data-id="\(E.escape(v.id))" class="row-\(r.severity?.description ?? "none")">\
            <td>\(time(v.time))</td>\(schools ? "<td>\(E.escape(v.site ?? ""))</td>" : "")\
            <td>\(severityBadge(r.severity))</td>\
            <td>\(E.escape(v.person))</td><td>\(E.escape(v.group))</td>\
            <td>\(E.escape(r.categoryName ?? v.category))</td><td class="site">\(E.escape(v.host))</td>\
            <td>\(v.hits)</td><td>\(E.escape(v.state.rawValue))</td>\
            <td><a href="\(E.escape(path(v)))">Open<span class="visually-hidden"> incident \
            \(E.escape(v.id))</span></a></td></tr>
            """
    }

    static func table(_ views: [IncidentView], caption: String, schools: Bool = false) -> String {
        """
        <div class="scroll"><table id="incidents"><caption>\(E.escape(caption))</caption>
        <thead><tr><th scope="col">Time (UTC)</th>\(schools ? "<th scope=\"col\">School</th>" : "")\
        <th scope="col">Severity</th><th scope="col">Person</th>\
        <th scope="col">Group</th><th scope="col">Category</th><th scope="col">Site</th><th scope="col">Hits</th>\
        <th scope="col">State</th><th scope="col"><span class="visually-hidden">Link</span></th></tr></thead>
        <tbody>
        \(views.map { row($0, schools: schools) }.joined(separator: "\n"))
        </tbody></table></div>
        \(views.isEmpty ? "<p class=\"empty\">No incidents.</p>" : "")
        """
    }

    /// The list's filters, as a GET form (nothing about a person in it: a person's history is
    /// reached from an incident, and text search is posted).
    static func filters(_ f: ListFilter, csrf: String) -> String {
        func options(_ values: [String], _ selected: String?) -> String {
            values.map { v in
                "<option value=\"\(E.escape(v))\"\(v == (selected ?? "") ? " selected" : "")>"
                    + "\(v.isEmpty ? "any" : E.escape(v))</option>"
            }.joined()
        }
        return """
            <form class="filters" method="get" action="/incidents">
            <p><label for="f-state">State</label><select id="f-state" name="state">\
            \(options(ListFilter.states, f.state))</select></p>
            <p><label for="f-severity">Severity</label><select id="f-severity" name="severity">\
            \(options([""] + Severity.allCases.reversed().map(\.description), f.severity))</select></p>
            <p><label for="f-category">Category</label><input id="f-category" name="category" \
            value="\(E.escape(f.category ?? ""))"></p>
            <p><label for="f-group">Group</label><input id="f-group" name="group" \
            value="\(E.escape(f.group ?? ""))"></p>
            <p><label for="f-since">From (date)</label><input id="f-since" name="since" type="date" \
            value="\(E.escape(f.since ?? ""))"></p>
            <p><label for="f-until">Before (date)</label><input id="f-until" name="until" type="date" \
            value="\(E.escape(f.until ?? ""))"></p>
            <p><button type="submit">Filter</button></p></form>
            <form class="search" method="post" action="/incidents/search">
            <input type="hidden" name="csrf" value="\(E.escape(csrf))">
            <p><label for="q">Search sites, URLs, search terms and notes</label>
            <input id="q" name="q" type="search" value="\(E.escape(f.text ?? ""))">
            <button type="submit">Search</button></p></form>
            """
    }

    static func details(_ v: IncidentView) -> String {
        let r = v.record
        func item(_ name: String, _ value: String?) -> String {
            guard let value, !value.isEmpty else { return "" }
            return "<dt>\(name)</dt><dd>\(E.escape(value))</dd>"
        }
        let blocked = r.action == "blocked" ? "blocked\(r.blockedBy.map { " by \($0)" } ?? "")" : r.action
        var who = r.user ?? r.client
        if r.user != nil { who += " (at \(r.client))" }
        let searched = r.searchTerm.map { " They searched for <q>\(E.escape($0))</q>." } ?? ""
        let summary =
            "\(E.escape(who)) in \(E.escape(r.group)) requested <span class=\"site\">\(E.escape(r.host))</span>, "
            + "listed as \(E.escape(r.categoryName ?? r.category)) (\(severityBadge(r.severity))), at "
            + "\(time(v.time)) UTC. The request was \(E.escape(blocked)).\(searched)"
        let rule = r.rule
        let ruleText =
            "\(rule.kind?.description ?? "") \(rule.rule) at \(rule.file):\(rule.line) (lists generation "
            + "\(rule.generation))\(rule.locked ? ", locked" : "")"
        return """
            <p class="summary">\(summary)</p>
            <dl class="record">
            \(item("School", v.site))\(item("State", v.state.rawValue))\(item("Due", r.due?.text))\
            \(item("Category", r.categoryName.map { "\($0) (\(r.category))" } ?? r.category))\
            \(item("Group", r.group))\(item("User", r.user))\(item("Address", r.client))\(item("Device", r.device))\
            \(item("Site", r.host))\(item("URL", r.url))\(item("Search term", r.searchTerm))\
            \(item("Request", blocked))\
            \(item("Rule", ruleText))\
            \(item("Hits", "\(v.hits) (last seen \(v.lastSeen))"))\(item("Incident", v.id))
            </dl>
            """
    }

    static func history(_ v: IncidentView) -> String {
        let actions = v.actions
        guard !actions.isEmpty else { return "<h2>History</h2><p class=\"empty\">No action yet.</p>" }
        let rows = actions.map { a in
            let details = a.details.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
            return
                "<tr><td>\(time(a.time))</td><td>\(E.escape(a.action.rawValue))</td><td>\(E.escape(a.by))</td>"
                + "<td>\(E.escape(details))</td></tr>"
        }
        return """
            <h2>History</h2><div class="scroll"><table class="history"><thead><tr><th scope="col">Time (UTC)</th>\
            <th scope="col">Action</th><th scope="col">By</th><th scope="col">Details</th></tr></thead>
            <tbody>\(rows.joined(separator: "\n"))</tbody></table></div>
            """
    }

    static func context(_ v: IncidentView) -> String {
        var out = ""
        for span in [ContextRecord.Span.before, .after] {
            let requests = v.context.filter { $0.span == span }.flatMap(\.requests)
            guard !requests.isEmpty else { continue }
            out += "<h2>\(span == .before ? "The hour before" : "The hour after")</h2><ul class=\"context\">"
            for q in requests {
                out +=
                    "<li>\(time(q.time.text)) \(E.escape(q.category)) <span class=\"site\">\(E.escape(q.host))</span>"
                    + "\(q.searchTerm.map { " searched <q>\(E.escape($0))</q>" } ?? "")</li>"
            }
            out += "</ul>"
        }
        return out
    }

    /// The forms for the actions the incident's state allows.
    static func actions(_ v: IncidentView, csrf: String) -> String {
        func form(_ action: Workflow.Action, _ title: String, _ fields: String) -> String {
            guard case .success = Workflow.next(v.state, action) else { return "" }
            return """
                <form class="action" method="post" action="\(E.escape(path(v, "/" + action.rawValue)))">
                <fieldset><legend>\(title)</legend>
                <input type="hidden" name="csrf" value="\(E.escape(csrf))">
                \(fields)<button type="submit">\(title)</button></fieldset></form>
                """
        }
        let roles = Workflow.roles.map { (role: Workflow.Role) -> String in
            let note = role.referral ? " (referral: needs a reason)" : ""
            return "<option value=\"\(role.key)\">\(E.escape(role.name))\(note)</option>"
        }.joined()
        let outcomes = Workflow.outcomes.map { "<option value=\"\($0)\">\($0)</option>" }.joined()
        return "<h2>Act</h2><div class=\"actions\">"
            + form(.ack, "Acknowledge", "")
            + form(
                .escalate,
                "Escalate",
                "<p><label for=\"esc-to\">To</label><select id=\"esc-to\" name=\"to\">\(roles)</select></p>"
                    + "<p><label for=\"esc-reason\">Reason</label><textarea id=\"esc-reason\" name=\"reason\">"
                    + "</textarea></p>"
            )
            + form(
                .resolve,
                "Resolve",
                "<p><label for=\"res-outcome\">Outcome</label><select id=\"res-outcome\" name=\"outcome\">"
                    + "\(outcomes)</select></p><p><label for=\"res-action\">What was done</label>"
                    + "<textarea id=\"res-action\" name=\"action\" required></textarea></p>"
            )
            + form(
                .falsePositive,
                "False positive",
                "<p><label for=\"fp-reason\">Why</label><textarea id=\"fp-reason\" name=\"reason\" required>"
                    + "</textarea></p>"
            )
            + form(
                .assign,
                "Assign",
                "<p><label for=\"as-to\">To</label><input id=\"as-to\" name=\"to\" required></p>"
            )
            + form(
                .note,
                "Add a note",
                "<p><label for=\"note-text\">Note</label><textarea id=\"note-text\" name=\"text\" required>"
                    + "</textarea></p>"
            )
            + form(
                .reopen,
                "Reopen",
                "<p><label for=\"re-reason\">Why</label><textarea id=\"re-reason\" name=\"reason\" required>"
                    + "</textarea></p>"
            )
            + "</div>"
    }

    static func incident(_ v: IncidentView, session: Sessions.Session, message: String?, error: String?) -> String {
        var body = ""
        if let error { body += "<p class=\"error\" role=\"alert\">\(E.escape(error))</p>" }
        if let message { body += "<p class=\"done\" role=\"status\">\(E.escape(message))</p>" }
        if v.state == .falsePositive, !v.record.rule.locked, let (file, line) = Workflow.allowlistLine(for: v) {
            body +=
                "<p class=\"allowlist\">To stop this site raising incidents, give IT this line for "
                + "<code>&lt;lists&gt;/\(E.escape(file))</code>: <code>\(E.escape(line))</code></p>"
        }
        body += details(v)
        body += "<p><a href=\"\(E.escape(path(v, "/person")))\">This person's history</a></p>"
        body += actions(v, csrf: session.csrf)
        body += history(v)
        body += context(v)
        return frame(Frame(title: "Incident \(String(v.id.prefix(12)))", session: session), body)
    }
}

/// The list page's filters, from its query.
struct ListFilter {
    static let states = ["open", "overdue", "all", "new", "acknowledged", "escalated", "resolved", "false-positive"]
    var state: String?
    var severity: String?
    var category: String?
    var group: String?
    var since: String?
    var until: String?
    var text: String?
    var before: String?

    init(_ q: [String: String]) {
        func given(_ k: String) -> String? { q[k].flatMap { $0.isEmpty ? nil : $0 } }
        state = given("state").flatMap { Self.states.contains($0) ? $0 : nil }
        severity = given("severity").flatMap { Severity(name: $0)?.description }
        (category, group, text, before) = (given("category"), given("group"), given("q"), given("before"))
        func date(_ k: String) -> String? {
            guard let d = given(k), d.utf8.count == 10, ReportPeriod.time(d) != nil else { return nil }
            return d
        }
        (since, until) = (date("since"), date("until"))
    }

    /// The query's text for a link (the filters a page was shown with, for "older").
    var query: String {
        [
            ("state", state), ("severity", severity), ("category", category), ("group", group), ("since", since),
            ("until", until),
        ].compactMap { k, v in v.map { "\(k)=\(HTML.query($0))" } }.joined(separator: "&")
    }
}
