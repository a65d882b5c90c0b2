import Central
import IncidentIndex
import Incidents
import Logging
import PostgresNIO

/// A trust's central store as the console's desk: what the console's database role may see
/// (its school mapping, or every site as the trust's), narrowed by the database to the
/// logged-in account's sites (`CentralIncidents.narrow`) before each use of a connection, so
/// that an account's scope holds even where a query forgets a filter.
public final class CentralDesk: Desk {
    let database: CentralDatabase
    let logger: Logger
    let pool: Pool
    /// Seconds a statement may run before PostgreSQL stops it (a search for a rare word reads
    /// every row a trust's DSL may see: 75 s at ten million): the page says so, and how to narrow.
    let timeout: Double

    public init(database: CentralDatabase, timeout: Double = 15, logger: Logger) {
        (self.database, self.timeout, self.logger) = (database, timeout, logger)
        pool = Pool(database: database, timeout: timeout, logger: logger)
    }

    /// Connections kept open between requests (at most `keep`); more are opened while many
    /// requests run at once, and closed when they are done.
    actor Pool {
        let database: CentralDatabase
        let logger: Logger
        let timeout: Double
        var idle: [PostgresConnection] = []
        let keep = 4
        init(database: CentralDatabase, timeout: Double, logger: Logger) {
            (self.database, self.timeout, self.logger) = (database, timeout, logger)
        }

        func take() async throws -> PostgresConnection {
            while let c = idle.popLast() { if !c.isClosed { return c } }
            let c = try await database.connect(logger: logger)
            try await c.query(
                PostgresQuery(unsafeSQL: "SET statement_timeout = \(max(1, Int(timeout * 1000)))"),
                logger: logger
            )
            return c
        }

        func give(_ c: PostgresConnection) async {
            if idle.count < keep && !c.isClosed { idle.append(c) } else { try? await c.close() }
        }
    }

    /// Runs `body` on a connection narrowed to the scope. A refusal (an unknown id, a workflow
    /// rule) leaves the connection usable; any other error closes it.
    func scoped<T: Sendable>(
        _ scope: Scope,
        _ body: (PostgresConnection) async throws -> T
    ) async throws(DeskFailure) -> T {
        let c: PostgresConnection
        do { c = try await pool.take() } catch {
            throw DeskFailure("\(database): \(Forwarder.describe(error))", status: 2)
        }
        do {
            try await CentralIncidents.narrow(c, to: scope.narrowing, logger: logger)
            let result = try await body(c)
            await pool.give(c)
            return result
        } catch let refusal as CentralIncidents.Refusal {
            await pool.give(c)
            throw DeskFailure(refusal.description, status: 1)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "57014" {
            await pool.give(c)
            let seconds = timeout >= 1 ? "\(Int(timeout)) s" : "\(Int(timeout * 1000)) ms"
            logger.notice("console: a question to the trust's store ran past \(seconds) and was stopped")
            throw DeskFailure(
                "The trust's store took more than \(seconds) to answer, so the question was stopped. Narrow it: "
                    + "one school (the School switcher), dates, or more words.",
                // Not a refusal: the incident page must say the store was slow, not that there is
                // no such incident (`incident(_:site:_:)` reads a refusal as "none").
                status: 2
            )
        } catch {
            try? await c.close()
            throw DeskFailure("\(database): \(Forwarder.describe(error))", status: 2)
        }
    }

    public func sites(_ scope: Scope) async throws(DeskFailure) -> [String] {
        if !scope.sites.contains("*") { return scope.sites }
        let logger = self.logger
        return try await scoped(Scope(sites: ["*"])) { c in
            var out: [String] = []
            let rows = try await c.query("SELECT site FROM esafety.heads ORDER BY site", logger: logger)
            for try await site in rows.decode(String.self) { out.append(site) }
            return out
        }
    }

    public func incidents(
        _ q: IncidentIndex.Query,
        site: String?,
        _ scope: Scope
    ) async throws(DeskFailure) -> [IncidentView] {
        var f = CentralIncidents.Filter()
        // One site by name (`site = X`), so that PostgreSQL reads its indexes in time order.
        (f.site, f.sites) = (site, scope.named)
        if site == nil, let only = scope.named, only.count == 1 { (f.site, f.sites) = (only[0], nil) }
        (f.open, f.state, f.overdueAt, f.severity, f.category) = (q.open, q.state, q.overdueAt, q.severity, q.category)
        (f.group, f.user, f.client, f.person) = (q.group, q.user, q.client, q.person)
        (f.since, f.until, f.text) = (q.since, q.until, q.text)
        f.limit = q.limit ?? 10_000
        let (filter, logger) = (f, self.logger)
        return try await scoped(scope) { c in try await CentralIncidents.list(c, filter, logger: logger).map(\.view) }
    }

    public func recordViews(
        what: String,
        by: String,
        shown: [IncidentView],
        _ scope: Scope
    ) async throws(DeskFailure) {
        guard !shown.isEmpty else { return }
        let (logger, rows) = (self.logger, shown.map { (site: $0.site ?? "", id: $0.id) })
        try await scoped(scope) { c in
            try await CentralIncidents.recordView(c, what: what, by: by, shown: rows, logger: logger)
        }
    }

    public func incident(_ id: String, site: String?, _ scope: Scope) async throws(DeskFailure) -> IncidentView? {
        let logger = self.logger
        do {
            let v = try await scoped(scope) { c in
                try await CentralIncidents.find(c, id: id, site: site, logger: logger)
            }
            return v.view.id == id ? v.view : nil
        } catch  where error.status == 1 {
            return nil
        }
    }

    public func act(
        _ action: Workflow.Action,
        _ incident: IncidentView,
        details: Workflow.Details,
        by: String,
        _ scope: Scope
    ) async throws(DeskFailure) -> Workflow.State {
        let (logger, id, site) = (self.logger, incident.id, incident.site)
        return try await scoped(scope) { c in
            try await CentralIncidents.act(
                c,
                id: id,
                site: site,
                action: action,
                details: details,
                by: by,
                logger: logger
            ).state
        }
    }

    public func dashboard(
        now: String,
        since: String,
        until: String,
        _ scope: Scope
    ) async throws(DeskFailure) -> DashboardCounts {
        let logger = self.logger
        return try await scoped(scope) { c in
            let counts = try await CentralIncidents.openCounts(c, now: now, sites: scope.named, logger: logger)
            let days = try await CentralIncidents.perDay(
                c,
                since: since,
                until: until,
                sites: scope.named,
                logger: logger
            )
            return DashboardCounts(open: counts.open, overdue: counts.overdue, days: days)
        }
    }

    public func period(since: String, until: String, _ scope: Scope) async throws(DeskFailure) -> [IncidentView] {
        let logger = self.logger
        return try await scoped(scope) { c in
            try await CentralIncidents.period(c, site: nil, since: since, until: until, logger: logger)
        }
    }

    /// What each site shipped since the cursor's place, in each site's chain order
    /// (`CentralIncidents.follow`): an incident shipped late, with an old time, arrives too.
    public func arrivals(
        after cursor: Arrivals?,
        _ scope: Scope
    ) async throws(DeskFailure) -> ([IncidentView], Arrivals) {
        let logger = self.logger
        var place: CentralIncidents.Place?
        if case .shipped(let p)? = cursor { place = p }
        let from = place
        return try await scoped(scope) { c in
            let (views, next) = try await CentralIncidents.follow(c, from: from, logger: logger)
            return (views, .shipped(next))
        }
    }

    public func shipping(_ scope: Scope) async throws(DeskFailure) -> [CentralIncidents.Shipping]? {
        let logger = self.logger
        return try await scoped(scope) { c in try await CentralIncidents.shipping(c, logger: logger) }
    }
}
