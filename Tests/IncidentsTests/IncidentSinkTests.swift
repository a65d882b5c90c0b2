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

@Suite("Incidents: de-duplication, context, repetition")
struct IncidentSinkTests {
    let logger = Logger(label: "test")

    @Test("a page that loads 80 resources is one incident; the window's final count follows")
    func deduplication() throws {
        var ms: [MatchedRequest] = []
        for i in 0..<80 {
            ms.append(
                match(
                    i % 2 == 0 ? "www.bet365.com" : "static.bet365.com",
                    url: "http://www.bet365.com/r\(i)",
                    time: 1000 + Double(i) / 10
                )
            )
        }
        let records = try sinkRecords(ms)
        #expect(records.filter { $0["event"] as? String == "incident" }.count == 1)
        // The window's final count: the last hits event.
        let hits = try #require(records.last { $0["event"] as? String == "hits" })
        #expect(hits["hits"] as? Int == 80)
        #expect((hits["sample_urls"] as? [String])?.count == 5)
        #expect(hits["id"] as? String == records[0]["id"] as? String)
        // A second hit is written at once, not when the window closes ten minutes later.
        let counts = records.filter { $0["event"] as? String == "hits" }.compactMap { $0["hits"] as? Int }
        #expect(counts == [2, 80], "the second hit, then (all within a minute) the final count")
    }

    @Test("a second hit is visible within seconds; while hits come, at most one hits event a minute")
    func hitsVisibleAtOnce() throws {
        // A pupil searches for self-harm twice, a few seconds apart, then keeps going for 3 minutes.
        var ms = [
            match("www.google.com", url: "https://www.google.com/search?q=hurt", time: 1000, category: "self-harm"),
            match("www.google.com", url: "https://www.google.com/search?q=hurt+2", time: 1005, category: "self-harm"),
        ]
        for i in 0..<18 {
            ms.append(
                match(
                    "www.google.com",
                    url: "https://www.google.com/search?q=\(i)",
                    time: 1010 + Double(i) * 10,
                    category: "self-harm"
                )
            )
        }
        let records = try sinkRecords(ms)
        let hits = records.filter { $0["event"] as? String == "hits" }
        #expect(hits.first?["hits"] as? Int == 2)
        #expect(hits.first?["last_seen"] as? String == Clock.rfc3339(1005))
        let counts = hits.compactMap { $0["hits"] as? Int }
        #expect(counts.last == 20)
        #expect(counts.count <= 5, "\(counts)")
        // What the tool shows follows the latest count.
        let view = try #require(IncidentStore.fold(try sinkLines(Array(ms.prefix(2))).joined(separator: "\n")).first)
        #expect(view.hits == 2)
    }

    @Test("context: the person's other categorised requests in the hour before and after, no one else's")
    func context() throws {
        let raw = try sinkLines([
            match("games.example.com", time: 1000, category: "games", severity: "info"),  // counted only
            match(
                "shop.example.com",
                url: "http://shop.example.com/search?q=knife",
                time: 1100,
                category: "shopping",
                severity: "info"
            ),
            // someone else
            match("other.example.com", user: "pupil2", time: 1150, category: "games", severity: "info"),
            match("old.example.com", time: 1000 - 4000, category: "news", severity: "info"),  // out of order, too old
            match("www.bet365.com", time: 1200),  // the incident
            match("chat.example.com", time: 1500, category: "chat", severity: "info"),  // the hour after
            match("www.williamhill.com", time: 1600),  // a second incident
            // closes it
            match("late.example.com", user: "pupil2", time: 1200 + 3601, category: "games", severity: "info"),
        ])
        let records = raw.map(json)
        let incidents = records.filter { $0["event"] as? String == "incident" }
        #expect(incidents.count == 2)
        let incident = try #require(incidents.first, "\(records)")
        let context = records.filter {
            $0["event"] as? String == "context" && $0["id"] as? String == incident["id"] as? String
        }
        let before = try #require(context.first { $0["span"] as? String == "before" }, "\(records)")
        let after = try #require(context.first { $0["span"] as? String == "after" })
        let hosts = { (e: [String: Any]) in
            (e["requests"] as? [[String: Any]] ?? []).compactMap { $0["host"] as? String }
        }
        #expect(hosts(before) == ["games.example.com", "shop.example.com"])
        #expect((before["requests"] as? [[String: Any]])?[1]["search_term"] as? String == "knife")
        #expect(hosts(after) == ["chat.example.com", "www.williamhill.com"])
        // The second incident, inside the first one's hour, shares its `after` event and
        // writes no `before` of its own; both incidents show it.
        #expect(after["ids"] as? [String] == incidents.compactMap { $0["id"] as? String })
        let views = IncidentStore.fold(raw.joined(separator: "\n"))
        #expect(views.count == 2)
        #expect(views.allSatisfy { $0.context.contains { $0.span == .after } })
        #expect(
            !records.contains {
                ($0["requests"] as? [[String: Any]])?.contains { $0["host"] as? String == "other.example.com" } == true
            }
        )
        // Nobody without an incident has context written.
        #expect(context.count == 2)
        #expect(records.filter { $0["event"] as? String == "context" }.count == 2)
        var off = Policy()
        off.contextWindow = 0
        let none = try sinkRecords(
            [
                match("games.example.com", time: 1000, category: "games", severity: "info"),
                match("www.bet365.com", time: 1200),
            ],
            policy: off
        )
        #expect(!none.contains { $0["event"] as? String == "context" })
    }

    @Test(
        "context over busy and quiet hours: each new incident's 50 requests before, the first 200 of the hour after",
        arguments: [1, 2, 3]
    )
    func contextAgainstItsDefinition(seed: UInt64) throws {
        // One pupil's categorised requests over a day: quiet stretches (a request every minute
        // or so) and bursts (one a second, up to 900 in a row: far more than an `after` event
        // holds); about one in thirty a gambling site of its own (so a new incident each
        // time), the rest counted only. Another pupil's requests are interleaved throughout.
        var random = SplitMix(s: seed)
        var requests: [(host: String, time: Double, incident: Bool)] = []
        var matches: [MatchedRequest] = []
        var t = 100_000.0
        var burst = 0
        for i in 0..<4000 {
            if burst == 0, random.next() % 100 == 0 { burst = Int(random.next() % 900) }
            t += burst > 0 ? 1 : Double(1 + random.next() % 90)
            burst = max(0, burst - 1)
            let incident = random.next() % 30 == 0
            let host = incident ? "bet\(i).com" : "chat\(i).example.com"
            requests.append((host, t, incident))
            matches.append(
                incident
                    ? match(host, time: t) : match(host, time: t, category: "chat", severity: "info")
            )
            if i % 7 == 0 {
                matches.append(
                    match("other\(i).example.com", user: "pupil2", time: t, category: "chat", severity: "info")
                )
            }
        }
        let records = try sinkRecords(matches)
        let byHost = Dictionary(
            records.filter { $0["event"] as? String == "incident" && $0["user"] as? String == "pupil1" }.map {
                ($0["host"] as! String, $0["id"] as! String)
            },
            uniquingKeysWith: { a, _ in a }
        )
        let hosts = { (e: [String: Any]) in
            (e["requests"] as? [[String: Any]] ?? []).compactMap { $0["host"] as? String }
        }
        var before: [String: [String]] = [:]
        var after: [String: (ids: [String], hosts: [String])] = [:]
        for r in records where r["event"] as? String == "context" {
            let id = try #require(r["id"] as? String)
            if r["span"] as? String == "before" { before[id] = hosts(r) }
            // (`ids` is written when the hour holds more than one incident.)
            if r["span"] as? String == "after" { after[id] = (r["ids"] as? [String] ?? [id], hosts(r)) }
        }
        // The definition, worked out from the requests alone.
        let hour = Policy().contextWindow
        var watchedUntil = -Double.infinity
        var starts = 0
        for (i, r) in requests.enumerated() where r.incident {
            let id = try #require(byHost[r.host], "no incident for \(r.host)")
            if r.time < watchedUntil {
                #expect(before[id] == nil, "an incident inside a watched hour writes no `before`")
                continue
            }
            starts += 1
            watchedUntil = r.time + hour
            let expectedBefore = requests[max(0, i - 50)..<i].filter { r.time - $0.time < hour }.map(\.host)
            #expect(before[id] ?? [] == expectedBefore, "before \(r.host)")
            let hourAfter = requests[(i + 1)...].prefix { $0.time < watchedUntil }
            #expect(after[id]?.hosts ?? [] == Array(hourAfter.prefix(200).map(\.host)), "after \(r.host)")
            // (An hour with no request after the incident writes no `after` event.)
            let shared = hourAfter.isEmpty ? [] : [r] + hourAfter.filter(\.incident)
            #expect(after[id]?.ids ?? [] == shared.prefix(100).map { byHost[$0.host] ?? "" }, "ids after \(r.host)")
        }
        // Every context event is one of these: nobody else's requests, no event without an incident.
        #expect(before.count + after.count <= 2 * starts)
        #expect(!records.contains { hosts($0).contains { $0.hasPrefix("other") } })
        #expect(starts > 10)
        #expect(after.values.contains { $0.hosts.count == 200 }, "a burst fills an `after` event")
    }

    @Test("a window or an hour after that ends between sweeps still has its count and context written")
    func expiryBetweenSweeps() throws {
        // Windows shorter than the sweep's second: the next request finds them expired
        // before any sweep has closed them.
        var short = Policy()
        short.deduplicationWindow = 0.5
        short.contextWindow = 0.5
        let records = try sinkRecords(
            [
                match("www.bet365.com", url: "http://www.bet365.com/a", time: 1000.0),
                match("www.bet365.com", url: "http://www.bet365.com/b", time: 1000.1),
                // the hour (here 0.5 s) after
                match("chat.example.com", time: 1000.2, category: "chat", severity: "info"),
                match("www.bet365.com", url: "http://www.bet365.com/c", time: 1000.7),  // a new window
            ],
            policy: short
        )
        let incidents = records.filter { $0["event"] as? String == "incident" }
        #expect(incidents.count == 2)
        let first = try #require(incidents.first?["id"] as? String)
        let hits = try #require(
            records.first { $0["event"] as? String == "hits" && $0["id"] as? String == first },
            "\(records)"
        )
        #expect(hits["hits"] as? Int == 2)
        #expect(hits["sample_urls"] as? [String] == ["http://www.bet365.com/a", "http://www.bet365.com/b"])
        let after = try #require(
            records.first {
                $0["event"] as? String == "context" && $0["span"] as? String == "after" && $0["id"] as? String == first
            },
            "\(records)"
        )
        #expect(
            (after["requests"] as? [[String: Any]])?.compactMap { $0["host"] as? String } == [
                "www.bet365.com", "chat.example.com",
            ]
        )
    }

    @Test("device names by MAC: a DHCP lease in the logs ties the address to the device")
    func deviceByMAC() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: logger)
        let devices = try MappingFile.parse("A4:5E:60:D1:22:0B  Library PC 3\n10.9.9.9 Staff laptop\n", file: "devices")
        let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\n"), devices: devices)
        sink.lease(client: "10.0.0.57", mac: "a4:5e:60:d1:22:0b", name: "not-used")
        // A device nothing else names is known by the name it gave its lease.
        sink.lease(client: "10.0.0.58", mac: "a4:5e:60:d1:22:0c", name: "pupil-ipad-7")
        sink.accept(match("www.bet365.com", user: nil, client: "10.0.0.57", time: 1000))
        sink.accept(match("www.bet365.com", user: nil, client: "10.9.9.9", time: 1000))
        sink.accept(match("www.bet365.com", user: nil, client: "10.0.0.99", time: 1000))
        sink.accept(match("www.bet365.com", user: nil, client: "10.0.0.58", time: 1000))
        sink.closeAll()
        log.stop()
        let records = lines(path).map(json).filter { $0["event"] as? String == "incident" }
        #expect(records.count == 4)
        #expect(records[0]["device"] as? String == "Library PC 3")
        #expect(records[0]["mac"] as? String == "a4:5e:60:d1:22:0b")
        #expect(records[1]["device"] as? String == "Staff laptop")
        #expect(records[2]["device"] is NSNull)
        #expect(records[3]["device"] as? String == "pupil-ipad-7")
        #expect(records[3]["mac"] as? String == "a4:5e:60:d1:22:0c")
    }

    @Test("a new window, another person or another site opens a new incident")
    func windows() throws {
        let records = try sinkRecords([
            match("www.bet365.com", time: 1000),
            match("www.bet365.com", time: 1000 + 601),
            match("www.bet365.com", user: "pupil2", time: 1002),
            match("www.williamhill.co.uk", time: 1003),
            match("sports.williamhill.co.uk", time: 1004),
            match("x.example.com", user: nil, client: "10.9.9.9", time: 1005),
        ]).filter { $0["event"] as? String == "incident" }
        #expect(records.count == 5)
        #expect(records.last?["user"] is NSNull)
        #expect(records.last?["client"] as? String == "10.9.9.9")
    }

    @Test("repetition raises severity one step")
    func repetition() throws {
        let ms = (0..<5).map { match("site\($0).com", time: 1000 + Double($0) * 60) }
        let records = try sinkRecords(ms).filter { $0["event"] as? String == "incident" }
        #expect(records.map { $0["severity"] as? String } == ["medium", "medium", "medium", "medium", "high"])
    }

    @Test("a line dated far ahead keeps its time in the record but does not close anyone's windows")
    func futureTime() throws {
        let now = Date().timeIntervalSince1970
        let ms = [
            match("www.bet365.com", url: "http://www.bet365.com/a", time: now - 10),
            // Year 9999 (a wrong clock or a hostile line), another person and site.
            match("tinder.com", user: "pupil2", time: 253_402_300_000, category: "dating"),
            match("www.bet365.com", url: "http://www.bet365.com/b", time: now - 5),
        ]
        let records = try sinkRecords(ms)
        let incidents = records.filter { $0["event"] as? String == "incident" }
        // The second bet365 hit is inside the first one's window: still one incident for it.
        #expect(incidents.count == 2, "\(incidents)")
        let hits = records.first { $0["event"] as? String == "hits" }
        #expect(hits?["hits"] as? Int == 2)
        let future = try #require(incidents.first { $0["category"] as? String == "dating" })
        #expect((future["time"] as? String)?.hasPrefix("9999-") == true)
        // Its due time comes from the clock, so it can fall overdue.
        #expect((future["due"] as? String)?.hasPrefix("9999-") == false)
    }

    @Test("per-person state is capped: the least active are forgotten, their counts written first, nothing lost")
    func peopleCap() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: logger)
        let sink = IncidentSink(
            log: log,
            policy: Policy(),
            suffixes: PublicSuffix(text: "com\n"),
            utcOffset: 0,
            maxPeople: 100
        )
        // pupil0 has an open window with a second hit not yet reported... then 500 others come.
        sink.accept(match("www.bet365.com", url: "http://www.bet365.com/a", user: "pupil0", time: 1000))
        sink.accept(match("www.bet365.com", url: "http://www.bet365.com/b", user: "pupil0", time: 1001))
        sink.accept(match("www.bet365.com", url: "http://www.bet365.com/c", user: "pupil0", time: 1070))
        for i in 1...500 { sink.accept(match("www.bet365.com", user: "p\(i)", time: 1100 + Double(i) / 100)) }
        #expect(sink.peopleKept <= 100)
        #expect(sink.evictions.load(ordering: .relaxed) >= 400)
        sink.closeAll()
        log.stop()
        let records = lines(path).map(json)
        // Every person's incident is there; pupil0's three hits were written before they were forgotten.
        #expect(records.filter { $0["event"] as? String == "incident" }.count == 501)
        let hits = records.filter { $0["event"] as? String == "hits" }.compactMap { $0["hits"] as? Int }
        #expect(hits.contains(3), "\(hits)")
    }

    @Test("two sources whose clocks differ interleave: windows still close on time, and people are forgotten after")
    func skewedSources() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: logger)
        let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\n"), utcOffset: 0)
        // Squid (pupil1) and a resolver 30 s behind it (10.0.0.2): their lines alternate for a minute.
        for i in 0..<600 {
            let t = 1000 + Double(i) / 10
            sink.accept(match("www.bet365.com", url: "http://www.bet365.com/\(i)", user: "pupil1", time: t))
            sink.accept(match("www.bet365.com", user: nil, client: "10.0.0.2", time: t - 30))
        }
        #expect(sink.peopleKept == 2)
        // Eleven minutes on, another person's line: both windows have closed with their final counts.
        sink.accept(match("other.com", user: "pupil3", time: 1000 + 660, category: "dating"))
        // Two hours on: the hour of context has run out for the first two; only the newest is kept.
        sink.accept(match("other.com", user: "pupil4", time: 1000 + 7200, category: "dating"))
        sink.accept(match("other.com", user: "pupil4", time: 1000 + 7202, category: "dating"))
        #expect(sink.peopleKept == 1, "\(sink.peopleKept)")
        sink.closeAll()
        log.stop()
        let records = lines(path).map(json)
        let incidents = records.filter { $0["event"] as? String == "incident" }
        #expect(incidents.filter { $0["category"] as? String == "gambling" }.count == 2)
        let finals = Dictionary(
            records.filter { $0["event"] as? String == "hits" }.compactMap { r -> (String, Int)? in
                guard let id = r["id"] as? String, let n = r["hits"] as? Int else { return nil }
                return (id, n)
            },
            uniquingKeysWith: { max($0, $1) }
        )
        for incident in incidents where incident["category"] as? String == "gambling" {
            #expect(finals[incident["id"] as? String ?? ""] == 600, "\(incident)")
        }
        // The final counts were written when the windows closed (before pupil3's incident), not at the stop.
        let firstDating = try #require(records.firstIndex { $0["category"] as? String == "dating" })
        let lastFinal = try #require(
            records.lastIndex { $0["event"] as? String == "hits" && $0["hits"] as? Int == 600 }
        )
        #expect(lastFinal < firstDating)
    }
}
