import Foundation
import TestSupport
import Testing

@testable import Incidents
@testable import LogFormats
@testable import Reports
@testable import SystemSupport

#if canImport(FoundationXML)
import FoundationXML
#endif

/// `esafety report` from a fixed incident log and counters file (Fixtures/report): golden
/// files for each format, and the facts behind them checked one by one.
@Suite("The nightly report")
struct ReportTests {
    static let fixtures: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        return url.path + "/Fixtures/report"
    }()

    static func report(anonymise: Bool = false) throws -> Report {
        let views = IncidentStore.fold(try String(contentsOfFile: fixtures + "/incidents.jsonl", encoding: .utf8))
        let counters = try String(contentsOfFile: fixtures + "/counters.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap(CounterRecord.init(line:))
        var options = Report.Options(
            since: Report.epoch("2026-11-20T00:00:00Z")!,
            until: Report.epoch("2026-11-21T00:00:00Z")!
        )
        options.anonymise = anonymise
        options.title = "Hilltop School e-safety report"
        return Report(views: views, counters: counters, options: options)
    }

    /// Compares with the golden file; `ESAFETY_UPDATE_GOLDEN=1 swift test` rewrites them.
    static func golden(_ name: String, _ actual: String) throws {
        let path = fixtures + "/expected." + name
        if ProcessInfo.processInfo.environment["ESAFETY_UPDATE_GOLDEN"] == "1" {
            try actual.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        #expect(
            actual == expected,
            "\(name) differs from \(path); if the change is intended, rerun with ESAFETY_UPDATE_GOLDEN=1 and review the diff"
        )
    }

    @Test("each format matches its golden file, and is the same on every run")
    func goldens() throws {
        let r = try Self.report()
        try Self.golden("txt", r.text)
        try Self.golden("json", r.json)
        try Self.golden("csv", r.csv)
        try Self.golden("html", r.html)
        let a = try Self.report(anonymise: true)
        try Self.golden("anonymised.txt", a.text)
        try Self.golden("anonymised.html", a.html)
        #expect(try Self.report().html == r.html)
    }

    @Test("the facts: new, open, overdue, escalations, outcomes, response times")
    func facts() throws {
        let r = try Self.report()
        #expect(
            r.new.map(\.id) == ["inc-0002", "inc-0003", "inc-0004", "inc-0008", "inc-0005", "inc-0006", "inc-0007"]
        )
        #expect(r.bySeverity.map(\.name) == ["critical", "high", "medium", "low"])
        #expect(r.bySeverity.map(\.count) == [2, 2, 2, 1])
        // Open at midnight: the day before's self-harm (overdue), and four of the day's; the
        // acknowledgement on the 21st does not count for the 20th.
        #expect(r.open.map(\.id) == ["inc-0001", "inc-0004", "inc-0005", "inc-0006", "inc-0007"])
        #expect(r.open.filter(\.overdue).map(\.id) == ["inc-0001"])
        #expect(r.open.first { $0.id == "inc-0006" }?.state == "escalated")
        #expect(Dictionary(uniqueKeysWithValues: r.escalations.map { ($0.name, $0.count) }) == ["police": 1, "DSL": 1])
        #expect(r.referrals == 1)
        #expect(
            Dictionary(uniqueKeysWithValues: r.outcomes.map { ($0.name, $0.count) }) == [
                "referred-police": 1, "pupil-spoken-to": 1,
            ]
        )
        #expect(r.falsePositives == 1)
        // inc-0002 acknowledged after 14 min 50 s; inc-0003 after 28 min; inc-0006 escalated after 8 min; inc-0008 after 25 min.
        #expect(r.toAcknowledge == [480, 890, 1500, 1680])
        #expect(r.acknowledgedInTime == 4)
        #expect(r.withDeadline == 7)
        #expect(r.topSites.first?.name == "adult-site.example")
        #expect(r.topPeople.first?.name == "y8.ben")
    }

    @Test("monitoring: lines per source per hour, silent periods, downtime, reloads, alerts")
    func monitoring() throws {
        let r = try Self.report()
        let squid = try #require(r.linesByHour["squid:squid"])
        #expect(squid.count == 24)
        #expect(squid[6] == 0 && squid[7] == 72_000 && squid[11] == 0 && squid[12] == 50 * 1200 && squid[17] == 0)
        #expect(r.linesByHour["syslog:dnsmasq"]?[19] == 40 * 300, "20 minutes not running")
        let silent = r.silences.map {
            "\($0.source) \(Clock.rfc3339($0.from).dropFirst(11).prefix(5))-\(Clock.rfc3339($0.to).dropFirst(11).prefix(5))"
        }
        #expect(silent == ["squid:squid 00:00-07:00", "squid:squid 11:00-12:10", "squid:squid 17:00-00:00"])
        #expect(r.downtime.count == 1)
        #expect(r.downtime.first.map { $0.to - $0.from } == 1200)
        #expect(r.reloads == 2)
        #expect(r.failedReloads.count == 1)
        #expect(r.generation == 2)
        #expect(r.alertsSent == 1)
        #expect(r.alertFailures.count == 1)
        #expect(r.malformed == 600 - 70)
    }

    @Test("what the DSL reads: categories by their names, the search the pupil typed (escaped), whether it was blocked")
    func truthfulRows() throws {
        let r = try Self.report()
        // The record's own name first; else the taxonomy's, also for a foreign folder (UT1 `adult`).
        #expect(r.text.contains("Self-harm and eating disorders ks3 y9.amir"))
        #expect(r.text.contains("by category: Pornography 2, Gambling 2"))
        #expect(r.text.contains("search \"painless ways to <die>\""))
        #expect(r.html.contains("\u{201C}painless ways to &lt;die&gt;\u{201D}"))
        #expect(!r.html.contains("<die>"))
        #expect(r.text.contains("adult-site.example blocked (squid) - new"))
        #expect(r.csv.contains(",www.google.com,painless ways to <die>,allowed,"))
        // The hourly chart has a scale of round numbers, not one raw maximum.
        #expect(r.html.contains(">100,000</text>") && r.html.contains(">50,000</text>"))
        #expect(Report.ticks(upTo: 90000) == (step: 50000, count: 2))
        #expect(Report.ticks(upTo: 7) == (step: 2, count: 4))
        #expect(Report.ticks(upTo: 0) == (step: 1, count: 1))
    }

    @Test("anonymised: no user name, client address or search anywhere")
    func anonymised() throws {
        let r = try Self.report(anonymise: true)
        for text in [r.text, r.html, r.json, r.csv] {
            for secret in [
                "y8.ben", "y10.cara", "y11.dan", "b.ella", "y5.finn", "y9.amir", "10.30.1.7", "10.60.0.3", "painless",
            ] {
                #expect(!text.contains(secret), "\(secret) in an anonymised report")
            }
        }
        #expect(r.topPeople.first?.name == "person 1")
        #expect(r.text.contains("person 1"))
    }

    @Test("the HTML is well-formed, self-contained, and has its two charts")
    func html() throws {
        let h = try Self.report().html
        let parser = XMLParser(data: Data(h.dropFirst("<!DOCTYPE html>\n".count).utf8))
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        #expect(h.components(separatedBy: "<svg ").count - 1 == 2)
        #expect(!h.contains("<script") && !h.contains("src=") && !h.contains("href="), "no scripts or external fetches")
        #expect(h.contains("name=\"viewport\""))
        #expect(h.contains("@media print"))
    }

    @Test("CSV cells that a spreadsheet would run as formulas are quoted as text")
    func csvFormulas() throws {
        let log =
            "{\"event\":\"incident\",\"id\":\"inc-x\",\"time\":\"2026-11-20T10:00:00.000Z\",\"severity\":\"low\",\"category\":\"games\",\"group\":\"ks2\",\"client\":\"10.0.0.1\",\"user\":\"=HYPERLINK(\\\"http://evil\\\")\",\"host\":\"a.example\",\"hits\":1}\n"
        let r = Report(
            views: IncidentStore.fold(log),
            counters: [],
            options: Report.Options(
                since: Report.epoch("2026-11-20T00:00:00Z")!,
                until: Report.epoch("2026-11-21T00:00:00Z")!
            )
        )
        #expect(r.csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""))
        #expect(r.text.contains("no monitoring counters for this period"))
    }

    @Test("silences start when esafetyd first started in the period; a restart under a minute is not downtime")
    func monitoringFromFirstStart() throws {
        let since = Report.epoch("2026-11-20T00:00:00Z")!
        func at(_ h: Double) -> String { Clock.rfc3339(since + h * 3600) }
        var counters: [CounterRecord] = [.start(time: at(9), pid: 1)]
        // A source heard every minute from 09:00 to 12:00, with a 20-second restart at 10:30.
        for m in stride(from: 9 * 60 + 1, through: 12 * 60, by: 1) {
            counters.append(
                .counts(
                    .init(
                        time: at(Double(m) / 60),
                        source: "ingest",
                        interval: 60,
                        received: 5,
                        parsed: 5,
                        matched: 0,
                        malformed: 0,
                        tooLong: 0
                    )
                )
            )
        }
        counters.append(.stop(time: at(10.5)))
        counters.append(.start(time: Clock.rfc3339(since + 10.5 * 3600 + 20), pid: 2))
        let r = Report(views: [], counters: counters, options: Report.Options(since: since, until: since + 12 * 3600))
        #expect(r.silences.isEmpty, "nothing was listening before 09:00: \(r.silences.map { ($0.from, $0.to) })")
        #expect(r.downtime.isEmpty, "a 20-second restart: \(r.downtime.map { ($0.from, $0.to) })")
        #expect(!r.text.contains("SILENT"))
        #expect(!r.text.contains("NOT RUNNING"))
    }

    @Test("a report for today runs to now, not to midnight")
    func todayRunsToNow() throws {
        let now = Clock.now()
        let today = String(Clock.rfc3339(now + Double(ReportPeriod.offset(at: now))).prefix(10))
        let period = try #require(ReportPeriod(date: today, since: nil, until: nil, now: now))
        #expect(period.until == now)
        let yesterday = try #require(ReportPeriod(date: nil, since: nil, until: nil, now: now))
        #expect(yesterday.until == period.since, "with no --date: yesterday, up to today's midnight")
    }
}
