import ArgumentParser
import Classifier
import Daemon
import Foundation

/// Where the control socket is: the flag, else the configuration's, else the default.
struct ControlOptions: ParsableArguments {
    @Option(name: .customLong("control-socket"), help: ArgumentHelp("esafetyd's control socket.", valueName: "path"))
    var controlSocket: String?

    @Option(help: ArgumentHelp("esafetyd's configuration file, to find the control socket.", valueName: "file"))
    var config: String?

    var path: String {
        if let controlSocket { return controlSocket }
        let file = config ?? (FileSystem.exists(DaemonConfiguration.defaultPath) ? DaemonConfiguration.defaultPath : nil)
        if let file {
            do { return try DaemonConfiguration.load(path: file).controlSocket } catch {
                CLI.fail(error.description, status: 2)
            }
        }
        return DaemonConfiguration().controlSocket
    }

    func send(_ command: String) -> String {
        do { return try ControlClient.send(command, to: path) } catch {
            CLI.fail(error.description, status: 1)
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show esafetyd's health: lines per source, parse errors, lists, reloads, slow clients."
    )

    @OptionGroup var control: ControlOptions

    @Flag(help: "The daemon's status as one JSON object.")
    var json = false

    func run() throws {
        let answer = control.send("status")
        if json {
            print(answer)
            return
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any] else {
            CLI.fail("unexpected answer from esafetyd", status: 1)
        }
        print(StatusText.render(object))
    }
}

struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Ask esafetyd to reload its configuration and lists (as SIGHUP does) and wait for the result."
    )

    @OptionGroup var control: ControlOptions

    func run() throws {
        let answer = control.send("reload")
        guard let o = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any] else {
            CLI.fail("unexpected answer from esafetyd", status: 1)
        }
        let ok = o["ok"] as? Bool ?? false
        print(Terminal.escape((ok ? "reloaded: " : "reload refused: ") + (o["message"] as? String ?? "")))
        if !ok { throw ExitCode(1) }
    }
}

enum StatusText {
    static func render(_ o: [String: Any]) -> String {
        func int(_ k: String, _ d: [String: Any] = [:]) -> Int { ((d.isEmpty ? o : d)[k] as? NSNumber)?.intValue ?? 0 }
        func str(_ k: String, _ d: [String: Any]) -> String { Terminal.escape(d[k] as? String ?? "") }
        var out = ""
        let uptime = int("uptime_seconds")
        out += "esafetyd up \(uptime / 86400)d \(uptime % 86400 / 3600)h \(uptime % 3600 / 60)m; lists generation \(int("generation")) (\(str("lists", o)), \(int("entries_loaded")) entries, loaded \(str("generation_loaded_at", o)))\n"
        out += "lines: \(int("lines_received")) received, \(int("lines_parsed")) parsed, \(int("lines_matched")) matched, \(int("parse_errors")) parse errors, \(int("lines_too_long")) too long; \((o["lines_per_second"] as? NSNumber)?.doubleValue ?? 0) lines/s now\n"
        if let r = o["last_reload"] as? [String: Any] {
            out += "last reload: \(str("at", r)) \((r["ok"] as? Bool ?? false) ? "ok" : "REFUSED"): \(str("message", r))\n"
        }
        out += "\n" + "source".padding(28) + "received".leftPadding(12) + "parsed".leftPadding(12) + "matched".leftPadding(10) + "errors".leftPadding(9) + "\n"
        for s in o["sources"] as? [[String: Any]] ?? [] {
            out += str("source", s).padding(28) + String(int("received", s)).leftPadding(12) + String(int("parsed", s)).leftPadding(12)
                + String(int("matched", s)).leftPadding(10) + String(int("parse_errors", s)).leftPadding(9) + "\n"
            let categories = (s["matched_by_category"] as? [String: Any] ?? [:]).map { ($0.key, ($0.value as? NSNumber)?.intValue ?? 0) }
            if !categories.isEmpty {
                // Most matched first; a source with many categories shows its top eight.
                let top = categories.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
                out += "    " + top.prefix(8).map { "\(Terminal.escape($0.0)) \($0.1)" }.joined(separator: ", ")
                    + (top.count > 8 ? ", \(top.count - 8) more" : "") + "\n"
            }
            for sample in s["error_samples"] as? [String] ?? [] { out += "    e.g. " + Terminal.escape(sample) + "\n" }
        }
        let slow = o["slow_clients"] as? [String] ?? []
        out += "\nslow clients: " + (slow.isEmpty ? "none" : slow.map(Terminal.escape).joined(separator: "; ")) + "\n"
        let connections = o["connections"] as? [[String: Any]] ?? []
        out += "connections: \(connections.count) open, \(int("connections_closed")) closed\n"
        if let l = o["incident_log"] as? [String: Any] {
            let writing = l["writing"] as? Bool ?? true
            out += "incident log: " + (writing ? "writing" : "NOT WRITING (incidents are queued; see esafetyd's log)")
                + ", \(int("written", l)) written, \(int("queued", l)) queued, \(int("lost", l)) lost"
                + ((l["last_error"] as? String).map { "; last error: " + Terminal.escape($0) } ?? "") + "\n"
            if let t = l["tampering"] as? String { out += "INCIDENT LOG TAMPERED WITH: " + Terminal.escape(t) + " (see esafety verify)\n" }
            if let h = l["chain_head"] as? String { out += "incident log chain head: " + Terminal.escape(h) + "\n" }
        }
        if let a = o["alerts"] as? [String: Any] {
            if int("commands", a) == 0 {
                out += "alerts: none configured\n"
            } else {
                out += "alerts: \(int("sent", a)) sent, \(int("failed", a)) FAILED, \(int("retried", a)) retried, \(int("rate_limited", a)) rate-limited, \(int("queued", a)) waiting"
                if let e = a["last_error"] as? String { out += "; last error: " + Terminal.escape(e) }
                out += "\n"
            }
        }
        return out
    }
}

struct ReopenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reopen",
        abstract: "Ask esafetyd to reopen the incident log (after logrotate moved it), as SIGUSR1 does."
    )

    @OptionGroup var control: ControlOptions

    func run() throws {
        let answer = control.send("reopen")
        guard answer.contains("\"ok\":true") else { CLI.fail("esafetyd did not reopen the incident log: \(answer)", status: 1) }
        print("incident log reopened")
    }
}
