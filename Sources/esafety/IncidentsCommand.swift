import ArgumentParser
import Classifier
import Daemon
import Foundation
import Incidents
import LogFormats

#if canImport(Glibc)
import Glibc
#endif

struct IncidentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incidents",
        abstract: "Read the e-safety incident log: tail, list, show.",
        subcommands: [TailCommand.self, ListCommand.self, ShowCommand.self]
    )
}

struct LogOption: ParsableArguments {
    @Option(help: ArgumentHelp("The incident log. Default: the configured one.", valueName: "file"))
    var log: String?

    @Option(help: ArgumentHelp("esafetyd's configuration file, to find the incident log.", valueName: "file"))
    var config: String?

    var path: String {
        if let log { return log }
        let file = config ?? (FileSystem.exists(DaemonConfiguration.defaultPath) ? DaemonConfiguration.defaultPath : nil)
        if let file {
            do { return try DaemonConfiguration.load(path: file).incidentLog } catch { CLI.fail(error.description, status: 2) }
        }
        return DaemonConfiguration().incidentLog
    }

    func load() -> [IncidentView] {
        do { return try IncidentStore.load(path) } catch { CLI.fail(error.description, status: 1) }
    }
}

struct TailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tail", abstract: "The latest incidents, one line each; -f follows the log.")

    @OptionGroup var log: LogOption
    @Option(name: .short, help: "How many to show.") var n = 10
    @Flag(name: .short, help: "Follow the log as incidents arrive.") var f = false
    @Flag(help: "Pass the records through as JSON lines.") var json = false

    func run() throws {
        let path = log.path
        let views = log.load()
        let color = !json && isatty(1) != 0
        for v in views.suffix(n) { print(json ? v.line : IncidentStore.line(v, color: color)) }
        guard f else { return }
        // Follow: read what is appended; start again when logrotate replaces the file.
        var offset = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        var inode = (try? FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int) ?? 0
        var pending = ""
        while true {
            usleep(300_000)
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: path) else { continue }
            let size = attrs[.size] as? Int ?? 0
            let ino = attrs[.systemFileNumber] as? Int ?? 0
            if ino != inode || size < offset { offset = 0; inode = ino }
            guard size > offset, let h = FileHandle(forReadingAtPath: path) else { continue }
            h.seek(toFileOffset: UInt64(offset))
            let data = h.readDataToEndOfFile()
            try? h.close()
            offset += data.count
            pending += String(decoding: data, as: UTF8.self)
            guard let last = pending.lastIndex(of: "\n") else { continue }
            let complete = String(pending[...last])
            pending = String(pending[pending.index(after: last)...])
            for v in IncidentStore.fold(complete) { print(json ? v.line : IncidentStore.line(v, color: color)) }
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
        let now = LogTime.rfc3339(Date().timeIntervalSince1970)
        let views = log.load().filter { v in
            if open && !v.isOpen { return false }
            if overdue && !v.overdue(now: now) { return false }
            if let severity, v.severity != severity.lowercased() { return false }
            if let category, v.category != category { return false }
            if let group, v.group != group { return false }
            if let user, (v.record["user"] as? String) != user { return false }
            if let client, (v.record["client"] as? String) != client { return false }
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
        guard let v = log.load().first(where: { $0.id == id }) else { CLI.fail("no incident \(id)", status: 1) }
        print(IncidentStore.line(v, color: isatty(1) != 0))
        for key in ["time", "severity", "category", "group", "client", "user", "device", "host", "url", "search_term", "action", "due"] {
            let value = v.record[key].map { "\($0)" } ?? "null"
            print("  \(key.padding(12)) \(Terminal.escape(value == "<null>" ? "null" : value))")
        }
        if let rule = v.record["rule"] as? [String: Any] {
            print("  rule         \(Terminal.escape("\(rule["kind"] ?? "") \(rule["file"] ?? ""):\(rule["line"] ?? "") \(rule["rule"] ?? "") (generation \(rule["generation"] ?? ""))"))")
        }
        if let route = v.record["route"] as? [String] { print("  route        \(Terminal.escape(route.joined(separator: ", ")))") }
        print("  hits         \(v.hits) (last seen \(v.lastSeen))")
        print("  state        \(v.state.rawValue)")
        for e in v.events {
            print("  event        \(Terminal.escape("\(e["time"] ?? "") \(e["event"] ?? ""): \(e.filter { !["event", "id", "time", "chain"].contains($0.key) }.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " "))"))")
        }
    }
}
