import ArgumentParser
import Classifier
import Daemon
import Foundation
import Incidents
import LogFormats

import Glibc
import SystemSupport

struct IncidentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incidents",
        abstract: "Review and act on e-safety incidents: tail, list, show; ack, note, assign, escalate, resolve, false-positive, reopen.",
        subcommands: [TailCommand.self, ListCommand.self, ShowCommand.self, AckCommand.self, NoteCommand.self, AssignCommand.self,
                      EscalateCommand.self, ResolveCommand.self, FalsePositiveCommand.self, ReopenIncidentCommand.self]
    )
}

struct LogOption: ParsableArguments {
    @Option(help: ArgumentHelp("The incident log. Default: the configured one.", valueName: "file"))
    var log: String?

    @Option(help: ArgumentHelp("esafetyd's configuration file, to find the incident log.", valueName: "file"))
    var config: String?

    /// Reads the configuration once: the log's path and the group that may use it.
    func resolve() -> ResolvedLog {
        let file = config ?? (FileSystem.exists(DaemonConfiguration.defaultPath) ? DaemonConfiguration.defaultPath : nil)
        var configuration = DaemonConfiguration()
        if let file {
            do { configuration = try DaemonConfiguration.load(path: file) } catch { CLI.fail(error.description, status: 2) }
        }
        return ResolvedLog(configuration: configuration, path: log ?? configuration.incidentLog)
    }
}

struct ResolvedLog {
    let configuration: DaemonConfiguration
    let path: String

    /// The group whose members may read incidents and act on them.
    var group: String { configuration.incidentLogGroup ?? "esafety-admin" }

    func load() -> [IncidentView] {
        Identity.requireMember(of: group)
        do { return try IncidentStore.load(path, group: group) } catch { CLI.fail(error.description, status: 1) }
    }
}

struct TailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tail", abstract: "The latest incidents, one line each; -f follows the log.")

    @OptionGroup var log: LogOption
    @Option(name: .short, help: "How many to show.") var n = 10
    @Flag(name: .short, help: "Follow the log as incidents arrive.") var f = false
    @Flag(help: "Pass the records through as JSON lines.") var json = false

    func run() throws {
        let log = self.log.resolve()
        let path = log.path
        let views = log.load()
        let color = !json && isatty(1) != 0
        for v in views.suffix(n) { print(json ? v.line : IncidentStore.line(v, color: color)) }
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
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Incidents matching filters, newest first.")

    @OptionGroup var log: LogOption
    @Flag(help: "Only incidents not resolved or false-positive.") var open = false
    @Flag(help: "Only incidents past their due time without acknowledgement.") var overdue = false
    @Option(help: "Only this severity (critical, high, medium, low).") var severity: String?
    @Option(help: "Only this category.") var category: String?
    @Option(help: "Only this group.") var group: String?
    @Option(help: "Only this user.") var user: String?
    @Option(help: "Only this client address.") var client: String?
    @Option(help: "From this time (RFC 3339 or YYYY-MM-DD, UTC).") var since: String?
    @Option(help: "Before this time (RFC 3339 or YYYY-MM-DD, UTC).") var until: String?
    @Flag(help: "The records as JSON lines.") var json = false

    func validate() throws {
        if let severity, Severity(name: severity) == nil { throw ValidationError("unknown severity '\(severity)'") }
    }

    func run() throws {
        let now = Clock.rfc3339(Date().timeIntervalSince1970)
        let views = log.resolve().load().filter { v in
            if open && !v.isOpen { return false }
            if overdue && !v.overdue(now: now) { return false }
            if let severity, v.severity?.description != severity.lowercased() { return false }
            if let category, v.category != category { return false }
            if let group, v.group != group { return false }
            if let user, v.record.user != user { return false }
            if let client, v.record.client != client { return false }
            if let since, v.time < since { return false }
            if let until, v.time >= until { return false }
            return true
        }.sorted { $0.time > $1.time }
        let color = !json && isatty(1) != 0
        for v in views { print(json ? v.line : IncidentStore.line(v, color: color)) }
        if !json { FileHandle.standardError.write(Data("\(views.count) incident(s)\n".utf8)) }
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One incident: the record, the rule that matched, and its history.")

    @OptionGroup var log: LogOption
    @Argument(help: "The incident id.") var id: String

    func run() throws {
        guard let v = log.resolve().load().first(where: { $0.id == id }) else { CLI.fail("no incident \(id)", status: 1) }
        print(IncidentStore.line(v, color: isatty(1) != 0))
        print(IncidentDisplay.details(v), terminator: "")
    }
}

/// Who is acting: the invoking account (the sudo user when run through sudo), and the
/// check that they belong to the group that may see incidents.
enum Identity {
    static func name(of uid: uid_t) -> String {
        if let pw = getpwuid(uid), let n = pw.pointee.pw_name { return String(cString: n) }
        return "uid \(uid)"
    }

    /// The person at the keyboard: `SUDO_USER` when root through sudo, else the account.
    static var account: String {
        if getuid() == 0, let s = ProcessInfo.processInfo.environment["SUDO_USER"], !s.isEmpty { return s }
        return name(of: getuid())
    }

    /// Through sudo, the sudo user must be in `group` (root itself may always act); without
    /// sudo, the file's permissions decide.
    static func requireMember(of group: String) {
        guard getuid() == 0, let user = ProcessInfo.processInfo.environment["SUDO_USER"], !user.isEmpty, user != "root" else { return }
        guard let gr = getgrnam(group) else {
            CLI.fail("the group \(group), whose members may see and act on incidents, does not exist on this machine (systemd-sysusers creates it; or set incidents.log_group)", status: 2)
        }
        let gid = gr.pointee.gr_gid
        guard let pw = getpwnam(user) else { CLI.fail("\(user) (SUDO_USER) is not an account on this machine", status: 2) }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: 64)
        if getgrouplist(user, pw.pointee.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, pw.pointee.pw_gid, &groups, &count)
        }
        guard groups.prefix(Int(count)).contains(gid) else {
            CLI.fail("you may not see or act on incidents: \(user) is not a member of the group \(group); ask your network admin to add you", status: 2)
        }
    }
}

/// What every workflow action takes: the log, who acts, and the incident.
struct ActOptions: ParsableArguments {
    @OptionGroup var log: LogOption
    @Option(help: ArgumentHelp("Who is acting, as recorded. Default: the invoking user (SUDO_USER through sudo).", valueName: "name"))
    var by: String?
    @Argument(help: "The incident id (from `esafety incidents list`).") var id: String

    /// Appends the event for `action` after checking the transition against the incident
    /// as it stands in the log (read under the log's lock).
    func act(_ action: Workflow.Action, details: (inout ActionRecord) -> Void = { _ in },
             after: ((IncidentView) -> Void)? = nil) {
        let log = self.log.resolve()
        let group = log.group
        Identity.requireMember(of: group)
        let account = Identity.account
        let who = by ?? account
        var found: IncidentView?
        let id = self.id
        do {
            try IncidentLog.appendEvents(path: log.path, group: group) { (views: [IncidentView]) throws(Workflow.Refusal) -> [ActionRecord] in
                guard let v = views.first(where: { $0.id == id }) else { throw Workflow.Refusal(description: "no incident \(id) in \(log.path) or its rotations") }
                found = v
                if case .failure(let refusal) = Workflow.next(v.state, action) {
                    throw Workflow.Refusal(description: "cannot \(action.rawValue) \(id): \(refusal.description)")
                }
                var record = ActionRecord(action, id: id, time: Clock.rfc3339(Clock.now()), by: who,
                                          account: by != nil && by != account ? account : nil)
                details(&record)
                return [record]
            }
        } catch {
            CLI.fail(error.description, status: error.status)
        }
        if let v = found {
            let state = (try? Workflow.next(v.state, action).get()) ?? v.state
            print("\(Terminal.escape(id)): \(action.rawValue) by \(Terminal.escape(who)); now \(state.rawValue)")
            after?(v)
        }
    }
}

struct AckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ack", abstract: "Acknowledge an incident: someone has it in hand.")
    @OptionGroup var options: ActOptions
    func run() throws { options.act(.ack) }
}

struct NoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "note", abstract: "Add a note to an incident's record.")
    @OptionGroup var options: ActOptions
    @Argument(help: "The note.") var text: String
    func validate() throws { if text.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("the note is empty") } }
    func run() throws { options.act(.note) { $0.note = text } }
}

struct AssignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "assign", abstract: "Assign an incident to a person.")
    @OptionGroup var options: ActOptions
    @Option(help: "Who is to deal with it.") var to: String
    func run() throws { options.act(.assign) { $0.to = to } }
}

struct EscalateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "escalate",
        abstract: "Escalate an incident to a role: dsl, deputy-dsl, counsellor, headteacher, it, or a referral to social-care or police.")
    @OptionGroup var options: ActOptions
    @Option(help: "The role: dsl, deputy-dsl, counsellor, headteacher, it, social-care (referral), police (referral).") var to: String
    @Option(help: "Why, for the record.") var reason: String?
    func validate() throws {
        if Workflow.role(to) == nil {
            throw ValidationError("unknown role '\(to)'; one of: \(Workflow.roles.map(\.key).joined(separator: ", "))")
        }
    }
    func run() throws {
        let role = Workflow.role(to)!
        options.act(.escalate) {
            $0.to = role.name
            $0.referral = role.referral ? role.name : nil
            $0.reason = reason
        }
    }
}

struct ResolveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resolve", abstract: "Close an incident with its outcome and the action taken.")
    @OptionGroup var options: ActOptions
    @Option(help: ArgumentHelp("How it ended: \(Workflow.outcomes.joined(separator: ", ")).")) var outcome: String
    @Option(help: "What was done (closing needs a reason).") var action: String
    func validate() throws {
        if !Workflow.outcomes.contains(outcome) {
            throw ValidationError("unknown outcome '\(outcome)'; one of: \(Workflow.outcomes.joined(separator: ", "))")
        }
        if action.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--action must say what was done") }
    }
    func run() throws { options.act(.resolve) { [outcome, action] in $0.outcome = outcome; $0.actionTaken = action } }
}

struct FalsePositiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "false-positive",
        abstract: "Close an incident as a false positive; prints the allowlist line that would stop it (it writes no list).")
    @OptionGroup var options: ActOptions
    @Option(help: "Why it is a false positive (closing needs a reason).") var reason: String
    func validate() throws { if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") } }
    func run() throws {
        options.act(.falsePositive, details: { [reason] in $0.reason = reason }) { v in
            if v.record.rule.locked {
                print("\(Terminal.escape(v.category)) is a locked list: nothing may suppress it. If the entry is wrong, report it to the list's publisher.")
            } else if let (file, line) = Workflow.allowlistLine(for: v) {
                print("To stop this site raising incidents, add this line to <lists>/\(file) and reload (esafety reload):")
                print("  \(Terminal.escape(line))")
            }
        }
    }
}

struct ReopenIncidentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reopen", abstract: "Reopen a resolved or false-positive incident.")
    @OptionGroup var options: ActOptions
    @Option(help: "Why it is reopened.") var reason: String
    func run() throws { options.act(.reopen) { [reason] in $0.reason = reason } }
}
