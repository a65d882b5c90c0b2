import Foundation
import GRDB
import Logging
import Pipeline
import SystemSupport
import TestSupport
import Testing

@testable import Classifier
@testable import IncidentIndex
@testable import Incidents
@testable import Reports

/// A real incident log (written by the incident sink and the tool's appender, hash-chained)
/// and its index: what the index answers must be what a full read of the log answers.
@Suite("The incident index", .serialized)
struct IncidentIndexTests {
    final class Log {
        let path: String
        /// A second writer on a path (after a rotation or a replacement) leaves its files.
        let owns: Bool
        let log: IncidentLog
        let sink: IncidentSink

        init(path: String? = nil) throws {
            self.path = path ?? tempPath() + ".jsonl"
            owns = path == nil
            log = IncidentLog(path: self.path, syncInterval: 0.05, headInterval: 3600, logger: Logger(label: "test"))
            try log.open()
            log.start()
            sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\nexample\n"))
        }

        /// Incidents for pupils `range`: two hits each (a `hits` event), on a site per pupil.
        func incidents(_ range: Range<Int>, at base: Double = 1_795_255_200) {
            for i in range {
                let url = "https://www.google.com/search?q=pupil+\(i)"
                sink.accept(match("site\(i).example", url: url, user: "u\(i)", time: base + Double(i)))
                sink.accept(match("site\(i).example", user: "u\(i)", time: base + Double(i) + 1))
            }
        }

        /// Stops the writer so the file holds everything (the appender works with or without it).
        func flush() {
            sink.closeAll()
            log.stop()
        }

        func act(_ action: Workflow.Action, _ id: String, note: String? = nil, outcome: String? = nil) throws {
            try IncidentLog.appendEvents(path: path, group: nil) { _ in
                [
                    ActionRecord(
                        action,
                        id: id,
                        time: Clock.rfc3339(Clock.now()),
                        by: "alice",
                        note: note,
                        outcome: outcome,
                        actionTaken: outcome == nil ? nil : "spoke to parents"
                    )
                ]
            }
        }

        deinit {
            guard owns else { return }
            for f in [path, path + ".chain", path + ".1", IncidentIndex.path(forLog: path)] {
                try? FileManager.default.removeItem(atPath: f)
            }
        }
    }

    /// The views of a full read and of the index, compared by what a person sees.
    static func same(_ index: IncidentIndex, _ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let full = try IncidentStore.load(path).sorted { $0.id < $1.id }
        // A list: each incident as a list shows it (its record, state, hits, last seen).
        let listed = try index.incidents(IncidentIndex.Query()).sorted { $0.id < $1.id }
        #expect(listed.count == full.count, sourceLocation: sourceLocation)
        for (a, b) in zip(full, listed) {
            #expect(a.id == b.id, sourceLocation: sourceLocation)
            #expect(a.line == b.line, sourceLocation: sourceLocation)
            #expect(a.hits == b.hits && a.lastSeen == b.lastSeen, sourceLocation: sourceLocation)
            #expect(a.state == b.state, sourceLocation: sourceLocation)
            #expect(a.record == b.record, sourceLocation: sourceLocation)
            #expect(IncidentStore.line(a, color: false) == IncidentStore.line(b, color: false))
        }
        // What a list prints, read from the index's columns alone (no record decoded): the
        // same as of the fold, hits and state included.
        let printed = try index.summaries(IncidentIndex.Query()).sorted { $0.id < $1.id }
        #expect(printed == full.map(IncidentSummary.init), sourceLocation: sourceLocation)
        // One incident (show, the incident page): its whole history.
        for a in full {
            let found = try index.incidents(idOrPrefix: a.id)
            #expect(found.count == 1, sourceLocation: sourceLocation)
            guard let b = found.first else { continue }
            #expect(a.line == b.line && a.state == b.state && a.hits == b.hits, sourceLocation: sourceLocation)
            #expect(a.events == b.events, sourceLocation: sourceLocation)
            #expect(IncidentDisplay.details(a) == IncidentDisplay.details(b), sourceLocation: sourceLocation)
        }
    }

    @Test("the index answers as a full read of the log does: records, hits, context, actions and state")
    func sameAsFullRead() throws {
        let l = try Log()
        l.incidents(0..<40)
        // One pupil with incidents on two sites and other categorised requests between them:
        // context lines that name both incidents (the index keeps such a line once).
        let base = 1_795_255_200.0 + 100
        l.sink.accept(match("first.example", user: "busy", time: base))
        l.sink.accept(match("news.example", user: "busy", time: base + 5, category: "news", severity: "info"))
        l.sink.accept(match("second.example", user: "busy", time: base + 10))
        l.sink.accept(match("sport.example", user: "busy", time: base + 15, category: "sports", severity: "info"))
        l.flush()
        let shared = lines(l.path).filter { $0.hasPrefix("{\"event\":\"context\"") && $0.contains("\"ids\":[") }
        #expect(!shared.isEmpty, "a context line naming several incidents")
        let ids = try IncidentStore.load(l.path).filter { $0.person != "busy" }.map(\.id)
        try l.act(.ack, ids[0])
        try l.act(.note, ids[0], note: "spoke to form tutor")
        try l.act(.resolve, ids[1], outcome: "parents-informed")
        try l.act(.ack, ids[2])
        // An action line in another key order (not the shape esafety writes): read whole, and
        // its state change counts the same in the index's own filters.
        let other =
            "{\"id\":\"\(ids[3])\",\"by\":\"bob\",\"time\":\"\(Clock.rfc3339(Clock.now()))\","
            + "\"outcome\":\"other\",\"action\":\"spoke to them\",\"event\":\"resolve\"}\n"
        // A later verdict: the proxy blocked the request after all (a list shows it so too).
        let verdict =
            LogRecord.verdict(
                VerdictRecord(id: ids[5], time: RecordTime(seconds: base + 20), action: "blocked", blockedBy: "squid")
            ).text + "\n"
        let fd = open(l.path, O_WRONLY | O_APPEND)
        _ = Array((other + verdict).utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        #expect(try IncidentStore.load(l.path).first { $0.id == ids[3] }?.state == .resolved)
        #expect(try IncidentStore.load(l.path).first { $0.id == ids[5] }?.record.action == "blocked")
        let index = try IncidentIndex(logPath: l.path)
        let u = try index.update()
        #expect(u.incidents == 42)
        #expect(u.rebuilt == false)
        try Self.same(index, l.path)
        var open = IncidentIndex.Query()
        open.open = true
        let openIDs = try IncidentStore.load(l.path).filter(\.isOpen).map(\.id).sorted()
        #expect(try index.incidents(open).map(\.id).sorted() == openIDs)
        // A full read for a list or a report leaves the context lines unread: the same
        // incidents, states, hits and actions, only no context.
        let full = try IncidentStore.load(l.path)
        let lean = try IncidentStore.load(l.path, context: false)
        #expect(full.contains { !$0.context.isEmpty } && lean.allSatisfy { $0.context.isEmpty })
        #expect(lean.map(\.id) == full.map(\.id))
        for (a, b) in zip(full, lean) {
            #expect(a.record == b.record && a.state == b.state && a.hits == b.hits && a.lastSeen == b.lastSeen)
            #expect(a.events.filter { if case .context = $0 { false } else { true } } == b.events)
        }
    }

    @Test("it goes on from where it stopped; a rotated log is followed; queries a DSL needs")
    func incrementalAndRotation() throws {
        let l = try Log()
        l.incidents(0..<10)
        l.flush()
        let index = try IncidentIndex(logPath: l.path)
        #expect(try index.update().incidents == 10)
        let ids = try IncidentStore.load(l.path).map(\.id)
        try l.act(.ack, ids[3])
        let second = try index.update()
        #expect(second == IncidentIndex.Update(rebuilt: false, lines: 1, incidents: 0), "only the new line")
        // Nothing new, twice: nothing read, nothing rebuilt (a no-op update kept no chain value
        // once, and the next one read the whole log again).
        #expect(try index.update() == IncidentIndex.Update(rebuilt: false, lines: 0, incidents: 0))
        #expect(try index.update() == IncidentIndex.Update(rebuilt: false, lines: 0, incidents: 0))
        #expect(try index.isCurrent())
        // logrotate: the log becomes LOG.1 and a new one is written.
        #expect(rename(l.path, l.path + ".1") == 0)
        let next = try Log(path: l.path)
        next.incidents(10..<15)
        next.flush()
        let third = try index.update()
        #expect(third.rebuilt == false)
        #expect(third.incidents == 5)
        try Self.same(index, l.path)

        // Open, by severity; a pupil's history; text in a note; an id's prefix.
        var q = IncidentIndex.Query()
        q.open = true
        #expect(try index.incidents(q).count == 15)
        try l.act(.resolve, ids[4], outcome: "pupil-spoken-to")
        try l.act(.note, ids[5], note: "older sibling involved")
        try index.update()
        #expect(try index.incidents(q).count == 14)
        var history = IncidentIndex.Query()
        history.person = "u5"
        #expect(try index.incidents(history).map(\.id) == [ids[5]])
        #expect(try index.summaries(history).map(\.id) == [ids[5]])
        var text = IncidentIndex.Query()
        text.text = "sibling"
        #expect(try index.incidents(text).map(\.id) == [ids[5]])
        text.text = "pupil+7"
        #expect(try index.incidents(text).map(\.record.user) == ["u7"])
        #expect(try index.incidents(idOrPrefix: String(ids[6].prefix(26))).map(\.id) == [ids[6]])
        var limited = IncidentIndex.Query()
        limited.limit = 3
        #expect(try index.incidents(limited).count == 3)
        // Counts for charts: per day and severity, and per state.
        let all = try IncidentStore.load(l.path)
        let days = try index.perDay(since: "2000-01-01", until: "2100-01-01")
        #expect(days.values.flatMap(\.values).reduce(0, +) == all.count)
        #expect(days.keys.sorted() == Set(all.map { String($0.time.prefix(10)) }).sorted())
        let states = try index.counts()
        #expect(states["resolved"]?.values.reduce(0, +) == 1)
        #expect(states.values.flatMap(\.values).reduce(0, +) == all.count)
        var folded: [String: [String: Int]] = [:]
        for v in all {
            folded[v.workflow.state.rawValue, default: [:]][v.severity?.description ?? "none", default: 0] += 1
        }
        #expect(states == folded, "each state's count per severity, as a fold of the log gives it")
        // The dashboard's open and overdue counts, exact under the cap and bounded past it
        // (cap + 1 says "more than cap"); one state and the resolved incident excluded.
        let sev = try #require(all.first?.severity?.description)
        let far = "2100-01-01T00:00:00Z"
        let counts = try index.openCounts(now: far)
        #expect(counts.open[sev] == 14)
        #expect(counts.overdue[sev] == 13, "the acknowledged one is not overdue")
        #expect(try index.openCounts(now: "2000-01-01T00:00:00Z").overdue.isEmpty)
        let capped = try index.openCounts(now: far, cap: 5)
        #expect(capped.open[sev] == 6 && capped.overdue[sev] == 6)
        var acknowledged = IncidentIndex.Query()
        acknowledged.state = "acknowledged"
        #expect(try index.incidents(acknowledged).map(\.id) == [ids[3]])
    }

    @Test("a pupil's history, as a list prints it, is read in order from the person index alone, not row by row")
    func historyFromItsIndex() throws {
        let l = try Log()
        l.incidents(0..<5)
        l.flush()
        let index = try IncidentIndex(logPath: l.path)
        try index.update()
        var q = IncidentIndex.Query()
        q.person = "u3"
        let plan = try index.db.read { db in
            try Row.fetchAll(
                db,
                sql: "EXPLAIN QUERY PLAN " + index.select(IncidentIndex.listColumns, q),
                arguments: index.arguments(q)
            ).map { $0["detail"] as String }
        }
        #expect(plan == ["SEARCH incidents USING COVERING INDEX incidents_person (person=?)"], "\(plan)")
        #expect(try index.summaries(q).map(\.person) == ["u3"])
    }

    @Test("a long read is committed in steps: stopped part way (or the process gone), it goes on from there")
    func resumedInSteps() throws {
        let l = try Log()
        l.incidents(0..<12)
        l.flush()
        let ids = try IncidentStore.load(l.path).map(\.id)
        try l.act(.ack, ids[2])
        #expect(rename(l.path, l.path + ".1") == 0)
        let next = try Log(path: l.path)
        next.incidents(12..<20)
        next.flush()
        let later = try IncidentStore.load(l.path).map(\.id).filter { !ids.contains($0) }
        try l.act(.resolve, ids[2], outcome: "pupil-spoken-to")
        try l.act(.note, later[2], note: "asked for help")
        // How many lines the log and its rotation hold, read in one go into another index.
        let whole = try IncidentIndex(logPath: l.path, path: tempPath() + ".sqlite").update()
        #expect(whole.lines > 40 && whole.incidents == 20)

        // Seven lines at a time, each time by a new process's index (what a stop or a kill
        // leaves is what was committed): never current until the end, then as a full read.
        var read = 0
        var incidents = 0
        var steps = 0
        while true {
            let index = try IncidentIndex(logPath: l.path)
            let u = try index.update(step: 7, shouldStop: { true })
            #expect(u.lines <= 7)
            read += u.lines
            incidents += u.incidents
            steps += 1
            if try index.isCurrent() { break }
            #expect(u.lines == 7, "a step short of its budget only at the end of the log")
            #expect(steps < 100)
        }
        #expect(read == whole.lines && incidents == 20, "every line once: none read twice, none passed over")
        #expect(steps == (whole.lines + 6) / 7)
        let index = try IncidentIndex(logPath: l.path)
        try Self.same(index, l.path)
        var resolved = IncidentIndex.Query()
        resolved.state = "resolved"
        #expect(try index.incidents(resolved).map(\.id) == [ids[2]], "a state changed across steps and files")
        var note = IncidentIndex.Query()
        note.text = "help"
        #expect(try index.incidents(note).map(\.id) == [later[2]])
        // Without a stop the steps go on to the end in one call, telling the running total
        // after each step short of the end.
        let again = try IncidentIndex(logPath: l.path, path: tempPath() + ".sqlite")
        var told: [Int] = []
        #expect(try again.update(step: 5, progress: { told.append($0.lines) }) == whole)
        #expect(told == Array(stride(from: 5, through: whole.lines, by: 5)), "\(told)")
        #expect(try again.isCurrent())
    }

    @Test("a search answers as a full read, for words most incidents have, words a few have, and words none has")
    func searchCommonAndRare() throws {
        let l = try Log()
        // Every pupil's search is "pupil N": more rows with "pupil" than the index counts as few.
        l.incidents(0..<(IncidentIndex.fewMatches + 100))
        // The oldest incident, on a site with no search: found by "pupil" only once a note says it.
        l.sink.accept(match("quiet.example", user: "q", time: 1_795_255_200 - 600))
        l.flush()
        let index = try IncidentIndex(logPath: l.path)
        try index.update()
        #expect(try index.fullTextRows("\"pupil\"*", upTo: IncidentIndex.fewMatches) > IncidentIndex.fewMatches)
        let all = try IncidentStore.load(l.path).sorted { ($0.time, $0.id) > ($1.time, $1.id) }
        for (words, limit) in [("pupil", 50), ("pupil 1234", 50), ("pupil 12", 5), ("nowhere", 50), ("pupil", 3000)] {
            var q = IncidentIndex.Query()
            q.text = words
            q.limit = limit
            let wanted = all.filter {
                ($0.record.url ?? "").contains("q=" + words.replacingOccurrences(of: " ", with: "+"))
            }
            let got = try index.incidents(q).map(\.id)
            #expect(got == Array(wanted.prefix(limit).map(\.id)), "\(words): \(got.count) of \(wanted.count)")
            #expect(try index.summaries(q).map(\.id) == got, "\(words): a list's columns, the same incidents")
        }
        // A note's words: the incident is found by them, whether its words are common (the
        // incidents walked newest first) or rare (read and sorted).
        // Added to an incident the index holds, or read in the same pass as the incident (a new
        // index of the whole log: the note's words written with the incident's).
        let quiet = try #require(all.first { $0.host == "quiet.example" }).id
        try l.act(.note, quiet, note: "pupil asked for help")
        try index.update()
        let fresh = try IncidentIndex(logPath: l.path, path: tempPath() + ".sqlite")
        try fresh.update()
        for (words, limit) in [("pupil", 3000), ("asked for", 50), ("quiet", 50)] {
            var q = IncidentIndex.Query()
            q.text = words
            q.limit = limit
            for index in [index, fresh] {
                #expect(try index.incidents(q).last?.id == quiet, "\(words)")
                #expect(try index.summaries(q).last?.id == quiet, "\(words)")
            }
        }
        #expect(try index.fullTextRows("\"pupil\"*", upTo: IncidentIndex.fewMatches) > IncidentIndex.fewMatches)
    }

    @Test("a report from the index is the report from the whole log: new in the period, and older ones open at its end")
    func reportFromIndex() throws {
        let l = try Log()
        // Thirty pupils a minute apart; some acted on inside the period, some after it.
        l.incidents(0..<30, at: 1_795_255_200)
        l.flush()
        let ids = try IncidentStore.load(l.path).sorted { $0.time < $1.time }.map(\.id)
        for id in ids.prefix(5) { try l.act(.ack, id) }
        try l.act(.resolve, ids[1], outcome: "pupil-spoken-to")
        try l.act(.falsePositive, ids[2], note: nil)
        let index = try IncidentIndex(logPath: l.path)
        try index.update()
        let counters: [CounterRecord] = []
        for (since, until) in [(1_795_255_210.0, 1_795_255_220.0), (1_795_255_200.0, 1_795_255_230.0), (0, 2e9)] {
            var options = Report.Options(since: since, until: until)
            options.utcOffset = 0
            let full = Report(views: try IncidentStore.load(l.path), counters: counters, options: options)
            let indexed = Report(
                views: try index.incidents(reportFrom: Clock.rfc3339(since), until: Clock.rfc3339(until)),
                counters: counters,
                options: options
            )
            #expect(indexed.text == full.text)
            #expect(indexed.json == full.json)
        }
    }

    @Test("a log that was cut or replaced is read again from the start, never trusted")
    func logReplaced() throws {
        let l = try Log()
        l.incidents(0..<8)
        l.flush()
        let index = try IncidentIndex(logPath: l.path)
        try index.update()
        // Another log in its place (same name, other lines).
        try FileManager.default.removeItem(atPath: l.path)
        let other = try Log(path: l.path)
        other.incidents(100..<103)
        other.flush()
        let u = try index.update()
        #expect(u.rebuilt)
        try Self.same(index, l.path)
        // The words of the log that was replaced went with it; the new one's are found.
        func found(_ words: String) throws -> Int {
            var q = IncidentIndex.Query()
            q.text = words
            return try index.incidents(q).count
        }
        #expect(try found("site3") == 0 && found("site101") == 1)
        // The same file, cut short and written again: the chain at the cursor no longer agrees.
        let text = try String(contentsOfFile: l.path, encoding: .utf8)
        let kept = text.split(separator: "\n").prefix(2).joined(separator: "\n") + "\n"
        try kept.write(toFile: l.path, atomically: false, encoding: .utf8)
        let late = try Log(path: l.path)
        late.sink.accept(match("late.example", user: "late", time: 1_795_260_000))
        late.flush()
        let v = try index.update()
        #expect(v.rebuilt)
        try Self.same(index, l.path)
        // (The first two lines were kept: the third incident's words went with the rest.)
        #expect(try found("site102") == 0 && found("late") == 1)
        // Made again on request: the same answers.
        let w = try index.rebuild()
        let all = try IncidentStore.load(l.path).count
        #expect(w.rebuilt && w.incidents == all)
        try Self.same(index, l.path)
        #expect(try found("site100") == 1 && found("late") == 1 && found("site102") == 0)
    }

    @Test("an older index, a rebuild, a replaced log: the file itself is emptied (it shrinks), not journalled")
    func emptiedByReset() throws {
        let l = try Log()
        l.incidents(0..<400)
        l.flush()
        let file = IncidentIndex.path(forLog: l.path)
        func size() -> Int { (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? -1 }
        var index = try IncidentIndex(logPath: l.path)
        try index.update()
        let full = size()
        // An older version's index (its schema's number is all that tells): emptied at the
        // first open, then read again from the log. A DROP of its tables would have kept the
        // file's size (its pages only freed), after copying them into the journal.
        try index.db.write { try $0.execute(sql: "UPDATE meta SET value = '5' WHERE key = 'schema'") }
        index = try IncidentIndex(logPath: l.path)
        #expect(size() < full / 4, "\(size()) of \(full)")
        #expect(try index.incidents(IncidentIndex.Query()).isEmpty && !(try index.isCurrent()))
        #expect(try index.update().incidents == 400)
        try Self.same(index, l.path)
        // A rebuild over a full index, and a log replaced by a shorter one: the same.
        let before = size()
        let u = try index.rebuild()
        #expect(u.rebuilt && u.incidents == 400 && size() <= before)
        try FileManager.default.removeItem(atPath: l.path)
        let other = try Log(path: l.path)
        other.incidents(1000..<1003)
        other.flush()
        #expect(try index.update() == IncidentIndex.Update(rebuilt: true, lines: try lines(l.path).count, incidents: 3))
        #expect(size() < before / 4, "\(size()) of \(before)")
        try Self.same(index, l.path)
        #expect(!FileManager.default.fileExists(atPath: file + "-journal"))
    }

    @Test("a corrupt or deleted index is made again from the log")
    func corruptIndex() throws {
        let l = try Log()
        l.incidents(0..<12)
        l.flush()
        let path = IncidentIndex.path(forLog: l.path)
        do {
            let index = try IncidentIndex(logPath: l.path)
            try index.update()
        }
        // Garbage over the database's header and pages.
        let fd = open(path, O_WRONLY)
        var junk = [UInt8](repeating: 0x5A, count: 8192)
        _ = junk.withUnsafeMutableBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        close(fd)
        let remade = try IncidentIndex(logPath: l.path)
        #expect(try remade.update().incidents == 12)
        try Self.same(remade, l.path)
        try FileManager.default.removeItem(atPath: path)
        let fresh = try IncidentIndex(logPath: l.path)
        #expect(try fresh.update().incidents == 12)
        try Self.same(fresh, l.path)
    }
}
