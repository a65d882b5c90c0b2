import Incidents
import LogFormats
import Logging
import PostgresNIO
import SystemSupport

/// The incidents of the central store as the tools read and act on them
/// (`esafety incidents list|show|ack|... --central URL`): what the connecting role may see,
/// decided by the database (row-level security), never filtered here. An incident is folded
/// from its site's shipped lines and the actions taken centrally, through the same
/// `IncidentStore.fold` and `Workflow` rules as a school's own log.
public enum CentralIncidents {
    /// A refusal in the tool's words (no such incident, a transition that does not fit).
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The tool's filters (`incidents list`), as `IncidentIndex.Query` has them for a school's log.
    public struct Filter: Sendable {
        public var site: String?
        /// Only these sites (nil: every site the role may see). Row-level security decides what
        /// is visible either way; naming the sites lets PostgreSQL use a site's indexes.
        public var sites: [String]?
        public var open = false
        /// One workflow state (`new`, `acknowledged`, `escalated`, `resolved`, `false-positive`).
        public var state: String?
        /// New (not acknowledged) and past its due time at this RFC 3339 time.
        public var overdueAt: String?
        public var severity: String?
        public var category: String?
        public var group: String?
        public var user: String?
        public var client: String?
        public var person: String?
        /// [since, until): RFC 3339 or YYYY-MM-DD, compared as the records' times are.
        public var since: String?
        public var until: String?
        /// Words in the website, the URL, the search term or a note (case-insensitive, all of them,
        /// the last also as the start of a word), as a school's own index finds them.
        public var text: String?
        public var limit = 50
        public init() {}
    }

    /// The newest incidents the filter selects, each with its site; the state is the store's
    /// (its log's actions and the central ones, as applied).
    public static func list(
        _ c: PostgresConnection,
        _ f: Filter,
        logger: Logger
    ) async throws -> [(site: String, view: IncidentView)] {
        var f = f
        if f.site == nil && f.sites == nil { f.sites = try await visibleSites(c, logger: logger) }
        var query: PostgresQuery = """
            SELECT i.site, i.record::text, i.state, coalesce(h.hits, -1), coalesce(h.last_seen, '')
            FROM esafety.incidents i
            LEFT JOIN LATERAL (
                -- The last count that is one: a line edited into a site's log may hold anything.
                SELECT (j->>'hits')::int AS hits, j->>'last_seen' AS last_seen
                FROM esafety.lines l, LATERAL (SELECT l.line::jsonb AS j) AS p
                WHERE l.site = i.site AND l.id = i.id AND l.event = 'hits' AND j->>'hits' ~ '^[0-9]{1,9}$'
                ORDER BY l.seq DESC LIMIT 1
            ) h ON true
            WHERE (\(f.site)::text IS NULL OR i.site = \(f.site))
            AND (\(f.sites)::text[] IS NULL OR i.site = ANY (\(f.sites)::text[]))
            AND (NOT \(f.open) OR i.state IN ('new', 'acknowledged', 'escalated'))
            AND (\(f.state)::text IS NULL OR i.state = \(f.state))
            AND (\(f.overdueAt)::text IS NULL OR (i.state = 'new' AND i.due < \(f.overdueAt)))
            AND (\(f.severity)::text IS NULL OR i.severity = \(f.severity))
            AND (\(f.category)::text IS NULL OR i.category = \(f.category))
            AND (\(f.group)::text IS NULL OR i.grp = \(f.group))
            AND (\(f.user)::text IS NULL OR i.record->>'user' = \(f.user))
            AND (\(f.client)::text IS NULL OR i.record->>'client' = \(f.client))
            AND (\(f.person)::text IS NULL OR (i.person = \(StoredText.key(f.person))
                AND coalesce(i.record->>'user', i.record->>'client') = \(f.person)))
            AND (\(f.since)::text IS NULL OR i.time >= \(f.since))
            AND (\(f.until)::text IS NULL OR i.time < \(f.until))
            """
        if let text = f.text, text.contains(where: { !$0.isWhitespace }) {
            try await matchWords(of: text, in: &query, c, logger: logger)
        }
        query.sql += "\nORDER BY i.time DESC LIMIT \(max(0, f.limit))"
        let rows = try await c.query(query, logger: logger)
        var out: [(String, IncidentView)] = []
        for try await (site, line, state, hits, lastSeen) in rows.decode((String, String, String, Int, String).self) {
            guard case .incident(let record) = LogRecord(line: line) else { continue }
            var view = IncidentView(record: record, line: line)
            view.site = site
            if let s = IncidentView.State(rawValue: state) { view.workflow.state = s }
            // The latest `hits` line's count, as a fold of the log gives it.
            if hits >= 0 { (view.hits, view.lastSeen) = (hits, lastSeen) }
            out.append((site, view))
        }
        return out
    }

    /// The sites the connected role may see, or nil when it sees every site (a trust's role):
    /// the policy's own answer. Named in a list's query, they let PostgreSQL estimate a school's
    /// share of the rows and use a site's indexes; the policy alone hides them from the planner
    /// (a school's open incidents at a million rows: 200 ms walking every site's by time, 27 ms).
    static func visibleSites(_ c: PostgresConnection, logger: Logger) async throws -> [String]? {
        var sites: [String]? = nil
        let rows = try await c.query(
            "SELECT CASE WHEN esafety.sees_all() THEN NULL ELSE esafety.own_sites() END",
            logger: logger
        )
        for try await s in rows.decode([String]?.self) { sites = s }
        return sites
    }

    /// Narrows `query` to the incidents with every word of `text` in their website, URL, search
    /// term or a note (the school's or a central one), its last word also as the start of a
    /// word, as a school's own index searches. The words are the store's own
    /// (`esafety.search_words`), split as the incidents' were; text with no word in it (only
    /// punctuation) matches nothing.
    ///
    /// Each word is an `EXISTS` on the incident's rows of `esafety.incident_words` (by site and
    /// id, under row-level security). When one of the words has at most `fewMatches` incidents
    /// (counted from the words' index, up to that, by `esafety.word_matches`), the store starts
    /// from that word's incidents; otherwise it walks incidents newest first and stops at the
    /// limit, as for words most incidents have.
    static func matchWords(
        of text: String,
        in query: inout PostgresQuery,
        _ c: PostgresConnection,
        logger: Logger
    ) async throws {
        var words: [String] = []
        for try await w in try await c.query("SELECT esafety.search_words(\(text))", logger: logger)
            .decode([String].self)
        {
            words = w
        }
        guard !words.isEmpty else {
            query.sql += "\nAND false"
            return
        }
        // Each word is a join for the store to plan: a pasted page is refused, not planned.
        guard words.count <= maxWords else {
            throw Refusal(description: "a search of at most \(maxWords) words, not \(words.count)")
        }
        // A whole word, but the last, which is also the start of a word.
        let starts = words.indices.map { $0 == words.count - 1 }
        var counts: [Int] = []
        let counted = try await c.query(
            """
            SELECT (SELECT count(*) FROM esafety.word_matches(esafety.word_query(w.word, w.start), \(fewMatches + 1)))
            FROM unnest(\(words)::text[], \(starts)::boolean[]) WITH ORDINALITY AS w(word, start, n)
            ORDER BY w.n
            """,
            logger: logger
        )
        for try await n in counted.decode(Int.self) { counts.append(n) }
        func bind(_ value: String) -> String {
            query.binds.append(value)
            return "$\(query.binds.count)"
        }
        func word(_ n: Int) -> String { "esafety.word_query(\(bind(words[n])), \(starts[n]))" }
        if let rarest = counts.indices.min(by: { counts[$0] < counts[$1] }), counts[rarest] <= fewMatches {
            query.sql += """

                AND (i.site, i.id) IN (SELECT m.site, m.id FROM esafety.word_matches(\(word(rarest)), NULL) AS m)
                """
        }
        for n in words.indices {
            query.sql += """

                AND EXISTS (SELECT 1 FROM esafety.incident_words x
                    WHERE x.site = i.site AND x.id = i.id AND x.words @@ \(word(n)))
                """
        }
    }

    /// Below this many rows of a search's rarest word, the store starts from its incidents.
    static let fewMatches = 2_000

    /// The most words a search of the central store takes.
    public static let maxWords = 32

    /// The incident an id (or a prefix of 8 or more characters) names, with its whole
    /// history: the site's lines in the site's order, then the central actions in theirs,
    /// merged by time. `lock` takes the incident's row for an action (FOR UPDATE).
    public static func find(
        _ c: PostgresConnection,
        id: String,
        site: String?,
        lock: Bool = false,
        logger: Logger
    ) async throws -> (site: String, view: IncidentView) {
        // The whole id first, then (8 characters or more) its start; both by the id's own index.
        var found: [(String, String)] = []
        let exact = try await c.query(
            """
            SELECT site, id FROM esafety.incidents
            WHERE (\(site)::text IS NULL OR site = \(site)) AND id = \(id) ORDER BY site LIMIT 6
            """,
            logger: logger
        )
        for try await row in exact.decode((String, String).self) { found.append(row) }
        if found.isEmpty, id.count >= 8 {
            // A range of the id's index (text_pattern_ops), not LIKE: row-level security lets
            // only leakproof operators reach an index, and LIKE is not one (it scanned every row).
            let prefix = try await c.query(
                """
                SELECT site, id FROM esafety.incidents
                WHERE (\(site)::text IS NULL OR site = \(site))
                AND id ~>=~ \(id) AND id ~<~ \(id + "\u{10FFFF}") AND starts_with(id, \(id))
                ORDER BY site, id LIMIT 6
                """,
                logger: logger
            )
            for try await row in prefix.decode((String, String).self) { found.append(row) }
        }
        guard found.count == 1 else {
            if found.isEmpty {
                throw Refusal(
                    description: id.count < 8
                        ? "no incident \(id) (give the whole id or at least 8 characters)"
                        : "no incident \(id) that this role may see in the central store"
                )
            }
            let some = found.prefix(5).map { "\($0.1) (\($0.0))" }.joined(separator: ", ")
            throw Refusal(
                description: "more than one incident starts with \(id) (\(some)): give more of the id, or --site"
            )
        }
        let (s, full) = found[0]
        if lock {
            try await c.query(
                "SELECT 1 FROM esafety.incidents WHERE site = \(s) AND id = \(full) FOR UPDATE",
                logger: logger
            )
        }
        // Its lines, and the context lines it shares with the same person's other incidents
        // (a context line is stored under the first incident it names): found through those
        // incidents (the person's index, a day either side of its time), then the line's `ids`.
        var (from, to) = ("", "")
        let row = try await c.query(
            "SELECT time FROM esafety.incidents WHERE site = \(s) AND id = \(full)",
            logger: logger
        )
        for try await time in row.decode(String.self) {
            if let t = Self.seconds(time) { (from, to) = (Clock.rfc3339(t - 86400), Clock.rfc3339(t + 86400)) }
        }
        let shipped = try await c.query(
            """
            SELECT seq, line, event FROM esafety.lines WHERE site = \(s) AND id = \(full)
            UNION ALL
            SELECT l.seq, l.line, l.event FROM esafety.incidents x
            JOIN esafety.incidents i ON i.site = x.site AND i.person = x.person
                AND i.time >= \(from) AND i.time <= \(to) AND i.id <> x.id
            JOIN esafety.lines l ON l.site = i.site AND l.id = i.id AND l.event = 'context'
            WHERE x.site = \(s) AND x.id = \(full) AND l.line::jsonb->'ids' ? \(full)
            ORDER BY 1
            """,
            logger: logger
        )
        var incidentLine: String?
        var events: [(time: String, line: String)] = []
        for try await (_, line, event) in shipped.decode((Int64, String, String).self) {
            if event == "incident" { incidentLine = line } else { events.append((LogLine.time(line) ?? "", line)) }
        }
        let central = try await c.query(
            "SELECT line::text, time FROM esafety.actions WHERE site = \(s) AND id = \(full) ORDER BY n",
            logger: logger
        )
        var taken: [(time: String, line: String)] = []
        for try await (line, time) in central.decode((String, String).self) { taken.append((time, line)) }
        guard let incidentLine else {
            throw Refusal(description: "incident \(full) of site \(s): its line is not in the central store")
        }
        guard var view = fold(full, incidentLine, events, taken) else {
            throw Refusal(description: "incident \(full) of site \(s) cannot be read")
        }
        view.site = s
        return (s, view)
    }

    /// Seconds since 1970 of an RFC 3339 time as the records write it (nil: not one).
    static func seconds(_ text: String) -> Double? {
        var text = text
        return text.withUTF8 { LogTime(localOffset: 0).rfc3339(UnsafeRawBufferPointer($0), at: 0)?.0 }
    }

    /// One incident from its line, its site's later lines (in the site's order) and the
    /// actions taken centrally (in theirs), merged by time, the site's first on a tie.
    static func fold(
        _ id: String,
        _ incidentLine: String,
        _ events: [(time: String, line: String)],
        _ taken: [(time: String, line: String)]
    ) -> IncidentView? {
        var merged: [String] = [incidentLine]
        var (i, j) = (0, 0)
        while i < events.count || j < taken.count {
            if j == taken.count || (i < events.count && events[i].time <= taken[j].time) {
                merged.append(events[i].line)
                i += 1
            } else {
                merged.append(taken[j].line)
                j += 1
            }
        }
        return IncidentStore.fold(lines: merged).first(where: { $0.id == id })
    }

    /// What a report of [since, until) reads (RFC 3339 times), as `IncidentIndex` gives it for
    /// a school's own log: the incidents opened in the period, and the older ones that may have
    /// been open at its end (open now, or with a line or a central action since it began); each
    /// with its whole history but its context lines (a report does not show them, and one can
    /// name a hundred incidents), read in one query.
    public static func period(
        _ c: PostgresConnection,
        site: String?,
        since: String,
        until: String,
        logger: Logger
    ) async throws -> [IncidentView] {
        let rows = try await c.query(
            """
            WITH chosen AS (
                SELECT i.site, i.id FROM esafety.incidents i
                WHERE (\(site)::text IS NULL OR i.site = \(site)) AND i.time < \(until)
                AND (i.time >= \(since) OR i.state IN ('new', 'acknowledged', 'escalated')
                    OR EXISTS (SELECT 1 FROM esafety.lines l
                        WHERE l.site = i.site AND l.id = i.id AND l.event <> 'incident' AND l.time >= \(since))
                    OR EXISTS (SELECT 1 FROM esafety.actions a
                        WHERE a.site = i.site AND a.id = i.id AND a.time >= \(since)))
            )
            SELECT c.site, c.id, l.line, l.event, coalesce(l.time, ''), 0 AS source, l.seq AS n
            FROM chosen c JOIN esafety.lines l ON l.site = c.site AND l.id = c.id AND l.event <> 'context'
            UNION ALL
            SELECT c.site, c.id, a.line::text, a.action, a.time, 1, a.n
            FROM chosen c JOIN esafety.actions a ON a.site = c.site AND a.id = c.id
            ORDER BY 1, 2, 6, 7
            """,
            logger: logger
        )
        var out: [IncidentView] = []
        var current: (site: String, id: String)? = nil
        var incidentLine: String?
        var events: [(time: String, line: String)] = []
        var taken: [(time: String, line: String)] = []
        func finish() {
            if let current, let incidentLine, var v = fold(current.id, incidentLine, events, taken) {
                v.site = current.site
                out.append(v)
            }
            (incidentLine, events, taken) = (nil, [], [])
        }
        for try await (s, id, line, event, time, source, _) in rows.decode(
            (String, String, String, String, String, Int, Int64).self
        ) {
            if current?.site != s || current?.id != id {
                finish()
                current = (s, id)
            }
            if source == 1 {
                taken.append((time, line))
            } else if event == "incident" {
                incidentLine = line
            } else {
                events.append((time, line))
            }
        }
        finish()
        return out.sorted { $0.time < $1.time }
    }

    /// Open and overdue incidents by severity, as the console's dashboard shows them: each
    /// count stops past 10,000 (as a school's index counts them), read from the open
    /// incidents' own index (migration 6). `sites` as in `Filter`.
    public static func openCounts(
        _ c: PostgresConnection,
        now: String,
        sites: [String]?,
        logger: Logger
    ) async throws -> (open: [String: Int], overdue: [String: Int]) {
        let rows = try await c.query(
            """
            SELECT s.severity,
                (SELECT count(*) FROM (SELECT 1 FROM esafety.incidents i
                    WHERE i.state IN ('new', 'acknowledged', 'escalated') AND i.severity = s.severity
                    AND (\(sites)::text[] IS NULL OR i.site = ANY (\(sites)::text[])) LIMIT 10001) AS open),
                (SELECT count(*) FROM (SELECT 1 FROM esafety.incidents i
                    WHERE i.state = 'new' AND i.due < \(now) AND i.severity = s.severity
                    AND (\(sites)::text[] IS NULL OR i.site = ANY (\(sites)::text[])) LIMIT 10001) AS late)
            FROM unnest(ARRAY['critical', 'high', 'medium', 'low', 'info']) AS s(severity)
            """,
            logger: logger
        )
        var (open, overdue): ([String: Int], [String: Int]) = ([:], [:])
        for try await (severity, n, late) in rows.decode((String, Int, Int).self) {
            (open[severity], overdue[severity]) = (n, late)
        }
        return (open, overdue)
    }

    /// New incidents per day (YYYY-MM-DD of their time) and severity in [since, until).
    public static func perDay(
        _ c: PostgresConnection,
        since: String,
        until: String,
        sites: [String]?,
        logger: Logger
    ) async throws -> [String: [String: Int]] {
        let rows = try await c.query(
            """
            SELECT substr(time, 1, 10), coalesce(severity, 'none'), count(*) FROM esafety.incidents
            WHERE time >= \(since) AND time < \(until)
            AND (\(sites)::text[] IS NULL OR site = ANY (\(sites)::text[])) GROUP BY 1, 2
            """,
            logger: logger
        )
        var out: [String: [String: Int]] = [:]
        for try await (day, severity, n) in rows.decode((String, String, Int).self) {
            out[day, default: [:]][severity] = n
        }
        return out
    }

    /// What each visible site has shipped: no child's record, for IT and the health page.
    public struct Shipping: Sendable {
        public var site: String
        public var lines: Int
        public var lastShipped: String
        public var secondsAgo: Double
        public var tamper: Int
    }

    public static func shipping(_ c: PostgresConnection, logger: Logger) async throws -> [Shipping] {
        let rows = try await c.query(
            """
            SELECT h.site, h.seq, to_char(h.updated AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                extract(epoch FROM now() - h.updated)::float8,
                (SELECT count(*) FROM esafety.tamper t WHERE t.site = h.site)
            FROM esafety.heads h ORDER BY h.site
            """,
            logger: logger
        )
        var out: [Shipping] = []
        for try await (site, lines, last, ago, tamper) in rows.decode((String, Int, String, Double, Int).self) {
            out.append(Shipping(site: site, lines: lines, lastShipped: last, secondsAgo: ago, tamper: tamper))
        }
        return out
    }

    /// Where a follower of the store has read to: each site's place in what it has shipped (its
    /// chain's line number), and when the follower started (the store's clock).
    public struct Place: Sendable {
        public var heads: [String: Int64]
        public var opened: String
    }

    /// The incidents shipped after `place` (nil: start now, return none), in each site's chain
    /// order, whatever their time (a school catching up after an outage ships old ones), at most
    /// `batch` a site per call. A site new to `place` starts at its beginning when it began
    /// shipping after the follower started (a new school), else at its head (a site that has just
    /// come into view). `site`: only that one.
    public static func follow(
        _ c: PostgresConnection,
        from place: Place?,
        site only: String? = nil,
        batch: Int = 200,
        logger: Logger
    ) async throws -> (views: [IncidentView], place: Place) {
        var (heads, now) = try await Self.heads(c, logger: logger)
        if let only { heads = heads.filter { $0.key == only } }
        guard let place else { return ([], Place(heads: heads, opened: now)) }
        var next = heads
        var out: [IncidentView] = []
        for (site, head) in heads.sorted(by: { $0.key < $1.key }) {
            var start = place.heads[site]
            if start == nil, try await firstShipped(c, site: site, since: place.opened, logger: logger) { start = 0 }
            guard let start, head > start else { continue }
            let (views, more) = try await shipped(c, site: site, after: start, limit: batch, logger: logger)
            out += views
            // More than a batch behind: go on from the last one read at the next call.
            if let more { next[site] = more }
        }
        return (out, Place(heads: next, opened: place.opened))
    }

    /// Each visible site's place in what it has shipped (its chain's last line), and the store's
    /// clock now.
    static func heads(
        _ c: PostgresConnection,
        logger: Logger
    ) async throws -> (
        heads: [String: Int64], now: String
    ) {
        var out: [String: Int64] = [:]
        let rows = try await c.query("SELECT site, seq FROM esafety.heads", logger: logger)
        for try await (site, seq) in rows.decode((String, Int64).self) { out[site] = seq }
        var now = ""
        for try await t in try await c.query("SELECT clock_timestamp()::text", logger: logger).decode(String.self) {
            now = t
        }
        return (out, now)
    }

    /// Whether a site's first line reached the store at or after `time` (the store's clock).
    static func firstShipped(
        _ c: PostgresConnection,
        site: String,
        since time: String,
        logger: Logger
    ) async throws -> Bool {
        let rows = try await c.query(
            """
            SELECT received >= \(time)::timestamptz FROM esafety.lines WHERE site = \(site) ORDER BY seq LIMIT 1
            """,
            logger: logger
        )
        for try await after in rows.decode(Bool.self) { return after }
        return false
    }

    /// The incidents a site shipped after line `after` (at most `limit`, in its chain's order),
    /// each with the store's state, and the place of the last one read when `limit` were read
    /// (nil: it read to the end).
    static func shipped(
        _ c: PostgresConnection,
        site: String,
        after: Int64,
        limit: Int = 200,
        logger: Logger
    ) async throws -> (views: [IncidentView], more: Int64?) {
        let rows = try await c.query(
            """
            SELECT l.seq, i.record::text, i.state FROM esafety.lines l
            JOIN esafety.incidents i ON i.site = l.site AND i.id = l.id
            WHERE l.site = \(site) AND l.seq > \(after) AND l.event = 'incident' ORDER BY l.seq LIMIT \(limit)
            """,
            logger: logger
        )
        var (views, last, read): ([IncidentView], Int64, Int) = ([], after, 0)
        for try await (seq, line, state) in rows.decode((Int64, String, String).self) {
            (last, read) = (seq, read + 1)
            guard var v = IncidentView.summary(line: line, state: state, hits: nil, verdict: nil) else { continue }
            v.site = site
            views.append(v)
        }
        return (views, read == limit ? last : nil)
    }

    /// Records a read of children's records (migration 12), before they are shown: one row per
    /// school whose incidents are shown, with their ids. `what`: `list`, `search`, `person`,
    /// `incident`, `live`, `report`; `by`: the person as the tool names them (the database
    /// records its role). Nothing shown, nothing recorded.
    public static func recordView(
        _ c: PostgresConnection,
        what: String,
        by: String,
        shown: [(site: String, id: String)],
        detail: String? = nil,
        logger: Logger
    ) async throws {
        guard !shown.isEmpty else { return }
        // One statement (one commit) for every school shown: a trust's list of 50 spans up to 50.
        try await c.query(
            """
            INSERT INTO esafety.views (by, what, site, ids, detail)
            SELECT \(StoredText.column(by)), \(what), s, array_agg(i ORDER BY n), \(StoredText.column(detail))
            FROM unnest(\(shown.map(\.site))::text[], \(shown.map { StoredText.key($0.id) })::text[])
                WITH ORDINALITY AS u(s, i, n)
            GROUP BY s ORDER BY min(n)
            """,
            logger: logger
        )
    }

    /// A read recorded in `esafety.views` (migration 12).
    public struct View: Sendable {
        public var at: String
        public var account: String
        public var by: String
        public var what: String
        public var site: String
        public var ids: [String]
        public var detail: String
    }

    /// The views recorded (migration 12) that this role may read, newest first.
    public static func views(_ c: PostgresConnection, site: String?, limit: Int, logger: Logger) async throws -> [View]
    {
        let rows = try await c.query(
            """
            SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), account::text, by, what, site, ids,
                coalesce(detail, '')
            FROM esafety.views WHERE (\(site)::text IS NULL OR site = \(site)) ORDER BY n DESC LIMIT \(max(0, limit))
            """,
            logger: logger
        )
        var out: [View] = []
        for try await (at, account, by, what, site, ids, detail) in rows.decode(
            (String, String, String, String, String, [String], String).self
        ) {
            out.append(View(at: at, account: account, by: by, what: what, site: site, ids: ids, detail: detail))
        }
        return out
    }

    /// Narrows every later statement on this connection to these sites (`*`: all the role may
    /// see), as the database applies it (migration 5): the web console's one way to scope a
    /// connection to the logged-in account, set before each use.
    public static func narrow(_ c: PostgresConnection, to sites: String, logger: Logger) async throws {
        try await c.query("SELECT set_config('esafety.sites', \(sites), false)", logger: logger)
    }

    /// One workflow action taken centrally, in one transaction: the incident found and locked,
    /// the transition and the details checked as the tool checks them, the event recorded in
    /// `esafety.actions` (the database records which role wrote it) and the state updated.
    public static func act(
        _ c: PostgresConnection,
        id: String,
        site: String?,
        action: Workflow.Action,
        details: Workflow.Details,
        by: String,
        logger: Logger
    ) async throws -> (site: String, view: IncidentView, state: Workflow.State) {
        try await c.query("BEGIN", logger: logger)
        do {
            let (s, v) = try await find(c, id: id, site: site, lock: true, logger: logger)
            let next: Workflow.State
            switch Workflow.next(v.state, action) {
            case .success(let state): next = state
            case .failure(let refusal):
                throw Refusal(description: "cannot \(action.rawValue) \(v.id): \(refusal.description)")
            }
            var record = ActionRecord(action, id: v.id, time: Clock.rfc3339(Clock.now()), by: by)
            if let refusal = Workflow.fill(&record, action, details) { throw Refusal(description: refusal.description) }
            let line = StoredText.json(LogRecord.action(record).text)
            try await c.query(
                """
                INSERT INTO esafety.actions (site, id, time, action, by, line)
                VALUES (\(s), \(v.id), \(record.time), \(action.rawValue), \(StoredText.column(by)), \(line)::jsonb)
                """,
                logger: logger
            )
            if next != v.state {
                try await c.query(
                    "UPDATE esafety.incidents SET state = \(next.rawValue) WHERE site = \(s) AND id = \(v.id)",
                    logger: logger
                )
            }
            try await c.query("COMMIT", logger: logger)
            return (s, v, next)
        } catch {
            _ = try? await c.query("ROLLBACK", logger: logger)
            throw error
        }
    }
}
