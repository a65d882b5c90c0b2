import Foundation
import Logging
import Pipeline
import Synchronization
import SystemSupport
import TestSupport
import Testing

@testable import Classifier
@testable import Incidents
@testable import LogFormats

@Suite("The incident log's records and docs/INCIDENT-LOG.md")
struct IncidentRecordTests {
    let logger = Logger(label: "test")

    @Test("every incident carries the documented keys")
    func schema() throws {
        let r = try #require(
            try sinkRecords([
                match("www.bet365.com", url: "https://www.google.com/search?q=free+bets%21", time: 1795255200)
            ]).first
        )
        for key in [
            "id", "time", "severity", "category", "group", "client", "user", "host", "url", "rule", "hits", "due",
            "route", "search_term", "action", "source", "first_seen", "last_seen", "chain",
        ] {
            #expect(r[key] != nil, "missing \(key)")
        }
        #expect(r["time"] as? String == "2026-11-21T10:00:00.000Z")
        #expect(r["due"] as? String == "2026-11-24T10:00:00.000Z")
        #expect(r["search_term"] as? String == "free bets!")
        #expect((r["rule"] as? [String: Any])?["line"] as? Int == 3)
    }

    /// The keys docs/INCIDENT-LOG.md gives each kind of line, by its section's heading.
    /// Keys the docs mark *optional* for an incident.
    static var optionalKeys: Set<String> {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = (try? String(contentsOf: root.appendingPathComponent("docs/INCIDENT-LOG.md"), encoding: .utf8)) ?? ""
        var keys = Set<String>()
        for line in text.split(separator: "\n") where line.hasPrefix("| `") && line.contains("*optional*") {
            keys.insert(String(line.dropFirst(3).prefix { $0 != "`" }))
        }
        return keys
    }

    static func documentedKeys() throws -> [String: Set<String>] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/INCIDENT-LOG.md"), encoding: .utf8)
        var sections: [String: Set<String>] = [:]
        var current = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("## ") {
                current = String(line.dropFirst(3))
                continue
            }
            guard line.hasPrefix("| `") else { continue }
            let cell = line.dropFirst(2).prefix { $0 != "|" }
            for name in cell.split(separator: ",") {
                let key = name.trimmingCharacters(in: .whitespaces)
                if key.hasPrefix("`") && key.hasSuffix("`") {
                    sections[current, default: []].insert(String(key.dropFirst().dropLast()))
                }
            }
        }
        return sections
    }

    @Test("docs/INCIDENT-LOG.md names every key of every kind of line the log holds, and no key an incident lacks")
    func documentedSchema() throws {
        let docs = try Self.documentedKeys()
        let common = try #require(docs["On every line"])
        func section(_ prefix: String) throws -> Set<String> {
            try #require(docs.first { $0.key.hasPrefix(prefix) }?.value, "no section \(prefix)")
        }
        // Real lines: an incident with a device and a MAC, its window's count, its context,
        // a workflow action of each kind, lost and truncated events, all sealed into a chain.
        let sink = try sinkLines([
            match("games.example.com", time: 1000, category: "games", severity: "info"),
            match("www.bet365.com", url: "https://www.google.com/search?q=bets", time: 1200),
            match("www.bet365.com", url: "https://www.bet365.com/a", time: 1210),
            match("chat.example.com", time: 1500, category: "chat", severity: "info"),
            match("late.example.com", user: "pupil2", time: 1200 + 3601, category: "games", severity: "info"),
        ]).map(json)
        var lines = sink
        let workflow: [ActionRecord] = [
            ActionRecord(.ack, id: "inc-1", time: "", by: "alice"),
            ActionRecord(.note, id: "inc-1", time: "", by: "alice", note: "n"),
            ActionRecord(.assign, id: "inc-1", time: "", by: "alice", to: "Ms Jones"),
            ActionRecord(.escalate, id: "inc-1", time: "", by: "alice", to: "police", referral: "police", reason: "r"),
            ActionRecord(.resolve, id: "inc-1", time: "", by: "alice", outcome: "other", actionTaken: "a"),
            ActionRecord(.falsePositive, id: "inc-1", time: "", by: "alice", reason: "r"),
            ActionRecord(.reopen, id: "inc-1", time: "", by: "alice", reason: "r"),
        ]
        for var action in workflow {
            action.time = Clock.rfc3339(0)
            action.account = "root"
            lines.append(json(LogRecord.action(action).text))
        }
        lines.append(
            json(
                LogRecord.verdict(
                    VerdictRecord(id: "inc-1", time: RecordTime(seconds: 0), action: "blocked", blockedBy: "rpz")
                ).text
            )
        )
        lines.append(json(String(decoding: IncidentLog.lostEvent(count: 3), as: UTF8.self)))
        lines.append(
            json(
                String(
                    decoding: IncidentLog.truncatedEvent(
                        size: 0,
                        expected: 9,
                        lastChain: "x",
                        recovered: "f",
                        reason: "r"
                    ),
                    as: UTF8.self
                )
            )
        )
        var seen = Set<String>()
        for line in lines {
            let event = try #require(line["event"] as? String)
            seen.insert(event)
            let kind =
                ["incident", "hits", "verdict", "context", "lost", "truncated"].contains(event)
                ? "`\(event)`" : "Workflow actions"
            let documented = try section(kind).union(common)
            for key in line.keys {
                #expect(documented.contains(key), "\(event): \(key) is not in docs/INCIDENT-LOG.md")
            }
        }
        #expect(
            seen.isSuperset(of: [
                "incident", "hits", "verdict", "context", "ack", "escalate", "resolve", "lost", "truncated",
            ]),
            "\(seen)"
        )
        // Every key documented for an incident without "optional" is on a real one.
        let incident = try #require(sink.first { $0["event"] as? String == "incident" })
        for key in try section("`incident`") where !Self.optionalKeys.contains(key) {
            #expect(incident[key] != nil, "the docs promise \(key) on every incident")
        }
    }

}
