import Foundation
import TestSupport
import Testing

@testable import Daemon
@testable import Incidents
@testable import LogFormats

@Suite("Configuration")
struct ConfigurationTests {
    @Test("the annotated example in the repository parses")
    func example() throws {
        let c = try DaemonConfiguration.load(path: repositoryRoot + "/config/esafetyd.yaml")
        #expect(c.ingest.contains { $0.kind == .stream })
        #expect(c.ingest.contains { $0.kind == .datagram })
        #expect(c.policy.groups.map(\.name) == ["staff", "ks1", "ks2", "boarders", "guest"])
        #expect(c.policy.group(client: "fd00:20::5", user: nil).name == "ks2")
        let boarders = c.policy.groups[3]
        // Saturday 2026-11-21 23:00 UTC is after lights out; 12:00 is not.
        #expect(c.policy.window(for: boarders, time: 1795302000, utcOffset: 0)?.name == "after lights out")
        #expect(c.policy.window(for: boarders, time: 1795262400, utcOffset: 0) == nil)
        #expect(c.policy.routes(.high, group: boarders, window: boarders.windows.first) == ["on-call DSL"])
        #expect(c.policy.defaultGroup.name == "pupils")
        #expect(c.policy.group(client: "10.10.4.5", user: nil).severityShift == 1)
        #expect(c.policy.group(client: "10.10.4.5", user: "staff.jones").name == "staff")
        #expect(c.policy.groups[0].raises("pornography", locked: false))
        #expect(!c.policy.groups[0].raises("gambling", locked: false))
        #expect(c.policy.groups[0].raises("iwf", locked: true))
        #expect(c.policy.groups[1].raises("gambling", locked: false), "no list: every category")
        #expect(c.policy.group(client: "10.99.0.7", user: nil).minimumSeverity == .medium)
        #expect(c.incidentLogGroup == "esafety-admin")
        #expect(c.incidentSyncInterval == 5)
        #expect(c.alerts.severities == [.critical, .high])
        #expect(c.alerts.commands.isEmpty)
        #expect(c.alerts.rateLimit == 600)
        #expect(c.countersPath == "/var/lib/esafety/counters.jsonl")
    }

    @Test(
        "incident policy errors name the option",
        arguments: [
            (
                "incidents:\n  groups:\n    - name: ks1\n      networks: [10.1.0.0/33]\n",
                "incidents.groups[0].networks", "not an IPv4 or IPv6 network"
            ),
            ("incidents:\n  groups:\n    - networks: [10.1.0.0/16]\n", "incidents.groups[0].name", "needs a name"),
            ("incidents:\n  deadlines:\n    urgent: 60\n", "incidents.deadlines", "unknown severity"),
            ("incidents:\n  colour: red\n", "incidents.colour", "unknown option"),
            ("alerts:\n  commands:\n    - name: mail\n", "alerts.commands[0].command", "needs a command"),
            ("alerts:\n  severities: [urgent]\n", "alerts.severities", "unknown severity"),
            ("alerts:\n  timeout: 0\n", "alerts.timeout", "between 0 and 300"),
            ("counters_interval: 0\n", "counters_interval", "between 1 and 3600"),
            ("incidents:\n  sync_interval: 0.01\n", "incidents.sync_interval", "between 0.25 and 300"),
            // Values that passed --check-config and then crashed the daemon on the first incident,
            // or turned a rule inside out (every hit a new incident, nothing ever repeated).
            (
                "incidents:\n  deadlines:\n    critical: 9223372036854775807\n", "incidents.deadlines.critical",
                "between 60 and 31536000 seconds"
            ),
            ("incidents:\n  deadlines:\n    high: 1e300\n", "incidents.deadlines.high", "between 60 and 31536000"),
            ("incidents:\n  deadlines:\n    low: -60\n", "incidents.deadlines.low", "between 60 and 31536000"),
            ("incidents:\n  deadlines:\n    low: .nan\n", "incidents.deadlines.low", "expected a number"),
            ("incidents:\n  deduplication_window: -1\n", "incidents.deduplication_window", "between 1 and 86400"),
            ("incidents:\n  repetition_hits: 0\n", "incidents.repetition_hits", "between 1 and 1000"),
            ("incidents:\n  repetition_window: 0\n", "incidents.repetition_window", "between 1 and 604800"),
            ("alerts:\n  rate_limit: -5\n", "alerts.rate_limit", "between 0 and 86400"),
            ("alerts:\n  backoff: -1\n", "alerts.backoff", "between 0.1 and 3600"),
            (
                "alerts:\n  commands:\n    - name: mail\n      command: [mail, dsl@school.example]\n",
                "alerts.commands[0].command", "must be an absolute path"
            ),
        ]
    )
    func policyErrors(yaml: String, option: String, message: String) {
        do {
            _ = try DaemonConfiguration.parse(yaml, file: "p.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.option == option)
            #expect(error.message.contains(message))
        }
    }

    /// Each option of the annotated example, by its path, and what it sets.
    static let options: [(key: String, value: @Sendable (DaemonConfiguration) -> String)] = [
        ("lists", { "\($0.lists)" }),
        ("ingest", { "\($0.ingest)" }),
        ("control_socket", { "\($0.controlSocket) \($0.controlMode) \(String(describing: $0.controlGroup))" }),
        ("max_line_length", { "\($0.maxLineLength)" }),
        ("max_connections", { "\($0.maxConnections)" }),
        ("incident_log", { $0.incidentLog }),
        ("state_directory", { $0.stateDirectory }),
        ("max_locked_shrink", { "\($0.maxLockedShrink)" }),
        ("log_level", { "\($0.logLevel)" }),
        ("incidents.deduplication_window", { "\($0.policy.deduplicationWindow)" }),
        ("incidents.repetition_hits", { "\($0.policy.repetitionHits)" }),
        ("incidents.repetition_window", { "\($0.policy.repetitionWindow)" }),
        ("incidents.context_window", { "\($0.policy.contextWindow)" }),
        ("incidents.log_group", { "\(String(describing: $0.incidentLogGroup))" }),
        ("incidents.sync_interval", { "\($0.incidentSyncInterval)" }),
        ("incidents.max_people", { "\($0.maxPeople)" }),
        ("incidents.deadlines", { "\($0.policy.deadlines.sorted { $0.key < $1.key })" }),
        ("incidents.routes", { "\($0.policy.defaultRoutes.sorted { $0.key < $1.key })" }),
        ("incidents.groups", { "\($0.policy.groups.map(\.name))" }),
        ("incidents.default_group", { "\($0.policy.defaultGroup.name) \($0.policy.defaultGroup.minimumSeverity)" }),
        ("alerts.severities", { "\($0.alerts.severities.sorted())" }),
        ("alerts.rate_limit", { "\($0.alerts.rateLimit)" }),
        ("alerts.timeout", { "\($0.alerts.timeout)" }),
        ("alerts.retries", { "\($0.alerts.retries)" }),
        ("alerts.backoff", { "\($0.alerts.backoff)" }),
        ("alerts.overdue_repeat", { "\($0.alerts.overdueRepeat)" }),
        ("alerts.commands", { "\($0.alerts.commands.map(\.name))" }),
        ("alerts.spool", { "\(String(describing: $0.alerts.spool))" }),
    ]

    /// The example's text without one option (a top-level key, or `section.key`) and the
    /// lines indented under it.
    static func example(without key: String) throws -> String {
        let text = try String(contentsOfFile: repositoryRoot + "/config/esafetyd.yaml", encoding: .utf8)
        let parts = key.split(separator: ".")
        let indent = parts.count == 1 ? "" : "  "
        let name = String(parts.last!)
        var out: [Substring] = []
        var section = ""
        var skipping = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let depth = line.prefix { $0 == " " }.count
            let isKey = !line.trimmingCharacters(in: .whitespaces).isEmpty && !line.drop { $0 == " " }.hasPrefix("#")
            if isKey && depth == 0 { section = String(line.prefix { $0 != ":" }) }
            if skipping {
                if isKey && depth <= indent.count { skipping = false } else { continue }
            }
            let inSection = parts.count == 1 || section == String(parts[0])
            if inSection && isKey && depth == indent.count && line.dropFirst(depth).hasPrefix(name + ":") {
                skipping = true
                continue
            }
            out.append(line)
        }
        return out.joined(separator: "\n")
    }

    @Test("every option has a default: each option the annotated example sets can be left out, and then takes it")
    func defaults() throws {
        let defaults = DaemonConfiguration()
        #expect(try DaemonConfiguration.parse("", file: "empty.yaml") == defaults)
        let full = try DaemonConfiguration.load(path: repositoryRoot + "/config/esafetyd.yaml")
        for (key, value) in Self.options {
            let text = try Self.example(without: key)
            #expect(
                text.count
                    < (try String(contentsOfFile: repositoryRoot + "/config/esafetyd.yaml", encoding: .utf8)).count,
                "\(key) is not in the example"
            )
            let partial = try DaemonConfiguration.parse(text, file: "example-without-\(key).yaml")
            #expect(value(partial) == value(defaults), "\(key) left out")
        }
        // The options named here are every option the example sets (a new one must be added).
        let top = try String(contentsOfFile: repositoryRoot + "/config/esafetyd.yaml", encoding: .utf8)
            .split(separator: "\n").filter { $0.first?.isLetter == true }.map { String($0.prefix { $0 != ":" }) }
        for key in top where !["incidents", "alerts"].contains(key) {
            #expect(Self.options.contains { $0.key == key }, "\(key) has no default check")
        }
        #expect(full != defaults, "the example sets options of its own")
    }

    @Test("options are read")
    func options() throws {
        let c = try DaemonConfiguration.parse(
            "max_line_length: 4096\nworkers: 3\nmax_locked_shrink: 0.25\nlog_level: debug\n",
            file: "t.yaml"
        )
        #expect(c.maxLineLength == 4096)
        #expect(c.workers == 3)
        #expect(c.maxLockedShrink == 0.25)
        #expect(c.logLevel == .debug)
        #expect(
            try DaemonConfiguration.parse("incidents:\n  sync_interval: 2.5\n", file: "t.yaml").incidentSyncInterval
                == 2.5
        )
    }

    @Test("ingest sockets with formats, modes and groups")
    func ingest() throws {
        let c = try DaemonConfiguration.parse(
            """
            ingest:
              - path: /run/esafety/squid.sock
                format: squid
                group: proxy
                mode: "0620"
                name: squid
              - path: /run/esafety/dns.dgram
                type: datagram
            """,
            file: "t.yaml"
        )
        #expect(c.ingest.count == 2)
        #expect(c.ingest[0].format == .squid)
        #expect(c.ingest[0].mode == 0o620)
        #expect(c.ingest[0].group == "proxy")
        #expect(c.ingest[0].name == "squid")
        #expect(c.ingest[1].kind == .datagram)
        #expect(c.ingest[1].format == nil)
    }

    @Test(
        "errors name file, line and option",
        arguments: [
            ("colour: red\n", 1, "colour", "unknown option"),
            ("workers: 2\nmax_line_length: lots\n", 2, "max_line_length", "whole number"),
            ("ingest:\n  - path: /x\n    format: squidd\n", 3, "ingest[0].format", "unknown format"),
            ("ingest:\n  - type: stream\n", 2, "ingest[0].path", "needs a path"),
            ("log_level: loud\n", 1, "log_level", "unknown level"),
            ("max_locked_shrink: 2\n", 1, "max_locked_shrink", "fraction"),
        ]
    )
    func errors(yaml: String, line: Int, option: String, message: String) {
        do {
            _ = try DaemonConfiguration.parse(yaml, file: "bad.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == line)
            #expect(error.option == option)
            #expect(error.message.contains(message))
            #expect(error.description.hasPrefix("bad.yaml:\(line): option `\(option)`"))
        }
    }

    @Test("what the configuration names must exist: groups, mapping files, alert programs, categories")
    func environment() throws {
        let lists = try TempLists([
            "gambling/domains": "bet.example\n",
            "iwf/category.toml": "severity = \"critical\"\nlocked = true\n",
            "iwf/domains": "abuse.example\n",
        ]).load()
        #expect(DaemonConfiguration().environmentProblems(lists: lists).isEmpty)
        let yaml = """
            control_socket:
              path: /tmp/x.sock
              group: no-such-group-esafety
            incidents:
              log_group: no-such-group-esafety
              devices: /nonexistent/devices
              groups:
                - name: ks1
                  categories: [gambling, gamblnig]
            alerts:
              commands:
                - name: mail
                  command: [/nonexistent/esafety-alert-mail]
            """
        var c = try DaemonConfiguration.parse(yaml, file: "env.yaml")
        c.path = "env.yaml"
        let problems = c.environmentProblems(lists: lists)
        let byOption = Dictionary(grouping: problems, by: { $0.option ?? "" })
        #expect(
            byOption["incidents.log_group"]?.first?.message.contains("no-such-group-esafety does not exist") == true
        )
        #expect(byOption["control_socket.group"] != nil)
        #expect(byOption["incidents.devices"]?.first?.message.contains("/nonexistent/devices") == true)
        #expect(byOption["alerts.commands[0].command"]?.first?.message.contains("cannot run") == true)
        #expect(byOption["incidents.groups[0].categories"]?.first?.message.contains("gamblnig") == true)
        #expect(problems.count == 5, "\(problems)")
        #expect(problems.allSatisfy { $0.description.hasPrefix("env.yaml: option `") })
    }

    @Test("the tools find the system daemon when the account runs none of its own")
    func toolsFindTheSystemDaemon() {
        let own = DaemonConfiguration()
        let system = [DaemonConfiguration.systemControlSocket, "/var/lib/esafety/incidents.jsonl"]
        // Only the installed service exists: its paths, whatever account asks.
        let found = DaemonConfiguration.forTools { system.contains($0) }
        #expect(found.controlSocket == DaemonConfiguration.systemControlSocket)
        #expect(found.incidentLog == "/var/lib/esafety/incidents.jsonl")
        #expect(found.countersPath == "/var/lib/esafety/counters.jsonl")
        // The account's own daemon, when it has one, comes first.
        let mine = DaemonConfiguration.forTools {
            $0 == own.controlSocket || $0 == own.incidentLog || system.contains($0)
        }
        #expect(mine.controlSocket == own.controlSocket)
        #expect(mine.incidentLog == own.incidentLog)
        // Neither: the account's own defaults, as before.
        #expect(DaemonConfiguration.forTools { _ in false } == own)
    }
}

@Suite("README's alert configuration")
struct ReadmeAlertConfigurationTests {
    @Test("the README's alerts block loads as written: the spool and both commands")
    func readmeBlock() throws {
        let readme = try String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)
        let start = try #require(readme.range(of: "```yaml\nalerts:\n"))
        let end = try #require(readme[start.upperBound...].range(of: "```"))
        let block = "alerts:\n" + readme[start.upperBound..<end.lowerBound]
        let path = tempPath() + ".yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try block.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try DaemonConfiguration.load(path: path)
        #expect(c.alerts.spool == "/var/lib/esafety/alerts")
        #expect(c.alerts.commands.map(\.name) == ["mail-dsl", "chat"])
        #expect(c.alerts.overdueRepeat == 3600)
    }
}
