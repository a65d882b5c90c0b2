import ArgumentParser
import Central
import Foundation
import Glibc
import Incidents
import Logging
import PostgresNIO
import Synchronization
import SystemSupport

/// Where the central store is: the URL (no password in it) and the password's file.
struct CentralOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "postgresql://USER@HOST:PORT/DB?sslmode=verify-full&sslrootcert=CA, or "
                + "postgresql://USER@/DB?host=SOCKETDIR.",
            valueName: "url"
        )
    )
    var postgres: String
    @Option(
        name: .customLong("password-file"),
        help: ArgumentHelp(
            "A file (0600) holding the role's password; default: systemd's credential postgres-password.",
            valueName: "file"
        )
    )
    var passwordFile: String?

    func database() throws -> CentralDatabase {
        do { return try CentralDatabase(url: postgres, passwordFile: passwordFile) } catch {
            throw CommandFailure(error.description, status: 2)
        }
    }

    /// `work` on one connection to the store, and what it returns; a failure in the tool's words,
    /// naming the store (status 1).
    func run<T: Sendable>(
        _ work: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) throws -> (T, CentralDatabase) {
        let database = try self.database()
        let logger = centralLogger()
        do {
            let result = try runBlocking {
                try await database.withConnection(logger: logger) { c in try await work(c, logger) }
            }
            return (result, database)
        } catch {
            throw CommandFailure("\(database): \(Forwarder.describe(error))", status: 1)
        }
    }
}

func centralLogger() -> Logger {
    var logger = Logger(label: "esafety") { _ in StreamLogHandler.standardError(label: "esafety") }
    logger.logLevel = .notice
    return logger
}

struct CentralCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "central",
        abstract:
            "A trust's central store in PostgreSQL: init (create or migrate the schema), grant, revoke and roles (who "
            + "may read which sites), list, views (who read which records).",
        subcommands: [
            CentralInitCommand.self, CentralGrantCommand.self, CentralRevokeCommand.self, CentralRolesCommand.self,
            CentralListCommand.self, CentralViewsCommand.self,
        ]
    )
}

struct CentralInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the schema, its roles and row-level security, or apply the migrations not yet applied."
    )
    @OptionGroup var central: CentralOptions

    func run() throws {
        let (applied, database) = try central.run { c, logger in try await CentralSchema.migrate(c, logger: logger) }
        print(
            applied.applied.isEmpty
                ? "\(database): schema version \(applied.current), up to date"
                : "\(database): applied migration(s) \(applied.applied.map(String.init).joined(separator: ", ")); "
                    + "schema version \(applied.current)"
        )
    }
}

struct CentralGrantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract:
            "Give an existing login role its part: a school's, the trust's, a forwarder's, IT's, governors' "
            + "or the web console's.",
        discussion: """
            The role itself is made by the database's administrator (CREATE ROLE name LOGIN PASSWORD ...).
            school and forwarder need --site (repeatable): the sites whose rows the role may read or write.
            console (`esafety web serve --central`): with --site, those sites; without, every site (it is
            made a member of esafety_trust too). The database narrows each of its statements to the
            logged-in account's sites.
            """
    )
    @OptionGroup var central: CentralOptions
    @Option(help: "The login role.") var role: String
    @Option(name: .customLong("as"), help: "school, trust, forwarder, it, governor or console.") var kind: String
    @Option(help: "A site the role may see (school) or write (forwarder); repeatable.") var site: [String] = []

    func validate() throws {
        guard CentralAccess.parts.contains(kind) else {
            throw ValidationError("--as must be school, trust, forwarder, it, governor or console")
        }
        guard CentralAccess.validRole(role) else {
            throw ValidationError("--role: lower-case letters, digits and _ only, 1 to 63")
        }
        if (kind == "school" || kind == "forwarder") && site.isEmpty {
            throw ValidationError("--as \(kind) needs --site")
        }
        for s in site where !Forwarder.validSite(s) { throw ValidationError("--site \(s): a-z, 0-9, '.', '_', '-'") }
    }

    func run() throws {
        let (role, kind, sites) = (self.role, self.kind, self.site)
        _ = try central.run { c, logger in
            try await CentralAccess.grant(c, role: role, part: kind, sites: sites, logger: logger)
        }
        let scope =
            sites.isEmpty ? (kind == "console" ? " for every site" : "") : " for " + sites.joined(separator: ", ")
        print("\(role): \(kind)\(scope)")
    }
}

struct CentralRevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Take access away from a login role: some of its sites (--site), or every part and site it has.",
        discussion: """
            For a DSL who leaves a school, a school that leaves the trust, a forwarder's machine retired. It takes
            effect at the role's next statement, in sessions already open too. The login role itself stays
            (DROP ROLE is the database administrator's); what it recorded (its actions, its views) stays.
            """
    )
    @OptionGroup var central: CentralOptions
    @Option(help: "The login role.") var role: String
    @Option(help: "Only this site out of the role's sites; repeatable. Without it, every part and site.")
    var site: [String] = []

    func validate() throws {
        guard CentralAccess.validRole(role) else {
            throw ValidationError("--role: lower-case letters, digits and _ only, 1 to 63")
        }
        for s in site where !Forwarder.validSite(s) { throw ValidationError("--site \(s): a-z, 0-9, '.', '_', '-'") }
    }

    func run() throws {
        let (role, sites) = (self.role, self.site)
        let (done, _) = try central.run { c, logger in
            try await CentralAccess.revoke(c, role: role, sites: sites.isEmpty ? nil : sites, logger: logger)
        }
        guard done.exists else { throw CommandFailure("no login role \(role) in the store's server", status: 1) }
        if !sites.isEmpty {
            let missing = sites.filter { !done.sites.contains($0) }
            if !done.sites.isEmpty { print("\(role): no longer \(done.sites.joined(separator: ", "))") }
            if !missing.isEmpty {
                throw CommandFailure("\(role) had no site \(missing.joined(separator: ", "))", status: 1)
            }
        } else if done.parts.isEmpty && done.sites.isEmpty {
            print("\(role): had no part in the store")
        } else {
            let parts = done.parts.isEmpty ? "" : " \(done.parts.joined(separator: ", "))"
            let of = done.sites.isEmpty ? "" : " (\(done.sites.joined(separator: ", ")))"
            print("\(role): no longer has a part in the store; taken away:\(parts)\(of)")
        }
    }
}

struct CentralRolesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roles",
        abstract: "Who may read or write what in the central store: each login role with its parts and sites.",
        discussion: """
            Each line: the role, whether it may log in, its parts (school, trust, forwarder, it, governor,
            console) and its sites (every site for trust). Run as the database's administrator.
            With --changes, every grant and revoke since schema 13, newest first (the trust's or IT's role
            may read them too).
            """
    )
    @OptionGroup var central: CentralOptions
    @Flag(help: "Instead, every change of access (grant, revoke), newest first: when, by whom, what.")
    var changes = false
    @Option(help: "With --changes: at most this many.") var limit = 100

    func validate() throws {
        guard limit >= 1 && limit <= 100_000 else { throw ValidationError("--limit: 1 to 100000") }
    }

    func run() throws {
        if changes {
            let limit = self.limit
            let (rows, _) = try central.run { c, logger in
                try await CentralAccess.changes(c, limit: limit, logger: logger)
            }
            for r in rows {
                let scope = r.sites.isEmpty ? "" : " for \(r.sites.joined(separator: ", "))"
                let parts = r.parts.isEmpty ? "sites" : r.parts.joined(separator: ", ")
                print(Terminal.escape("\(r.at) \(r.account) \(r.what) \(r.role): \(parts)\(scope)"))
            }
            if rows.isEmpty { print("no change of access recorded") }
            return
        }
        let (roles, _) = try central.run { c, logger in try await CentralAccess.roles(c, logger: logger) }
        for r in roles {
            let every = r.parts.contains("trust") ? "every site" : ""
            let scope = r.sites.isEmpty ? every : r.sites.joined(separator: ", ")
            let login = r.login ? "" : " (may not log in)"
            let parts = r.parts.isEmpty ? "no part" : r.parts.joined(separator: ", ")
            // Escaped: a role or a site the administrator made by hand may hold anything.
            print(Terminal.escape("\(r.role)\(login): \(parts)" + (scope.isEmpty ? "" : " for \(scope)")))
        }
        if roles.isEmpty { print("no role has a part in the store") }
    }
}

struct CentralListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract:
            "Incidents in the central store, newest first, as the connecting role may see them (row-level security)."
    )
    @OptionGroup var central: CentralOptions
    @Option(help: "Only this site.") var site: String?
    @Flag(help: "Only open incidents.") var open = false
    @Option(help: "At most this many.") var limit = 50

    func run() throws {
        let (site, open, limit) = (self.site, self.open, self.limit)
        let (rows, _) = try central.run { c, logger in
            let result = try await c.query(
                """
                SELECT site, id, time, coalesce(severity, ''), category, grp, person, host, state
                FROM esafety.incidents WHERE (\(site)::text IS NULL OR site = \(site))
                AND (NOT \(open) OR state IN ('new', 'acknowledged', 'escalated'))
                ORDER BY time DESC LIMIT \(limit)
                """,
                logger: logger
            )
            var out: [String] = []
            var shown: [(site: String, id: String)] = []
            for try await (s, id, time, sev, cat, grp, person, host, state) in result.decode(
                (String, String, String, String, String, String, String, String, String).self
            ) {
                out.append(
                    [time, sev.uppercased(), s, grp, person, cat, host, state, id].map(Terminal.escape).joined(
                        separator: "  "
                    )
                )
                shown.append((s, id))
            }
            try await CentralIncidents.recordView(
                c,
                what: "list",
                by: Identity.account(),
                shown: shown,
                logger: logger
            )
            return out
        }
        for r in rows { print(r) }
        FileOutput.stderr("\(rows.count) incident(s)\n")
    }
}

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract:
            "Ship this site's incident log to the trust's central store (PostgreSQL), in order, verifying its chain.",
        discussion: """
            Its own service (esafety-forward.service): esafetyd's sandbox has no network. Resumes from
            the position it saved (--state) after any stop or crash; a batch shipped twice is stored once.
            """
    )
    @OptionGroup var log: LogOption
    @OptionGroup var central: CentralOptions
    @Option(help: "This site's name in the central store (a-z, 0-9, '.', '_', '-').") var site: String
    @Option(
        help: ArgumentHelp(
            "Where the position is kept. Default: forward-SITE.position beside the log.",
            valueName: "file"
        )
    )
    var state: String?
    @Option(
        help: ArgumentHelp("The longest wait between attempts while the store is away, in seconds.", valueName: "s")
    )
    var retryMax = 30.0
    @Flag(help: "Ship what is there, then stop (instead of following the log).") var once = false
    @Option(help: ArgumentHelp("Lines shipped in one transaction, at most.", valueName: "n")) var batch = 500

    func validate() throws {
        guard Forwarder.validSite(site) else { throw ValidationError("--site: a-z, 0-9, '.', '_', '-', 1 to 64") }
        guard retryMax >= 0.1 && retryMax <= 3600 else { throw ValidationError("--retry-max: 0.1 to 3600 seconds") }
        guard batch >= 1 && batch <= 50_000 else { throw ValidationError("--batch: 1 to 50000 lines") }
    }

    func run() throws {
        let resolved = try log.resolve()
        let database = try central.database()
        let folder = resolved.path.lastIndex(of: "/").map { String(resolved.path[..<$0]) } ?? "."
        var settings = Forwarder.Settings(
            logPath: resolved.path,
            site: site,
            positionPath: state ?? "\(folder)/forward-\(site).position"
        )
        settings.maxBackoff = retryMax
        settings.batch = batch
        var logger = Logger(label: "esafety-forward") { _ in StreamLogHandler.standardError(label: "esafety-forward") }
        logger.logLevel = .info
        let forwarder = Forwarder(settings: settings, database: database, logger: logger)
        logger.info("forward: \(resolved.path) as site \(site) to \(database), from line \(forwarder.position.seq + 1)")
        if forwarder.positionUnreadable {
            let what =
                "cannot be read as a position (damaged or edited): shipping the log again from its start; "
                + "the lines the store holds are passed over"
            logger.warning("forward: \(settings.positionPath) \(what)")
        }
        let stopping = Atomic<Bool>(false)
        for sig in [SIGTERM, SIGINT] { signal(sig, SIG_IGN) }
        let sources = [SIGTERM, SIGINT].map { (sig: Int32) -> DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                stopping.store(true, ordering: .relaxed)
                // A batch stuck on a store that stopped answering must not hold the stop: the
                // position is saved only after a commit, so leaving at any moment loses nothing.
                DispatchQueue.global().asyncAfter(deadline: .now() + 5) {
                    FileOutput.stderr(
                        "esafety forward: stopped while a batch was in flight; it is shipped again next time\n"
                    )
                    Glibc.exit(0)
                }
            }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        let once = self.once
        let quiet = logger
        try runBlocking {
            if once {
                // An error ends the run (nothing is retried), in words that hold no record, the
                // connection closed first; the position stays at the last batch committed.
                let c: PostgresConnection
                do { c = try await database.connect(logger: quiet) } catch {
                    throw CommandFailure("\(database): \(Forwarder.describe(error))", status: 1)
                }
                do {
                    try await forwarder.resume(c)
                    while try await forwarder.shipOnce(c) > 0 {}
                } catch {
                    try? await c.close()
                    throw CommandFailure(
                        "\(database): \(Forwarder.describe(error)); stopped at line \(forwarder.position.seq)",
                        status: 1
                    )
                }
                try? await c.close()
            } else {
                await forwarder.run { stopping.load(ordering: .relaxed) }
            }
        }
        logger.info("forward: stopped at line \(forwarder.position.seq)")
    }
}

struct CentralViewsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "views",
        abstract: "Who read which incidents through the tools on the central store, newest first.",
        discussion: """
            Each line: when, the database role and the person as the tool named them, what they read (list,
            search, person, incident, live, report), the school, how many incidents and their ids. A school's
            role sees the reads of its own site's records, the trust's every site's.
            """
    )
    @OptionGroup var central: CentralOptions
    @Option(help: "Only this site.") var site: String?
    @Option(help: "At most this many.") var limit = 50

    func run() throws {
        let (site, limit) = (self.site, self.limit)
        let (rows, _) = try central.run { c, logger in
            try await CentralIncidents.views(c, site: site, limit: limit, logger: logger).map { v in
                [v.at, v.account, v.by, v.what, v.site, "\(v.ids.count)", v.detail, v.ids.joined(separator: ",")]
                    .map(Terminal.escape).joined(separator: "  ")
            }
        }
        for r in rows { print(r) }
        FileOutput.stderr("\(rows.count) view(s)\n")
    }
}
