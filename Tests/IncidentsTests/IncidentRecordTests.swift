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

@Suite("An incident line read by its bytes is the record the decoder reads")
struct IncidentBytesTests {
    /// Incidents as esafetyd writes them, with the text a hostile log can put in them.
    static func lines() -> [String] {
        let texts = [
            "plain", "", "quote \" and \\ backslash", "tab\tnew\nline\r", "bell \u{7} esc \u{1B}[31m nul \u{0}",
            "naïve café 日本語 🙂", "line sep \u{2028} para \u{2029}", "slash / and <script>",
        ]
        var out: [String] = []
        for (n, t) in texts.enumerated() {
            var r = IncidentRecord(
                id: "inc-\(n)-\(t)",
                time: RecordTime(text: "2026-12-02T08:00:00.000Z"),
                severity: n % 2 == 0 ? .critical : nil,
                category: "self-harm",
                group: t,
                client: "10.0.0.\(n)",
                user: n % 3 == 0 ? nil : "pupil \(t)",
                device: n % 2 == 0 ? "laptop-\(t)" : nil,
                mac: n == 1 ? "aa:bb:cc:dd:ee:ff" : nil,
                host: "www.\(t).example",
                url: n % 4 == 0 ? nil : "https://www.example/?q=\(t)",
                searchTerm: t,
                action: n % 2 == 0 ? "blocked" : "allowed",
                source: .init(format: "squid", peer: "ingest:\(t)"),
                rule: .init(
                    kind: n % 2 == 0 ? .domain : nil,
                    file: "lists/\(t)",
                    line: n == 2 ? -7 : n * 1_000_000_007,
                    rule: t,
                    generation: n,
                    locked: n % 2 == 1
                ),
                repeated: n % 2 == 0,
                window: n % 3 == 0 ? "10m" : nil,
                route: n == 0 ? [] : ["DSL", t],
                hits: n + 1,
                due: n % 2 == 0 ? RecordTime(text: "2026-12-03T08:00:00.000Z") : nil
            )
            if n % 2 == 1 { (r.blockedBy, r.categoryName) = ("squid", "Self-harm \(t)") }
            out.append(LogRecord.incident(r).text)
        }
        return out
    }

    /// `hits` lines as esafetyd writes them.
    static func hitsLines() -> [String] {
        ["", "https://www.example/a?b=\"c\"\\ \u{1B}", "🙂 日本"].enumerated().map { n, t in
            LogRecord.hits(
                HitsRecord(
                    id: "inc-\(n)\(t)",
                    hits: n * 1_000_000_007 + 2,
                    firstSeen: RecordTime(text: "2026-12-02T08:00:00.000Z"),
                    lastSeen: RecordTime(text: "2026-12-02T08:0\(n):00.000Z"),
                    sampleURLs: n == 0 ? [] : [t, t + "/2"]
                )
            ).text
        }
    }

    @Test(
        "every hits line esafetyd writes is read by its bytes, to the decoder's record; changed, as the decoder reads it"
    )
    func hitsLines() throws {
        for line in Self.hitsLines() {
            let fast = try #require(HitsRecord(scanning: line), "read by bytes: \(line)")
            #expect(LogRecord.hits(fast) == LogRecord(decoding: line), "\(line)")
            let bytes = Array(line.utf8)
            for at in bytes.indices {
                for e in Array("\"\\{}[],: 1.ex".utf8) {
                    var changed = bytes
                    changed[at] = e
                    var removed = bytes
                    removed.remove(at: at)
                    for b in [changed, removed] {
                        let text = String(decoding: b, as: UTF8.self)
                        #expect(LogRecord(line: text) == LogRecord(decoding: text), "\(text)")
                    }
                }
            }
        }
        let base = Self.hitsLines()[1]
        for text in [
            base.replacingOccurrences(of: "{\"event\":\"hits\",", with: "{"),
            base.replacingOccurrences(of: "\"last_seen\"", with: "\"last\""),
            base.replacingOccurrences(of: "\"first_seen\"", with: "\"first\""),
            base.replacingOccurrences(of: "\"sample_urls\":[", with: "\"sample_urls\":[null,"),
        ] {
            #expect(text != base)
            #expect(LogRecord(line: text) == LogRecord(decoding: text), "\(text)")
        }
    }

    @Test("every line esafetyd writes is read by its bytes, to the decoder's record")
    func writtenLines() throws {
        for line in Self.lines() {
            let fast = try #require(IncidentRecord(scanning: line), "read by bytes: \(line)")
            #expect(LogRecord.incident(fast) == LogRecord(decoding: line), "\(line)")
            // With the log's chain on the end, and whitespace where JSON allows it.
            let chained = String(line.dropLast()) + ",\"chain\":\"ab12\"}"
            #expect(IncidentRecord(scanning: chained) != nil)
            #expect(LogRecord(line: chained) == LogRecord(decoding: chained))
            let spaced = line.replacingOccurrences(of: "\",\"", with: "\" , \"")
            #expect(LogRecord(line: spaced) == LogRecord(decoding: spaced), "\(spaced)")
        }
    }

    @Test("any change to a line reads as the decoder reads it: the same record, the same default, or nothing")
    func changedLines() throws {
        var checked = 0
        var fast = 0
        let edits: [UInt8] = Array("\"\\{}[],: 0-9.eEtnull\u{7}x".utf8)
        for line in Self.lines().prefix(2) {
            let bytes = Array(line.utf8)
            for at in stride(from: 0, to: bytes.count, by: 3) {
                for e in edits {
                    var changed = bytes
                    changed[at] = e
                    var removed = bytes
                    removed.remove(at: at)
                    var inserted = bytes
                    inserted.insert(e, at: at)
                    for b in [changed, removed, inserted] {
                        let text = String(decoding: b, as: UTF8.self)
                        if IncidentRecord(scanning: text) != nil { fast += 1 }
                        let decoded = LogRecord(decoding: text)
                        #expect(LogRecord(line: text) == decoded, "\(text)")
                        // What the index and the forwarder keep of it, read by position, is
                        // what the decoded record gives.
                        if let fields = IncidentFields(line: text), case .incident(let r)? = decoded {
                            #expect(fields == IncidentFields(r), "\(text)")
                        }
                        checked += 1
                    }
                }
            }
        }
        // Hand-made shapes: each key's value of another type, keys twice, numbers JSON writes
        // other ways, escapes the reader leaves to the decoder.
        let base = Self.lines()[1]
        let swaps: [(String, String)] = [
            ("\"hits\":2", "\"hits\":2.0"),
            ("\"hits\":2", "\"hits\":2e0"),
            ("\"hits\":2", "\"hits\":\"2\""),
            ("\"hits\":2", "\"hits\":null"),
            ("\"hits\":2", "\"hits\":99999999999999999999"),
            ("\"hits\":2", "\"hits\":-0"),
            ("\"hits\":2", "\"hits\":02"),
            ("{\"event\":\"incident\",", "{\"event\":\"incident\",\"id\":\"x\","),
            ("{\"event\":\"incident\",", "{\"event\":null,"),
            ("{\"event\":\"incident\",", "{"),
            ("{\"event\":\"incident\",", "{\"event\":\"hits\","),
            ("{\"event\":\"incident\",", "{\"later\":1,"),
            ("\"group\":\"", "\"group\":\"\\ud83d\\ude42"),
            ("\"group\":\"", "\"group\":\"\\u00e9\\u0000"),
            ("\"group\":\"", "\"gr\\u006fup\":\""),
            ("\"source\":{", "\"source\":{\"x\":1,"),
            ("\"source\":{\"format\":\"squid\",", "\"source\":{"),
            ("\"locked\":true", "\"locked\":1"),
            ("\"route\":[", "\"route\":[1,"),
            ("\"repeated\":false", "\"repeated\":nul"),
        ]
        var variants: [String] = swaps.map { base.replacingOccurrences(of: $0.0, with: $0.1) }
        variants += [base + " ", base + "x", " " + base, "{}", "[]", "", "null"]
        for (from, _) in swaps { #expect(base.contains(from), "\(from) is in the line") }
        // Keys twice (found by the `record` fuzz target: the fields read by position took the
        // last, the decoder another).
        variants += [
            base.replacingOccurrences(of: "\"hits\":2", with: "\"hits\":2,\"id\":\"other\""),
            base.replacingOccurrences(of: "\"hits\":2", with: "\"hits\":2,\"due\":\"2030-01-01T00:00:00.000Z\""),
            base.replacingOccurrences(of: "\"hits\":2", with: "\"hits\":2,\"window\":\"1h\""),
        ]
        for text in variants {
            let decoded = LogRecord(decoding: text)
            #expect(LogRecord(line: text) == decoded, "\(text)")
            if let fields = IncidentFields(line: text), case .incident(let r)? = decoded {
                #expect(fields == IncidentFields(r), "\(text)")
            }
        }
        #expect(checked > 10_000 && fast > 1_000, "\(checked) lines, \(fast) by bytes")
    }
}
