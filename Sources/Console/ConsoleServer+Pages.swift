import Central
import Classifier
import Foundation
import Hummingbird
import IncidentIndex
import Incidents
import Reports
import ServiceLifecycle
import SystemSupport

extension ConsoleServer {
    func indexQuery(_ f: ListFilter, now: Double) -> IncidentIndex.Query {
        var q = IncidentIndex.Query()
        switch f.state ?? "open" {
        case "open": q.open = true
        case "overdue": q.overdueAt = Clock.rfc3339(now)
        case "all": break
        case let state: q.state = state
        }
        (q.severity, q.category, q.group, q.text) = (f.severity, f.category, f.group, f.text)
        q.since = f.since.map { $0 + "T00:00:00Z" }
        q.until = f.until.map { $0 + "T00:00:00Z" }
        if let before = f.before, q.until.map({ before < $0 }) ?? true { q.until = before }
        return q
    }

    func fetch(_ q: IncidentIndex.Query, _ s: Sessions.Session, site: String? = nil) async throws -> [IncidentView] {
        do { return try await desk.incidents(q, site: site, Sessions.scope(s)) } catch {
            logger.error("console: \(error.description)")
            throw HTTPError(.serviceUnavailable, message: error.description)
        }
    }

    func dashboard(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        guard let s = context.session, s.role.readsRecords else {
            return .redirect(to: Self.home(context.session?.role ?? .governor), type: .normal)
        }
        let now = Clock.now()
        let today = String(Clock.rfc3339(now).prefix(10))
        let fortnight = String(Clock.rfc3339(now - 13 * 86400).prefix(10))
        let (open, overdue, days): ([String: Int], [String: Int], [String: [String: Int]])
        do {
            let counts = try await desk.dashboard(
                now: Clock.rfc3339(now),
                since: fortnight + "T00:00:00Z",
                until: Clock.rfc3339(now + 1),
                Sessions.scope(s)
            )
            (open, overdue, days) = (counts.open, counts.overdue, counts.days)
        } catch {
            throw HTTPError(.serviceUnavailable, message: error.description)
        }
        var q = IncidentIndex.Query()
        q.open = true
        q.limit = 10
        let newest = try await fetch(q, s)
        try await recordView(s, context, "dashboard", detail: "\(newest.count) shown", shown: newest)
        let severities = Severity.allCases.reversed().filter { $0 != .info }.map(\.description)
        // Counts stop past 10,000 (the index is walked no further): shown as "more than 10,000".
        func number(_ n: Int) -> String { n > 10_000 ? "more than 10,000" : String(n) }
        func card(_ title: String, _ counts: [String: Int], link: String) -> String {
            let total = severities.reduce(0) { $0 + min(counts[$1] ?? 0, 10_001) }
            let rows = severities.map { sev in
                "<li>\(Pages.severityBadge(Severity(name: sev))) <a href=\"\(link)&amp;severity=\(sev)\">"
                    + "\(number(counts[sev] ?? 0))</a></li>"
            }.joined()
            let shown = severities.contains { (counts[$0] ?? 0) > 10_000 } ? "more than \(total - 1)" : String(total)
            return "<section class=\"card\"><h2>\(title): \(shown)</h2><ul>\(rows)</ul></section>"
        }
        let newestTable = Pages.table(
            newest,
            caption: "The 10 newest open incidents; new ones appear here as they arrive",
            schools: settings.central != nil
        ).replacingOccurrences(of: "<table id=\"incidents\">", with: "<table id=\"incidents\" data-live=\"1\">")
        let health = try await healthText(s).split(separator: "\n").prefix(1).joined(separator: "\n")
        let body = """
            <div class="cards">
            \(card("Open", open, link: "/incidents?state=open"))
            \(card("Overdue", overdue, link: "/incidents?state=overdue"))
            \(card("New today (UTC)", days[today] ?? [:], link: "/incidents?state=all&since=\(today)"))
            <section class="card"><h2>Monitoring</h2><p>\(HTML.escape(health))</p>
            <p><a href="/health">Health</a></p></section>
            </div>
            <h2>New incidents, the last 14 days</h2>
            \(Self.chart(days, from: now - 13 * 86400))
            <h2>Newest open incidents</h2>
            \(newestTable)
            <p><a href="/incidents?state=open">All open incidents</a></p>
            """
        return Self.html(Pages.frame(Pages.Frame(title: "Dashboard", session: s, current: "/"), body))
    }

    /// New incidents per day as stacked bars (SVG with attributes only: no inline style), with
    /// a text table for screen readers.
    static func chart(_ days: [String: [String: Int]], from start: Double) -> String {
        let order = ["critical", "high", "medium", "low"]
        let labels = (0..<14).map { String(Clock.rfc3339(start + Double($0) * 86400).prefix(10)) }
        let totals = labels.map { d in order.reduce(0) { $0 + (days[d]?[$1] ?? 0) } }
        let top = max(1, totals.max() ?? 1)
        var bars = ""
        for (i, day) in labels.enumerated() {
            var y = 180.0
            for sev in order.reversed() {
                let n = days[day]?[sev] ?? 0
                guard n > 0 else { continue }
                let h = 160.0 * Double(n) / Double(top)
                y -= h
                bars +=
                    "<rect class=\"\(sev)\" x=\"\(30 + i * 40)\" y=\"\(Int(y))\" width=\"30\" "
                    + "height=\"\(max(1, Int(h)))\">"
                    + "<title>\(day): \(n) \(sev)</title></rect>"
            }
            bars += "<text x=\"\(30 + i * 40)\" y=\"195\">\(day.suffix(5))</text>"
        }
        let rows = labels.enumerated().map { i, d in
            "<tr><th scope=\"row\">\(d)</th>" + order.map { "<td>\(days[d]?[$0] ?? 0)</td>" }.joined()
                + "<td>\(totals[i])</td></tr>"
        }.joined()
        return """
            <svg class="chart" viewBox="0 0 600 200" role="img" aria-labelledby="chart-title">\
            <title id="chart-title">New incidents per day by severity; the highest day had \(top)</title>\(bars)</svg>
            <details><summary>The figures as a table</summary><div class="scroll"><table><thead><tr>\
            <th scope="col">Day</th>\(order.map { "<th scope=\"col\">\($0)</th>" }.joined())\
            <th scope="col">All</th></tr></thead><tbody>\(rows)</tbody></table></div></details>
            """
    }

    func list(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context)
        let f = ListFilter(Self.query(request))
        var q = indexQuery(f, now: Clock.now())
        q.limit = 51
        var views = try await fetch(q, s)
        let more = views.count > 50
        views = Array(views.prefix(50))
        try await recordView(
            s,
            context,
            "list",
            detail: "\(f.query.isEmpty ? "state=open" : f.query): \(views.count) shown",
            shown: views
        )
        let live =
            (f.state ?? "open") == "open" && f.query.replacingOccurrences(of: "state=open", with: "").isEmpty
            && f.before == nil
        var table = Pages.table(
            views,
            caption: "\(views.count) incident(s), newest first",
            schools: settings.central != nil
        )
        if live {
            table = table.replacingOccurrences(
                of: "<table id=\"incidents\">",
                with: "<table id=\"incidents\" data-live=\"1\">"
            )
        }
        var body = Pages.filters(f, csrf: s.csrf) + table
        if more, let last = views.last {
            let base = f.query.isEmpty ? "" : f.query + "&"
            body +=
                "<p><a rel=\"next\" href=\"/incidents?\(base)before=\(HTML.query(last.time))\">Older incidents</a></p>"
        }
        return Self.html(
            Pages.frame(Pages.Frame(title: "Incidents", session: s, current: "/incidents?state=open"), body)
        )
    }

    func search(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context)
        let fields = try await Self.form(request)
        try checkCSRF(fields, s)
        let f = ListFilter(fields.merging(["state": fields["state"] ?? "all"]) { a, _ in a })
        var q = indexQuery(f, now: Clock.now())
        q.limit = 100
        let views = f.text == nil ? [] : try await fetch(q, s)
        try await recordView(s, context, "search", detail: "\(f.text ?? ""): \(views.count) shown", shown: views)
        let note = views.count == 100 ? "<p>The newest 100 are shown: add words to narrow the search.</p>" : ""
        let body =
            Pages.filters(f, csrf: s.csrf) + note
            + Pages.table(views, caption: "\(views.count) incident(s) found", schools: settings.central != nil)
        return Self.html(Pages.frame(Pages.Frame(title: "Search", session: s), body))
    }

    /// An id as esafetyd writes them (letters, digits, `-`, `.`, `_`; at most 64): anything
    /// else names no incident, and never reaches a query, a link or a redirect.
    static func plainID(_ id: String) -> Bool { PlainName.isID(id) }

    /// The incident the path names (with `?site=` in a trust's console), as the session may see it.
    func find(_ request: Request, _ context: ConsoleContext, _ s: Sessions.Session) async throws -> IncidentView {
        let id = context.parameters.get("id") ?? ""
        let site = Self.query(request)["site"]
        guard Self.plainID(id), site.map({ Forwarder.validSite($0) }) ?? true else {
            throw HTTPError(.notFound, message: "There is no such incident.")
        }
        let found: IncidentView?
        do { found = try await desk.incident(id, site: site, Sessions.scope(s)) } catch {
            throw HTTPError(.serviceUnavailable, message: error.description)
        }
        guard let v = found else { throw HTTPError(.notFound, message: "There is no such incident.") }
        return v
    }

    func incident(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context)
        let v = try await find(request, context, s)
        try await recordView(s, context, "incident", id: v.id, site: v.site, shown: [v])
        let done = Self.query(request)["done"].flatMap(Workflow.Action.init(rawValue:))
        return Self.html(Pages.incident(v, session: s, message: done.map { "Done: \($0.rawValue)." }, error: nil))
    }

    func person(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context)
        let v = try await find(request, context, s)
        var q = IncidentIndex.Query()
        q.person = v.person
        q.limit = 200
        // A trust's store: the same name at another school is another child.
        let views = try await fetch(q, s, site: v.site)
        try await recordView(s, context, "person", id: v.id, site: v.site, detail: "\(views.count) shown", shown: views)
        let body =
            "<p>Every incident of the person in incident <a href=\"\(HTML.escape(Pages.path(v)))\">"
            + "\(HTML.escape(String(v.id.prefix(12))))</a>, newest first (at most 200).</p>"
            + Pages.table(views, caption: "\(views.count) incident(s) of \(v.person)", schools: settings.central != nil)
        return Self.html(Pages.frame(Pages.Frame(title: "History of \(v.person)", session: s), body))
    }

    func act(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context)
        let fields = try await Self.form(request)
        try checkCSRF(fields, s)
        guard let action = context.parameters.get("action").flatMap(Workflow.Action.init(rawValue:)) else {
            throw HTTPError(.notFound, message: "There is no such action.")
        }
        let v = try await find(request, context, s)
        let details = Workflow.Details(
            text: fields["text"],
            to: fields["to"],
            reason: fields["reason"],
            outcome: fields["outcome"],
            action: fields["action"]
        )
        let state: Workflow.State
        do { state = try await desk.act(action, v, details: details, by: s.account, Sessions.scope(s)) } catch {
            try await recordView(
                s,
                context,
                "incident",
                id: v.id,
                site: v.site,
                detail: "\(action.rawValue) refused",
                shown: [v]
            )
            let now = ((try? await desk.incident(v.id, site: v.site, Sessions.scope(s))) ?? nil) ?? v
            return Self.html(
                Pages.incident(now, session: s, message: nil, error: error.description),
                status: error.status == 1 ? .conflict : .internalServerError
            )
        }
        try await recordView(
            s,
            context,
            "action",
            id: v.id,
            site: v.site,
            detail: "\(action.rawValue); now \(state.rawValue)"
        )
        logger.info("console: \(s.account) \(action.rawValue) \(v.id)")
        let page = Pages.path(v)
        return .redirect(to: page + (page.contains("?") ? "&" : "?") + "done=\(action.rawValue)", type: .normal)
    }

    func api(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context)
        let fields = Self.query(request)
        let f = ListFilter(fields)
        var q = indexQuery(f, now: Clock.now())
        q.limit = min(max(Int(fields["limit"] ?? "") ?? 50, 1), 500)
        let views = try await fetch(q, s)
        try await recordView(s, context, "api", detail: "\(f.query): \(views.count) shown", shown: views)
        var out = "["
        for (i, v) in views.enumerated() {
            var j = JSONText(capacity: 64)
            j.beginObject()
            j.field("state", .string(v.state.rawValue))
            if let site = v.site { j.field("site", .string(site)) }
            j.field("hits", .int(v.hits))
            j.field("overdue", .bool(v.overdue(now: Clock.rfc3339(Clock.now()))))
            j.field("record", .raw(v.line.hasSuffix("\n") ? String(v.line.dropLast()) : v.line))
            j.endObject()
            out += (i == 0 ? "" : ",\n") + j.text
        }
        out += "]\n"
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: out))
        )
    }

    /// Server-sent events: each incident written (a school) or shipped (a trust) after the stream
    /// opened, as JSON, within a second or so. Ends when the session does, or the console stops.
    func events(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context)
        try await recordView(s, context, "live")
        let initial: Arrivals
        do { initial = try await desk.arrivals(after: nil, Sessions.scope(s)).1 } catch {
            throw HTTPError(.serviceUnavailable, message: error.description)
        }
        let (desk, sessions, token) = (self.desk, self.sessions, s.token)
        let access = self.access
        let address = context.address
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                var cursor = initial
                try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
                var quiet = 0
                do {
                    while let live = sessions.live(token), !Task.isShuttingDownGracefully && !Task.isCancelled {
                        try await Task.sleep(for: .seconds(1))
                        var fresh: [IncidentView] = []
                        if let (found, next) = try? await desk.arrivals(after: cursor, Sessions.scope(live)) {
                            (fresh, cursor) = (found, next)
                        }
                        for v in fresh {
                            var j = JSONText(capacity: 256)
                            j.beginObject()
                            j.field("id", .string(v.id))
                            if let site = v.site { j.field("site", .string(site)) }
                            j.field("time", .string(v.time))
                            j.field("severity", .string(v.severity?.description ?? "none"))
                            j.field("category", .string(v.record.categoryName ?? v.category))
                            j.field("group", .string(v.group))
                            j.field("person", .string(v.person))
                            j.field("host", .string(v.host))
                            j.field("hits", .int(v.hits))
                            j.field("state", .string(v.state.rawValue))
                            j.endObject()
                            // A view that cannot be recorded is not shown, live or not.
                            do {
                                try access.record(
                                    AccessLog.Entry(
                                        account: s.account,
                                        role: s.role.rawValue,
                                        what: "live",
                                        id: v.id,
                                        site: v.site,
                                        address: address
                                    )
                                )
                            } catch { continue }
                            do {
                                try await desk.recordViews(
                                    what: "live",
                                    by: s.account,
                                    shown: [v],
                                    Sessions.scope(live)
                                )
                            } catch { continue }
                            try await writer.write(ByteBuffer(string: "event: incident\ndata: \(j.text)\n\n"))
                        }
                        quiet = fresh.isEmpty ? quiet + 1 : 0
                        if quiet >= 15 {
                            try await writer.write(ByteBuffer(string: ": still here\n\n"))
                            quiet = 0
                        }
                    }
                } catch {
                    // The browser went away, or the console is stopping.
                }
                try? await writer.finish(nil)
            }
        )
    }

    func report(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context, records: false)
        let fields = Self.query(request)
        if s.role == .it { throw HTTPError(.forbidden, message: "Your account (it) may not see reports about pupils.") }
        // Without a day: the page that asks for one (the report itself is a document of its own).
        if fields["date"] == nil { return Self.html(Self.reportChooser(s)) }
        let date = fields["date"].flatMap { $0.isEmpty ? nil : $0 }
        guard let period = ReportPeriod(date: date, since: nil, until: nil, now: Clock.now()) else {
            throw HTTPError(.badRequest, message: "The date must be YYYY-MM-DD.")
        }
        if let date, ReportPeriod.localMidnight(date) == nil {
            throw HTTPError(.badRequest, message: "The date must be YYYY-MM-DD.")
        }
        let anonymise = s.role != .dsl && s.role != .coordinator || fields["anonymise"] == "1"
        let views: [IncidentView]
        do {
            views = try await desk.period(
                since: Clock.rfc3339(period.since),
                until: Clock.rfc3339(period.until),
                Sessions.scope(s)
            )
        } catch { throw HTTPError(.serviceUnavailable, message: error.description) }
        // The counters are a school's own (a trust's store holds incidents only).
        let counters =
            settings.central != nil
            ? []
            : IncidentStore.withRotations(settings.countersPath).compactMap { try? FileSystem.readText($0) }
                .joined().split(separator: "\n").compactMap(CounterRecord.init(line:))
        var options = Report.Options(since: period.since, until: period.until)
        options.anonymise = anonymise
        options.utcOffset = ReportPeriod.offset(at: period.since)
        options.title = settings.title
        var report = Report(views: views, counters: counters, options: options)
        if settings.central == nil { report.integrity = Report.Integrity(log: settings.logPath) }
        try await recordView(
            s,
            context,
            "report",
            detail: "\(date ?? "yesterday")\(anonymise ? ", anonymised" : "")",
            shown: views
        )
        return Self.html(report.rendered(as: .html))
    }

    /// A day's report, chosen: today, yesterday or a date; the anonymised one for governors
    /// (the only one a governor gets).
    static func reportChooser(_ s: Sessions.Session) -> String {
        let today = String(Clock.rfc3339(Clock.now()).prefix(10))
        let yesterday = String(Clock.rfc3339(Clock.now() - 86400).prefix(10))
        let anonymousOnly = !s.role.readsRecords
        let toggle =
            anonymousOnly
            ? "<p>Reports for governors name nobody: people are \"person 1\", \"person 2\"...</p>"
            : "<p><input type=\"checkbox\" id=\"r-anon\" name=\"anonymise\" value=\"1\"> "
                + "<label for=\"r-anon\" class=\"inline\">Anonymised (for governors)</label></p>"
        let body = """
            <ul><li><a href="/report?date=\(today)">Today so far</a></li>\
            <li><a href="/report?date=\(yesterday)">Yesterday</a></li></ul>
            <form class="filters" method="get" action="/report">
            <p><label for="r-date">Day</label>\
            <input id="r-date" name="date" type="date" value="\(yesterday)" required></p>
            \(toggle)<p><button type="submit">Show the report</button></p></form>
            """
        return Pages.frame(Pages.Frame(title: "Report", session: s, current: "/report"), body)
    }

    /// esafetyd's status (a school), or what each site in the account's scope has shipped (a trust).
    func healthText(_ s: Sessions.Session) async throws -> String {
        let shipped: [CentralIncidents.Shipping]?
        do { shipped = try await desk.shipping(Sessions.scope(s)) } catch {
            throw HTTPError(.serviceUnavailable, message: error.description)
        }
        guard let shipped else { return settings.health() }
        if shipped.isEmpty { return "No site in your scope has shipped its incident log to the trust's store yet." }
        let late = shipped.filter { $0.secondsAgo > 900 }.map(\.site)
        let tampered = shipped.filter { $0.tamper > 0 }.map(\.site)
        var text =
            late.isEmpty && tampered.isEmpty
            ? (shipped.count == 1
                ? "\(shipped[0].site) shipped its log in the last 15 minutes; no tampering found."
                : "All \(shipped.count) sites shipped their logs in the last 15 minutes; no tampering found.")
            : (late.isEmpty ? "" : "Not shipped for more than 15 minutes: \(late.joined(separator: ", ")). ")
                + (tampered.isEmpty ? "" : "Tampering flagged: \(tampered.joined(separator: ", ")).")
        for h in shipped {
            text +=
                "\n\(h.site): \(h.lines) line(s) shipped, the last at \(h.lastShipped) "
                + "(\(Int(h.secondsAgo / 60)) minute(s) ago); tamper flags: \(h.tamper)"
        }
        return text
    }

    func healthPage(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context, records: false)
        guard s.role != .governor else {
            throw HTTPError(.forbidden, message: "Your account (governor) may see reports only.")
        }
        let body = "<pre>\(HTML.escapeLines(try await healthText(s)))</pre>"
        return Self.html(Pages.frame(Pages.Frame(title: "Health", session: s, current: "/health"), body))
    }

    /// The site switcher (a trust's console): one of the session's sites, or all of them.
    func chooseSite(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context, records: false)
        let fields = try await Self.form(request)
        try checkCSRF(fields, s)
        let site = fields["site"].flatMap { $0.isEmpty ? nil : $0 }
        guard sessions.choose(s.token, site: site) else {
            throw HTTPError(.forbidden, message: "Your account may not see that school.")
        }
        try await recordView(s, context, "site", detail: site ?? "all")
        // Back to the page the switcher was on: one of the navigation's pages, nothing else.
        let back = fields["back"].flatMap { Pages.navigation.contains($0) ? $0 : nil }
        return .redirect(to: back ?? Self.home(s.role), type: .normal)
    }

    func accessPage(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context, dslOnly: true)
        try await recordView(s, context, "access-log")
        func link(_ id: String, _ site: String?) -> String {
            let school = site.flatMap { Forwarder.validSite($0) ? "?site=\($0)" : nil } ?? ""
            return "<a href=\"/incidents/\(HTML.escape(id))\(school)\">\(HTML.escape(String(id.prefix(12))))</a>"
                + (site.map { " (\(HTML.escape($0)))" } ?? "")
        }
        let rows = access.recent(300).map { (e: AccessLog.Entry) -> String in
            "<tr><td>\(Pages.time(e.time))</td><td>\(HTML.escape(e.account))</td>"
                + "<td>\(HTML.escape(e.role))</td><td>\(HTML.escape(e.what))</td>"
                + "<td>\(e.id.map { link($0, e.site) } ?? "")</td>"
                + "<td>\(HTML.escape(e.detail ?? ""))</td><td>\(HTML.escape(e.address))</td></tr>"
        }.joined(separator: "\n")
        let body = """
            <p>Who saw or acted on which record through this console, newest first (the last 300; the whole log is \
            \(HTML.escape(settings.accessLogPath))).</p>
            <div class="scroll"><table><thead><tr><th scope="col">Time (UTC)</th><th scope="col">Account</th>\
            <th scope="col">Role</th><th scope="col">What</th><th scope="col">Incident</th><th scope="col">Detail</th>\
            <th scope="col">Address</th></tr></thead><tbody>\(rows)</tbody></table></div>
            """
        return Self.html(Pages.frame(Pages.Frame(title: "Access log", session: s, current: "/access"), body))
    }
}
