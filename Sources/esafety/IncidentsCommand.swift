import ArgumentParser
import Central
import Classifier
import Daemon
import Foundation
import Glibc
import IncidentIndex
import Incidents
import LogFormats
import SystemSupport

struct IncidentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incidents",
        abstract:
            "Review and act on e-safety incidents: tail, list, show; ack, note, assign, escalate, resolve, "
            + "false-positive, reopen.",
        subcommands: [
            TailCommand.self, ListCommand.self, ShowCommand.self, AckCommand.self, NoteCommand.self, AssignCommand.self,
            EscalateCommand.self, ResolveCommand.self, FalsePositiveCommand.self, ReopenIncidentCommand.self,
        ]
    )
}

struct LogOption: ParsableArguments {
    @Option(help: ArgumentHelp("The incident log. Default: the configured one.", valueName: "file"))
    var log: String?

    @Option(help: ArgumentHelp("esafetyd's configuration file, to find the incident log.", valueName: "file"))
    var config: String?

    /// Reads the configuration once: the log's path and the group that may use it.
    func resolve() throws -> ResolvedLog {
        let file =
            config ?? (FileSystem.exists(DaemonConfiguration.defaultPath) ? DaemonConfiguration.defaultPath : nil)
        var configuration = DaemonConfiguration.forTools()
        if let file {
            do { configuration = try DaemonConfiguration.load(path: file) } catch {
                throw CommandFailure(error.description, status: 2)
            }
        }
        return ResolvedLog(configuration: configuration, path: log ?? configuration.incidentLog)
    }
}

/// `--central URL` and its password's file: the trust's central store, read (and acted on) as
/// that database role may, instead of this school's log. The incident commands, the report and
/// the console take it.
struct CentralStoreOption: ParsableArguments {
    @Option(
        name: .customLong("central"),
        help: ArgumentHelp(
            "The trust's central store (postgresql://ROLE@HOST/DB?sslmode=verify-full&sslrootcert=CA): "
                + "what this role may see, instead of this school's log.",
            valueName: "url"
        )
    )
    var url: String?
    @Option(
        name: .customLong("password-file"),
        help: ArgumentHelp(
            "With --central: a file (0600) holding the role's password (default: systemd's credential "
                + "postgres-password).",
            valueName: "file"
        )
    )
    var passwordFile: String?

    /// Nil without --central.
    func database() throws -> CentralDatabase? {
        guard let url else {
            if passwordFile != nil { throw CommandFailure("--password-file goes with --central", status: 2) }
            return nil
        }
        do { return try CentralDatabase(url: url, passwordFile: passwordFile) } catch {
            throw CommandFailure(error.description, status: 2)
        }
    }
}

/// The central store for the incident commands and the report, and `--site` to keep to one.
struct CentralSource: ParsableArguments {
    @OptionGroup var store: CentralStoreOption
    @Option(help: "With --central: only this site.") var site: String?

    /// Nil without --central.
    func database() throws -> CentralDatabase? {
        if store.url == nil && site != nil { throw CommandFailure("--site goes with --central", status: 2) }
        return try store.database()
    }

    /// Runs `work` on one connection to the store; its refusals and errors in the tool's words.
    func run<T: Sendable>(
        _ database: CentralDatabase,
        _ work: @escaping @Sendable (PostgresConnectionBox) async throws -> T
    ) throws -> T {
        let logger = centralLogger()
        do {
            return try runBlocking {
                try await database.withConnection(logger: logger) { c in
                    try await work(PostgresConnectionBox(connection: c, logger: logger))
                }
            }
        } catch let refusal as CentralIncidents.Refusal {
            throw CommandFailure(refusal.description, status: 1)
        } catch {
            throw CommandFailure("\(database): \(Forwarder.describe(error))", status: 1)
        }
    }
}

extension PostgresConnectionBox {
    /// `shown`, once its reading is recorded centrally (`esafety.views`, migration 12) as the
    /// invoking person's: a view that cannot be recorded is not shown.
    func recorded(
        _ what: String,
        _ shown: [(site: String, view: IncidentView)],
        detail: String? = nil
    ) async throws -> [(site: String, view: IncidentView)] {
        try await CentralIncidents.recordView(
            connection,
            what: what,
            by: Identity.account(),
            shown: shown.map { ($0.site, $0.view.id) },
            detail: detail,
            logger: logger
        )
        return shown
    }
}

struct ResolvedLog {
    let configuration: DaemonConfiguration
    let path: String

    /// The group whose members may read incidents and act on them.
    var group: String { configuration.incidentLogGroup ?? "esafety-admin" }

    /// A full read keeps every incident of the log in memory, about four times the log's size
    /// (5.2 GB and 39 s for the 1.2 GB log of a million incidents): beyond this size the tool
    /// says why it cannot answer rather than try (ten million, a 12 GB log, would not fit).
    static let fullReadLimit: Int64 = 256_000_000
    /// How long a tool that may only read the index waits for esafetyd to catch up.
    static let catchUpWait = 3.0

    /// The log's index when it can answer (`IncidentIndex.answering`: brought up to date here
    /// when this account may write it and it is little behind, else waited for). The tool never
    /// makes one (esafetyd does, or `esafety index rebuild`): a log copied somewhere to be looked
    /// at gets no file beside it. Nil when there is none to trust: then the log is read in
    /// full, if it is small enough (`load`).
    func index() -> IncidentIndex? {
        guard FileSystem.exists(IncidentIndex.path(forLog: path)) else { return nil }
        return IncidentIndex.answering(logPath: path, wait: Self.catchUpWait)?.index
    }

    /// The incidents a query selects, newest first: from the index, or a full read.
    func query(_ q: IncidentIndex.Query) throws -> [IncidentView] {
        try requireReader()
        if let index = index(), let found = try? index.incidents(q) { return found }
        return try fullRead(q)
    }

    /// What a list prints of the incidents a query selects, newest first: from the index's
    /// columns, or a full read.
    func summaries(_ q: IncidentIndex.Query) throws -> [IncidentSummary] {
        try requireReader()
        if let index = index(), let found = try? index.summaries(q) { return found }
        return try fullRead(q).map(IncidentSummary.init)
    }

    /// Refuses, through sudo, a user outside the log's group (without sudo the file's
    /// permissions decide).
    func requireReader() throws {
        if let refusal = Identity.requireMember(of: group, logOwner: Identity.owner(of: path)) {
            throw CommandFailure(refusal.description, status: refusal.status)
        }
    }

    /// A query answered by reading the whole log, as the index answers it.
    func fullRead(_ q: IncidentIndex.Query) throws -> [IncidentView] {
        let search = q.text.map(IncidentIndex.Search.init)
        var views = try load(context: false).filter { v in
            if q.open && !v.isOpen { return false }
            if let now = q.overdueAt, !v.overdue(now: now) { return false }
            if let s = q.severity, v.severity?.description != s { return false }
            if let c = q.category, v.category != c { return false }
            if let g = q.group, v.group != g { return false }
            if let u = q.user, v.record.user != u { return false }
            if let c = q.client, v.record.client != c { return false }
            if let p = q.person, (v.record.user ?? v.record.client) != p { return false }
            if let since = q.since, v.time < since { return false }
            if let until = q.until, v.time >= until { return false }
            if let search {
                let text = IncidentIndex.searchText(
                    host: v.host,
                    url: v.record.url,
                    searchTerm: v.record.searchTerm,
                    notes: v.actions.compactMap(\.note)
                )
                guard search.matches(text) else { return false }
            }
            return true
        }
        views = q.lastWritten ? views.reversed() : views.sorted { $0.time > $1.time }
        return q.limit.map { Array(views.prefix($0)) } ?? views
    }

    /// What a report of [since, until) reads: from the index when there is one to trust (the
    /// period's incidents and those that may have been open at its end), else a full read.
    func reportViews(since: Double, until: Double) throws -> [IncidentView] {
        try requireReader()
        let indexed = try? index()?.incidents(reportFrom: Clock.rfc3339(since), until: Clock.rfc3339(until))
        return try indexed ?? load(context: false)
    }

    /// The incident an id (or a prefix of 8 or more characters) names.
    func find(_ id: String) throws -> IncidentView {
        try requireReader()
        let candidates = (try? index()?.incidents(idOrPrefix: id)) ?? nil
        switch IncidentStore.find(id, in: try candidates ?? load()) {
        case .success(let view): return view
        case .failure(let refusal): throw CommandFailure(refusal.description, status: 1)
        }
    }

    /// Every incident, from a full read of the log (`context`: false, a list's or a report's
    /// read, leaves the context lines unread).
    func load(context: Bool = true) throws -> [IncidentView] {
        try requireReader()
        try requireFullRead()
        do { return try IncidentStore.load(path, group: group, context: context) } catch {
            throw CommandFailure(error.description, status: 1)
        }
    }

    /// Refuses a full read of a log too big for one (`fullReadLimit`), saying how far its index
    /// has come or how to make one; tells on standard error when the log is read in full
    /// although it has an index (one behind it).
    func requireFullRead() throws {
        let size = IncidentIndex.logBytes(path)
        let index = IncidentIndex.path(forLog: path)
        let mb = IncidentIndex.megabytes
        let memory = String(format: "about %.1f GB of memory", Double(size) * 4.3 / 1_073_741_824)
        if size > Self.fullReadLimit {
            guard FileSystem.exists(index) else {
                throw CommandFailure(
                    "\(path): no incident index beside this log, and reading it in full (\(mb(size))) would need "
                        + "\(memory): `esafety index rebuild --log \(path)` makes one (as an account that may "
                        + "write beside the log)",
                    status: 1
                )
            }
            throw CommandFailure(
                IncidentIndex.behind(logPath: path) + ". Reading the log in full instead would need \(memory).",
                status: 75
            )
        }
        if FileSystem.exists(index) {
            FileHandle.standardError.write(
                Data("esafety: the incident index is behind the log; reading the log in full (\(mb(size)))\n".utf8)
            )
        }
    }
}

struct TailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "The latest incidents, one line each; -f follows the log (or, with --central, what the sites ship)."
    )

    @OptionGroup var log: LogOption
    @Option(name: .short, help: "How many to show.") var n = 10
    @Flag(
        name: .short,
        help: "Follow the log as incidents arrive (with --central: as each site ships them, whatever their time)."
    )
    var f = false
    @Flag(help: "Pass the records through as JSON lines.") var json = false
    @OptionGroup var central: CentralSource

    func run() throws {
        if let database = try central.database() {
            var filter = CentralIncidents.Filter()
            (filter.site, filter.limit) = (central.site, n)
            let (chosen, follow, json, site) = (filter, f, json, central.site)
            let color = !json && isatty(1) != 0
            @Sendable func show(_ site: String, _ v: IncidentView) {
                print(json ? v.line : "\(Terminal.escape(site))  \(IncidentStore.line(v, color: color))")
            }
            try central.run(database) { box in
                // Where the sites have shipped to, before the newest are read: nothing falls between
                // (one shipped in that moment may be shown twice).
                var place = try await CentralIncidents.follow(box.connection, from: nil, site: site, logger: box.logger)
                    .place
                let latest = try await box.recorded(
                    "list",
                    try await CentralIncidents.list(box.connection, chosen, logger: box.logger)
                )
                for (site, v) in latest.reversed() { show(site, v) }
                fflush(nil)
                while follow {
                    try await Task.sleep(for: .seconds(1))
                    let (views, next) = try await CentralIncidents.follow(
                        box.connection,
                        from: place,
                        site: site,
                        logger: box.logger
                    )
                    place = next
                    for (site, v) in try await box.recorded("live", views.map { ($0.site ?? "", $0) }) { show(site, v) }
                    fflush(nil)
                }
            }
            return
        }
        let log = try self.log.resolve()
        let path = log.path
        var q = IncidentIndex.Query()
        q.limit = n
        q.lastWritten = true
        let color = !json && isatty(1) != 0
        if json {
            for v in try log.query(q).reversed() { print(v.line) }
        } else {
            Output.lines(try log.summaries(q).reversed().lazy.map { IncidentStore.line($0, color: color) })
        }
        guard f else { return }
        var follower = IncidentFollower(path: path)
        while true {
            usleep(300_000)
            for v in follower.poll() { print(json ? v.line : IncidentStore.line(v, color: color)) }
            fflush(nil)
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Incidents matching filters, newest first."
    )

    @OptionGroup var log: LogOption
    @Flag(help: "Only incidents not resolved or false-positive.") var open = false
    @Flag(help: "Only incidents past their due time without acknowledgement.") var overdue = false
    @Option(help: "Only this severity.") var severity: Severity?
    @Option(help: "Only this category.") var category: String?
    @Option(help: "Only this group.") var group: String?
    @Option(help: "Only this user.") var user: String?
    @Option(help: "Only this client address.") var client: String?
    @Option(help: "From this time (RFC 3339 or YYYY-MM-DD, UTC).") var since: String?
    @Option(help: "Before this time (RFC 3339 or YYYY-MM-DD, UTC).") var until: String?
    @Option(help: "A pupil's history: the user, or the address where the log names no user.") var person: String?
    @Option(help: "Words in the site, the URL, the search term or a note (the last word may be its start).")
    var search: String?
    @Option(help: "At most this many, the newest.") var limit: Int?
    @Flag(help: "The records as JSON lines.") var json = false

    @OptionGroup var central: CentralSource

    func run() throws {
        if let database = try central.database() {
            var f = CentralIncidents.Filter()
            (f.site, f.open, f.severity, f.category, f.person) = (
                central.site, open, severity?.description, category, person
            )
            f.overdueAt = overdue ? Clock.rfc3339(Date().timeIntervalSince1970) : nil
            (f.group, f.user, f.client, f.since, f.until, f.text) = (group, user, client, since, until, search)
            f.limit = limit ?? 50
            let filter = f
            let what = person != nil ? "person" : search != nil ? "search" : "list"
            let found = try central.run(database) { box in
                try await box.recorded(
                    what,
                    try await CentralIncidents.list(box.connection, filter, logger: box.logger)
                )
            }
            let color = !json && isatty(1) != 0
            for (site, v) in found {
                print(json ? v.line : "\(Terminal.escape(site))  \(IncidentStore.line(v, color: color))")
            }
            if !json { FileHandle.standardError.write(Data("\(found.count) incident(s)\n".utf8)) }
            return
        }
        var q = IncidentIndex.Query()
        q.open = open
        q.overdueAt = overdue ? Clock.rfc3339(Date().timeIntervalSince1970) : nil
        q.severity = severity?.description
        (q.category, q.group, q.user, q.client, q.person) = (category, group, user, client, person)
        (q.since, q.until, q.text, q.limit) = (since, until, search, limit)
        if json {
            for v in try log.resolve().query(q) { print(v.line) }
            return
        }
        let found = try log.resolve().summaries(q)
        let color = isatty(1) != 0
        Output.lines(found.lazy.map { IncidentStore.line($0, color: color) })
        FileHandle.standardError.write(Data("\(found.count) incident(s)\n".utf8))
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "One incident: the record, the rule that matched, and its history."
    )

    @OptionGroup var log: LogOption
    @Argument(help: "The incident id, or at least its first 8 characters.") var id: String

    @OptionGroup var central: CentralSource

    func run() throws {
        if let database = try central.database() {
            let (id, site) = (self.id, central.site)
            let (s, v) = try central.run(database) { box in
                let (s, v) = try await CentralIncidents.find(box.connection, id: id, site: site, logger: box.logger)
                _ = try await box.recorded("incident", [(s, v)])
                return (s, v)
            }
            print("site \(Terminal.escape(s))")
            print(IncidentStore.line(v, color: isatty(1) != 0))
            print(IncidentDisplay.details(v), terminator: "")
            return
        }
        let v = try log.resolve().find(id)
        print(IncidentStore.line(v, color: isatty(1) != 0))
        print(IncidentDisplay.details(v), terminator: "")
    }
}

/// What every workflow action takes: the log, who acts, and the incident.
struct ActOptions: ParsableArguments {
    @OptionGroup var log: LogOption
    @Option(
        help: ArgumentHelp(
            "Who is acting, as recorded. Default: the invoking user (SUDO_USER through sudo).",
            valueName: "name"
        )
    )
    var by: String?
    @Argument(help: "The incident id (from `esafety incidents list`), or at least its first 8 characters.") var id:
        String
    @OptionGroup var central: CentralSource

    /// Appends the event for `action` after checking the transition and its details against
    /// the incident as it stands in the log (read under the log's lock).
    func act(
        _ action: Workflow.Action,
        _ details: Workflow.Details = Workflow.Details(),
        after: ((IncidentView) -> Void)? = nil
    ) throws {
        if let database = try central.database() {
            let who = by ?? Identity.account()
            let (id, site) = (self.id, central.site)
            let (s, v, state) = try central.run(database) { box in
                try await CentralIncidents.act(
                    box.connection,
                    id: id,
                    site: site,
                    action: action,
                    details: details,
                    by: who,
                    logger: box.logger
                )
            }
            print(
                "\(Terminal.escape(v.id)) (\(Terminal.escape(s))): \(action.rawValue) by \(Terminal.escape(who)), "
                    + "recorded centrally; now \(state.rawValue)"
            )
            after?(v)
            return
        }
        let log = try self.log.resolve()
        let owner = Identity.owner(of: log.path)
        if let refusal = Identity.requireMember(of: log.group, logOwner: owner) {
            throw CommandFailure(refusal.description, status: refusal.status)
        }
        let account = Identity.account(logOwner: owner)
        let who = by ?? account
        let id = self.id
        // Without an index to find it in, the incident is found by a full read, if the log is small enough.
        if log.index() == nil { try log.requireFullRead() }
        do {
            let (v, state) = try IncidentLog.act(
                path: log.path,
                group: log.group,
                load: { try? log.index()?.incidents(idOrPrefix: id) },
                id: id,
                action: action,
                details: details,
                by: who,
                account: by != nil && by != account ? account : nil
            )
            print("\(Terminal.escape(v.id)): \(action.rawValue) by \(Terminal.escape(who)); now \(state.rawValue)")
            after?(v)
        } catch {
            throw CommandFailure(error.description, status: error.status)
        }
    }
}

struct AckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ack",
        abstract: "Acknowledge an incident: someone has it in hand."
    )
    @OptionGroup var options: ActOptions
    func run() throws { try options.act(.ack) }
}

struct NoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "note",
        abstract: "Add a note to an incident's record."
    )
    @OptionGroup var options: ActOptions
    @Argument(help: "The note.") var text: String
    func validate() throws {
        if text.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("the note is empty") }
    }
    func run() throws { try options.act(.note, Workflow.Details(text: text)) }
}

struct AssignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "assign", abstract: "Assign an incident to a person.")
    @OptionGroup var options: ActOptions
    @Option(help: "Who is to deal with it.") var to: String
    func run() throws { try options.act(.assign, Workflow.Details(to: to)) }
}

struct EscalateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "escalate",
        abstract:
            "Escalate an incident to a role: dsl, deputy-dsl, counsellor, headteacher, it, or a referral to "
            + "social-care or police."
    )
    @OptionGroup var options: ActOptions
    /// A role is matched loosely ("Deputy DSL", "deputy-dsl"), so it is a validated string.
    @Option(help: "The role: dsl, deputy-dsl, counsellor, headteacher, it, social-care (referral), police (referral).")
    var to: String
    func validate() throws {
        guard let role = Workflow.role(to) else {
            throw ValidationError("unknown role '\(to)'; one of: \(Workflow.roles.map(\.key).joined(separator: ", "))")
        }
        if role.referral, (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("a referral to \(role.name) needs --reason: the record must say why")
        }
    }
    @Option(help: "Why, for the record.") var reason: String?
    func run() throws {
        try options.act(.escalate, Workflow.Details(to: to, reason: reason))
    }
}

struct ResolveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Close an incident with its outcome and the action taken."
    )
    @OptionGroup var options: ActOptions
    @Option(help: "How it ended.") var outcome: Workflow.Outcome
    @Option(help: "What was done (closing needs a reason).") var action: String
    func validate() throws {
        if action.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--action must say what was done")
        }
    }
    func run() throws {
        try options.act(.resolve, Workflow.Details(outcome: outcome.rawValue, action: action))
    }
}

struct FalsePositiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "false-positive",
        abstract:
            "Close an incident as a false positive; prints the allowlist line that would stop it (it writes no list)."
    )
    @OptionGroup var options: ActOptions
    @Option(help: "Why it is a false positive (closing needs a reason).") var reason: String
    func validate() throws {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
    }
    func run() throws {
        try options.act(.falsePositive, Workflow.Details(reason: reason)) { v in
            if v.record.rule.locked {
                print(
                    "\(Terminal.escape(v.category)) is a locked list: nothing may suppress it. If the entry is "
                        + "wrong, report it to the list's publisher."
                )
            } else if let (file, line) = Workflow.allowlistLine(for: v) {
                print(
                    "To stop this site raising incidents, add this line to <lists>/\(file) and reload (esafety reload):"
                )
                print("  \(Terminal.escape(line))")
            }
        }
    }
}

struct ReopenIncidentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reopen",
        abstract: "Reopen a resolved or false-positive incident."
    )
    @OptionGroup var options: ActOptions
    @Option(help: "Why it is reopened.") var reason: String
    func run() throws { try options.act(.reopen, Workflow.Details(reason: reason)) }
}
