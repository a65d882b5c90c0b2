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

@Suite("esafety incidents tail, list, show")
struct IncidentsCommandTests {
    func esafety(_ args: [String]) throws -> (Int32, String) {
        let r = try run("esafety", args)
        return (r.status, r.stdout)
    }

    /// The incident log the sink writes for `matches`, at a fresh path.
    func written(_ matches: [MatchedRequest]) throws -> String {
        let path = tempPath() + ".jsonl"
        let log = IncidentLog(path: path, syncInterval: 0.05, logger: Logger(label: "t"))
        try log.open()
        log.start()
        let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\n"), utcOffset: 0)
        for m in matches { sink.accept(m) }
        sink.closeAll()
        log.stop()
        return path
    }

    /// A log of three incidents in the last ten minutes: pupil1 on bet365 (at `firstURL`) and on
    /// paddypower (at `lastURL`), pupil2 on tinder between them.
    func threeIncidents(firstURL: String, lastURL: String? = nil) throws -> String {
        let now = Date().timeIntervalSince1970
        return try written([
            match("www.bet365.com", url: firstURL, time: now - 600),
            match("tinder.com", user: "pupil2", time: now - 500, category: "dating", severity: "medium"),
            match("www.paddypower.com", url: lastURL, time: now - 400),
        ])
    }

    /// Removes a test's log and what is made beside it (its chain, its index).
    func remove(log path: String) {
        for f in [path, path + ".chain", path + ".index.sqlite"] { try? FileManager.default.removeItem(atPath: f) }
    }

    @Test("a log too big to read in full is never read: the index's progress is told instead, or how to make one")
    func tooBigForAFullRead() throws {
        let now = Date().timeIntervalSince1970
        let path = try written([
            match("www.bet365.com", url: "http://www.bet365.com/a", time: now - 60),
            match("www.pornhub.com", url: "http://www.pornhub.com/", time: now - 30, category: "adult"),
        ])
        var r = try run("esafety", ["index", "rebuild", "--log", path])
        #expect(r.status == 0, "\(r.stderr)")
        let listed = try esafety(["incidents", "list", "--log", path, "--json"]).1
        let line = try #require(listed.split(separator: "\n").first)
        let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        let id = try #require(record?["id"] as? String)
        // The log grows by 300 MB the index has not read (esafetyd building it after an upgrade,
        // say): too much to catch up here, and too much to read in full.
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(truncate(path, off_t(st.st_size) + 300 << 20) == 0)
        for args in [["incidents", "list"], ["incidents", "show", id], ["incidents", "ack", id]] {
            r = try run("esafety", args + ["--log", path])
            #expect(r.status == 75, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("the incident index has read 0% of the log"), "\(r.stderr)")
            #expect(r.stderr.contains("`esafety index status` shows how far"), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        // No index at all: how to make one.
        unlink(path + ".index.sqlite")
        r = try run("esafety", ["incidents", "list", "--log", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no incident index beside this log"), "\(r.stderr)")
        #expect(r.stderr.contains("esafety index rebuild --log \(path)"), "\(r.stderr)")
        var after = stat()
        #expect(stat(path, &after) == 0 && after.st_size == st.st_size + 300 << 20, "nothing was acted on")
    }

    @Test("a coordinator who may only read the index waits for esafetyd to read the last lines, not a full read")
    func readerWaitsForTheIndex() throws {
        let dir = TempDir()
        chmod(dir.path, 0o755)
        let path = dir.path + "/incidents.jsonl"
        let now = Date().timeIntervalSince1970
        func append(_ host: String, at time: Double) throws {
            let log = IncidentLog(path: path, syncInterval: 0.05, logger: Logger(label: "t"))
            try log.open()
            log.start()
            let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\n"), utcOffset: 0)
            sink.accept(match(host, time: time))
            sink.closeAll()
            log.stop()
            chmod(path, 0o640)
        }
        try append("first.com", at: now - 60)
        #expect(try run("esafety", ["index", "rebuild", "--log", path]).status == 0)
        // A copy of the tool any account can run, run as an account that may read the log and the
        // index (their group's, as a coordinator is in esafety-admin) but not write them.
        let tool = dir.path + "/esafety"
        try copyExecutable(buildDirectory + "/esafety", to: tool)
        func list() throws -> (Int32, String) {
            try Child(
                "/usr/bin/setpriv",
                ["--reuid=nobody", "--regid=root", "--clear-groups", tool, "incidents", "list", "--log", path],
                capture: true
            ).wait()
        }
        // A line the index has not read, which "esafetyd" (root here) reads a second later.
        try append("second.com", at: now - 30)
        let keeper = Thread {
            Thread.sleep(forTimeInterval: 1)
            _ = try? run("esafety", ["incidents", "list", "--log", path])
        }
        keeper.start()
        var (code, text) = try list()
        #expect(code == 0, "\(text)")
        #expect(text.contains("second.com") && text.contains("first.com"), "\(text)")
        #expect(!text.contains("reading the log in full"), "answered from the index once it caught up: \(text)")
        // Nobody keeps it: after the wait, the log (small) is read in full, and it says so.
        try append("third.com", at: now - 10)
        (code, text) = try list()
        #expect(code == 0 && text.contains("third.com"), "\(text)")
        #expect(text.contains("the incident index is behind the log; reading the log in full"), "\(text)")
    }

    @Test("filters, newest first, JSON pass-through, history, escaped control characters")
    func commands() throws {
        // Times relative to now: the critical incident is two hours old (overdue: due within the hour).
        let now = Date().timeIntervalSince1970
        let path = try written([
            match("www.bet365.com", url: "http://www.bet365.com/a", time: now - 7300),
            match("www.bet365.com", url: "http://www.bet365.com/b", time: now - 7299),
            match(
                "abuse.example",
                user: "evil\u{1B}[2J",
                time: now - 7200,
                category: "iwf",
                severity: "critical",
                locked: true
            ),
            match("tinder.com", user: "pupil2", time: now - 60, category: "dating", severity: "medium"),
        ])
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let (status, list) = try esafety(["incidents", "list", "--log", path])
        #expect(status == 0)
        let rows = list.split(separator: "\n")
        #expect(rows.count == 3)
        #expect(rows.first?.contains("dating") == true)  // newest first
        #expect(!list.contains("\u{1B}"))
        #expect(list.contains("evil\\x1B[2J"))
        let (_, critical) = try esafety(["incidents", "list", "--log", path, "--severity", "critical", "--json"])
        let records = critical.split(separator: "\n").map { json(String($0)) }
        #expect(records.count == 1)
        #expect(records.first?["category"] as? String == "iwf")
        let (_, byUser) = try esafety(["incidents", "list", "--log", path, "--user", "pupil1"])
        #expect(byUser.split(separator: "\n").count == 1)
        #expect(byUser.contains("hits 2"))
        let (_, overdue) = try esafety(["incidents", "list", "--log", path, "--overdue"])
        #expect(overdue.split(separator: "\n").count == 1)
        #expect(overdue.contains("iwf"))
        let (_, tail) = try esafety(["incidents", "tail", "--log", path, "-n", "2"])
        #expect(tail.split(separator: "\n").count == 2)
        let id = try #require(records.first?["id"] as? String)
        let (_, show) = try esafety(["incidents", "show", "--log", path, id])
        #expect(show.contains("rule         domain Blocklists/iwf/domains:3 abuse.example (generation 1)"))
        #expect(show.contains("state        new"))
    }

    @Test(
        "the commands answer from the index beside the log once it is made; a pupil's history and a search; a corrupt index is made again"
    )
    func fromTheIndex() throws {
        let path = try threeIncidents(firstURL: "https://www.google.com/search?q=odds+tonight")
        let index = path + ".index.sqlite"
        defer { remove(log: path) }
        // Without an index the log is read in full, and the tool makes none beside it.
        let (_, before) = try esafety(["incidents", "list", "--log", path, "--person", "pupil1"])
        #expect(before.split(separator: "\n").count == 2, "\(before)")
        #expect(!FileManager.default.fileExists(atPath: index))
        let (_, made) = try esafety(["index", "rebuild", "--log", path])
        #expect(made.contains("3 incident(s)"), "\(made)")
        let (_, history) = try esafety(["incidents", "list", "--log", path, "--person", "pupil1"])
        #expect(history == before, "the same answer from the index")
        let (_, status) = try esafety(["index", "status", "--log", path])
        #expect(status.contains(": current"), "\(status)")
        let (_, found) = try esafety(["incidents", "list", "--log", path, "--search", "odds tonight"])
        #expect(found.contains("bet365") && !found.contains("paddypower"), "\(found)")
        let (_, limited) = try esafety(["incidents", "list", "--log", path, "--limit", "1"])
        #expect(limited.split(separator: "\n").count == 1 && limited.contains("paddypower"), "\(limited)")
        // Garbage in place of the index: the tools still answer as the log says.
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: index))
        let (code, all) = try esafety(["incidents", "list", "--log", path])
        #expect(code == 0)
        #expect(all.split(separator: "\n").count == 3, "\(all)")
        let (_, rebuilt) = try esafety(["index", "rebuild", "--log", path])
        #expect(rebuilt.contains("3 incident(s)"), "\(rebuilt)")
    }

    @Test(
        "a search answers the same from a full read of the log as from its index: whole words in any order, the last also as a start, case ignored"
    )
    func searchWithoutTheIndex() throws {
        let path = try threeIncidents(
            firstURL: "https://www.google.com/search?q=Odds+tonight",
            lastURL: "https://www.paddypower.com/café/Ελληνικά/Ёлка"
        )
        let index = path + ".index.sqlite"
        defer { remove(log: path) }
        let searches: [(String, [String])] = [
            ("google com", ["bet365"]), ("q odds", ["bet365"]), ("ODDS TONIGHT", ["bet365"]), ("odds ton", ["bet365"]),
            ("tonight google", ["bet365"]), ("tonight odds", ["bet365"]), ("tonight pad", []),
            ("bet", ["bet365"]), ("tinder", ["tinder"]),
            ("com", ["bet365", "tinder", "paddypower"]), ("www.paddypower", ["paddypower"]), ("er.com", []),
            ("cafe", ["paddypower"]), ("%%", []), ("com https", ["bet365", "paddypower"]),
            // Accents ignored in every script (the index's FTS5 alone ignores Latin letters' only).
            ("CAFÉ", ["paddypower"]), ("ελληνικα", ["paddypower"]), ("ΕΛΛΗΝΙΚΆ", ["paddypower"]),
            ("елка", ["paddypower"]), ("ёлка", ["paddypower"]),
        ]
        func found(_ search: String) throws -> [String] {
            let (code, out) = try esafety(["incidents", "list", "--log", path, "--search", search])
            #expect(code == 0, "\(search): \(out)")
            return ["bet365", "tinder", "paddypower"].filter { out.contains($0) }
        }
        // Without an index: the log read in full. (Before, a substring of one field, case kept:
        // "google com" and "q odds" found nothing and "er.com" two.)
        var fullRead: [String: [String]] = [:]
        for (search, expected) in searches {
            fullRead[search] = try found(search)
            #expect(fullRead[search] == expected, "without the index: \(search)")
        }
        #expect(!FileManager.default.fileExists(atPath: index))
        let (_, made) = try esafety(["index", "rebuild", "--log", path])
        #expect(made.contains("3 incident(s)"), "\(made)")
        for (search, _) in searches {
            #expect(try found(search) == fullRead[search], "the index answers as the full read: \(search)")
        }
    }

    @Test("tail -f prints each incident once, as its line completes, also when a partial line is cut and replaced")
    func tailFollow() throws {
        let path = tempPath() + ".jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        func record(_ id: String) -> String {
            #"{"event":"incident","id":"\#(id)","time":"2026-11-21T10:00:00.000Z","severity":"high","category":"selfharm","group":"ks3","client":"10.0.0.1","user":"u","host":"h.example","url":null,"rule":{},"hits":1,"due":null}"#
                + "\n"
        }
        func append(_ text: String) throws {
            let h = try #require(FileHandle(forWritingAtPath: path))
            h.seekToEndOfFile()
            h.write(Data(text.utf8))
            try h.close()
        }
        try record("inc-old").write(toFile: path, atomically: false, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: buildDirectory + "/esafety")
        p.arguments = ["incidents", "tail", "-f", "--json", "-n", "0", "--log", path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        let printed = Mutex(Data())
        out.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            printed.withLock { $0.append(d) }
        }
        func shown(_ id: String) -> Bool { printed.withLock { String(decoding: $0, as: UTF8.self).contains(id) } }
        try p.run()
        // tail -f starts from the end of the file as it finds it: wait until it is following
        // (a probe appended after its start is printed; one appended before it is history).
        var probes = 0
        var following = false
        while !following && probes < 60 {
            probes += 1
            try append(record("inc-probe-\(probes)"))
            following = poll(timeout: 1) { shown("inc-probe-") }
        }
        #expect(following, "tail -f did not start")
        // A whole line; then the first half of one (being written, or a writer killed).
        try append(record("inc-a"))
        let b = record("inc-b")
        try append(String(b.prefix(60)))
        #expect(poll { shown("inc-a") })
        // The next writer cuts the partial line and appends whole ones.
        let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(truncate(path, off_t(size - 60)) == 0)
        try append(record("inc-c") + b)
        #expect(poll { shown("inc-b") })
        kill(p.processIdentifier, SIGKILL)  // SIGTERM may be blocked in a test runner's children
        p.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        let ids = String(decoding: printed.withLock { $0 }, as: UTF8.self)
            .split(separator: "\n").map {
                ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["id"] as? String
                    ?? "unreadable: \($0)"
            }
        #expect(ids.filter { !$0.hasPrefix("inc-probe-") } == ["inc-a", "inc-c", "inc-b"])
        #expect(ids.filter { $0.hasPrefix("inc-probe-") }.count == 1, "one probe printed once: \(ids)")
    }
}
