import Foundation
import Logging
import Pipeline
import Synchronization
import SystemSupport
import Testing
@testable import Classifier
@testable import Incidents
@testable import LogFormats

extension IncidentLog {
    /// A record from text: critical (written and fsync'd at once) or not.
    func append(_ object: String, urgent: Bool) { append(bytes: Array(object.utf8), durability: urgent ? .now : .interval) }
}

/// An incident log at `path`, opened and writing (fsyncs every 50 ms).
func startedLog(_ path: String, headInterval: Double = 3600, logger: Logger) throws -> IncidentLog {
    let log = IncidentLog(path: path, syncInterval: 0.05, headInterval: headInterval, logger: logger)
    try log.open()
    log.start()
    return log
}

/// Keeps what a logger is given (for asserting on esafetyd's own log).
final class CapturedLog: LogHandler, @unchecked Sendable {
    private let lines = Mutex<[String]>([])
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { metadata[key] } set { metadata[key] = newValue } }
    func log(event: LogEvent) {
        let text = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lines.withLock { $0.append("\(event.level) \(event.message) \(text)") }
    }
    var messages: [String] { lines.withLock { $0 } }
}

func tempPath() -> String { "/tmp/esi-" + String(UUID().uuidString.prefix(8)) }

func lines(_ path: String) -> [String] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
}

func json(_ line: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
}

func match(_ host: String, url: String? = nil, user: String? = "pupil1", client: String = "10.1.2.3", time: Double,
           category: String = "gambling", severity: String = "medium", locked: Bool = false) -> MatchedRequest {
    MatchedRequest(time: time, client: client, user: user, host: host, url: url, method: "GET", action: .allowed, format: .squid,
                   source: "ingest:squid",
                   categories: [MatchDetail(name: category, severity: Severity(name: severity)!, locked: locked, kind: .domain,
                                            file: "Blocklists/\(category)/domains", line: 3, rule: host)],
                   generation: 1)
}

@Suite("SHA-256 and the hash chain")
struct HashChainTests {
    @Test("SHA-256 test vectors", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func vectors(input: String, digest: String) {
        #expect(SHA256.hex(Array(input.utf8)) == digest)
    }

    static func chainText(_ n: Int) -> String {
        var previous = HashChain.genesis
        var text = ""
        for i in 0..<n {
            let (line, chain) = HashChain.seal("{\"event\":\"incident\",\"id\":\"inc-\(i)\"}", previous: previous)
            text += line + "\n"
            previous = chain
        }
        return text
    }

    @Test("an intact chain verifies")
    func intact() {
        let (failure, checked) = HashChain.verify(files: [("log", Self.chainText(5))])
        #expect(failure == nil)
        #expect(checked == 5)
    }

    @Test("an edited, a removed, an inserted and a truncated line are named", arguments: [
        ("edited", 3), ("removed", 3), ("inserted", 3), ("truncated", 5),
    ])
    func tampering(kind: String, line: Int) {
        var rows = Self.chainText(5).split(separator: "\n").map(String.init)
        switch kind {
        case "edited": rows[2] = rows[2].replacingOccurrences(of: "inc-2", with: "inc-X")
        case "removed": rows.remove(at: 2)
        case "inserted": rows.insert(rows[1], at: 2)
        default: rows[4] = String(rows[4].prefix(30))
        }
        var text = rows.joined(separator: "\n") + "\n"
        if kind == "truncated" { text.removeLast() }
        let (failure, _) = HashChain.verify(files: [("log", text)])
        #expect(failure?.line == line, "\(failure?.description ?? "no failure")")
    }

    @Test("lines removed from the end verify on their own; a head recorded earlier shows them gone")
    func recordedHead() throws {
        let text = Self.chainText(5)
        let rows = text.split(separator: "\n")
        let intact = HashChain.check(files: [("log", text)])
        #expect(intact.failure == nil)
        let head = try #require(intact.head)
        #expect(head.line == 5 && head.file == "log" && rows[4].hasSuffix("\"chain\":\"\(head.chain)\"}"))
        let third = try #require(HashChain.split(rows[2])).chain
        // The last two lines removed: the chain alone cannot tell.
        let cut = rows.prefix(3).joined(separator: "\n") + "\n"
        #expect(HashChain.check(files: [("log", cut)]).failure == nil)
        // With the head recorded before the cut (12 hex digits, in capitals, are enough), it can.
        let missing = HashChain.check(files: [("log", cut)], heads: [String(head.chain.prefix(12)).uppercased()])
        #expect(missing.failure?.line == 4)
        #expect(missing.failure?.message.contains("removed") == true, "\(missing.failure?.description ?? "no failure")")
        #expect(HashChain.check(files: [("log", text)], heads: [String(head.chain.prefix(12)), third]).failure == nil)
        #expect(HashChain.check(files: [("log", cut)], heads: [third]).failure == nil)
    }
}

@Suite("The incident log", .serialized)
struct IncidentLogTests {
    let logger = Logger(label: "test")

    @Test("records are sealed, 0640, and the chain continues across restarts and rotation")
    func restartAndRotation() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".1", path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        var log = try startedLog(path, logger: logger)
        log.append(#"{"event":"incident","id":"a"}"#, urgent: true)
        log.append(#"{"event":"incident","id":"b"}"#, urgent: false)
        log.stop()
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o640)
        // A restart continues the chain.
        log = try startedLog(path, logger: logger)
        log.append(#"{"event":"incident","id":"c"}"#, urgent: true)
        // Rotation: move the file away, reopen; the new file's first line names the previous chain.
        usleep(100_000)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        log.reopen()
        usleep(100_000)
        log.append(#"{"event":"incident","id":"d"}"#, urgent: true)
        log.stop()
        let old = try String(contentsOfFile: path + ".1", encoding: .utf8)
        let new = try String(contentsOfFile: path, encoding: .utf8)
        #expect(old.split(separator: "\n").count == 3)
        #expect(new.contains("\"prev\":\""))
        let (failure, checked) = HashChain.verify(files: [(path + ".1", old), (path, new)])
        #expect(failure == nil, "\(failure?.description ?? "")")
        #expect(checked == 4)
        // The rotated file alone is missing: verifying only the new one against the old fails? No: it
        // verifies on its own (its first line carries prev), but skipping the old file's last line is caught:
        let truncatedOld = old.split(separator: "\n").dropLast().joined(separator: "\n") + "\n"
        let (gap, _) = HashChain.verify(files: [(path + ".1", truncatedOld), (path, new)])
        #expect(gap?.file == path && gap?.line == 1)
        // Readers across the files: a partial line at the end of LOG.1 (a writer killed
        // mid-write) is skipped and does not swallow LOG's first incident.
        #expect(try IncidentStore.load(path).map(\.id) == ["a", "b", "c", "d"])
        try (old + #"{"event":"incident","id":"e","ti"#).write(toFile: path + ".1", atomically: false, encoding: .utf8)
        #expect(try IncidentStore.load(path).map(\.id) == ["a", "b", "c", "d"])
    }

    @Test("rotated under another name (dateext) beside an older LOG.1: the new log follows the file esafetyd had open")
    func rotatedWithDateext() throws {
        let path = tempPath() + ".jsonl"
        let dated = path + "-20261121"
        defer { for f in [path, path + ".1", path + ".chain", dated] { try? FileManager.default.removeItem(atPath: f) } }
        // An older rotation from before, with a chain of its own.
        try HashChainTests.chainText(2).write(toFile: path + ".1", atomically: false, encoding: .utf8)
        let log = try startedLog(path, logger: logger)
        log.append(#"{"event":"incident","id":"a"}"#, urgent: true)
        var deadline = Date() + 5
        while lines(path).count < 1 && Date() < deadline { usleep(10_000) }
        try FileManager.default.moveItem(atPath: path, toPath: dated)
        // The coordinator's tool appends to the moved file before esafetyd reopens.
        try IncidentLog.appendEvents(path: dated, group: nil) { _ in [ActionRecord(.note, id: "a", time: "2026-11-21T10:00:00.000Z", by: "dsl", note: "seen")] }
        log.reopen()
        log.append(#"{"event":"incident","id":"b"}"#, urgent: true)
        deadline = Date() + 5
        while lines(path).count < 1 && Date() < deadline { usleep(10_000) }
        log.stop()
        let old = try String(contentsOfFile: dated, encoding: .utf8), new = try String(contentsOfFile: path, encoding: .utf8)
        #expect(old.split(separator: "\n").count == 2)
        let oldLast = try #require(HashChain.split(old.split(separator: "\n").last!)).chain
        #expect(json(String(new.split(separator: "\n")[0]))["prev"] as? String == oldLast)
        let v = HashChain.check(files: [(dated, old), (path, new)])
        #expect(v.failure == nil && v.checked == 3, "\(v.failure?.description ?? "")")
    }

    @Test("rotated while stopped: a new empty log continues from LOG.1's last line, else from LOG.chain")
    func rotatedWhileStopped() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".1", path + ".1.gz", path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        func session(_ id: String) throws {
            let log = try startedLog(path, logger: logger)
            log.append("{\"event\":\"incident\",\"id\":\"\(id)\"}", urgent: true)
            log.stop()
        }
        try session("a")
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        try FileManager.default.removeItem(atPath: path + ".chain")  // LOG.1 alone must carry it
        try session("b")
        var (failure, checked) = HashChain.verify(files: [(path + ".1", try String(contentsOfFile: path + ".1", encoding: .utf8)),
                                                          (path, try String(contentsOfFile: path, encoding: .utf8))])
        #expect(failure == nil)
        #expect(checked == 2)
        // LOG.1 compressed away by logrotate: the value saved at the last close carries on.
        let previous = try String(contentsOfFile: path, encoding: .utf8)
        try FileManager.default.removeItem(atPath: path + ".1")
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1.gz")
        try session("c")
        (failure, checked) = HashChain.verify(files: [("old", previous), (path, try String(contentsOfFile: path, encoding: .utf8))])
        #expect(failure == nil)
        #expect(checked == 2)
    }

    @Test("a torn last line (crash mid-write) is removed on open and the chain continues")
    func tornLine() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        var log = try startedLog(path, logger: logger)
        log.append(#"{"event":"incident","id":"a"}"#, urgent: true)
        log.stop()
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        h.seekToEndOfFile()
        h.write(Data(#"{"event":"incident","id":"half"#.utf8))
        try h.close()
        log = try startedLog(path, logger: logger)
        log.append(#"{"event":"incident","id":"b"}"#, urgent: true)
        log.stop()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("half"))
        #expect(HashChain.verify(files: [(path, text)]).0 == nil)
        #expect(lines(path).count == 2)
    }

    @Test("the chain's head goes to esafetyd's own log every interval when it moved, and not when it did not")
    func headNoted() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let captured = CapturedLog()
        let log = try startedLog(path, headInterval: 0.2, logger: Logger(label: "test") { _ in captured })
        func notes() -> [String] { captured.messages.filter { $0.contains("incident log chain head") } }
        func waitForNote(_ chain: String) {
            for _ in 0..<200 where !notes().contains(where: { $0.contains("incidents.chain=\(chain)") }) { usleep(10_000) }
        }
        for id in ["a", "b"] {
            log.append("{\"event\":\"incident\",\"id\":\"\(id)\"}", urgent: true)
            for _ in 0..<200 where !lines(path).contains(where: { $0.contains("\"id\":\"\(id)\"") }) { usleep(10_000) }
            let last = try #require(lines(path).last)
            let chain = try #require(HashChain.split(Substring(last))).chain
            waitForNote(chain)
            #expect(notes().last?.contains("incidents.chain=\(chain)") == true, "\(notes())")
        }
        let count = notes().count
        usleep(600_000)  // three intervals with nothing written
        #expect(notes().count == count, "\(notes())")
        log.stop()
    }

    @Test("lines removed while esafetyd runs: a truncated event names the cut and verify fails there", arguments: [false, true])
    func cutWhileRunning(emptied: Bool) throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: logger)
        defer { log.stop() }
        for id in ["a", "b", "c"] { log.append("{\"event\":\"incident\",\"id\":\"\(id)\"}", urgent: true) }
        var deadline = Date() + 5
        while lines(path).count < 3 && Date() < deadline { usleep(10_000) }
        let before = lines(path)
        try #require(before.count == 3)
        let lastChain = try #require(HashChain.split(Substring(before[2]))).chain
        // Someone with write access removes the last two lines (or everything).
        let kept = emptied ? "" : before[0] + "\n"
        #expect(truncate(path, off_t(kept.utf8.count)) == 0)
        // The writer notices at its next wake-up, with no incident to write.
        deadline = Date() + 5
        while !lines(path).contains(where: { $0.contains("\"truncated\"") }) && Date() < deadline { usleep(10_000) }
        log.append(#"{"event":"incident","id":"d"}"#, urgent: true)
        deadline = Date() + 5
        while !lines(path).contains(where: { $0.contains("\"id\":\"d\"") }) && Date() < deadline { usleep(10_000) }
        let after = lines(path)
        #expect(log.status.tampering?.contains("the log was cut short (\(kept.utf8.count) bytes") == true, "\(log.status)")
        let cutAt = emptied ? 0 : 1
        try #require(after.count == cutAt + 2, "\(after)")
        let event = json(after[cutAt])
        #expect(event["event"] as? String == "truncated")
        #expect(event["size"] as? Int == kept.utf8.count)
        #expect(event["expected_size"] as? Int == before.joined(separator: "\n").utf8.count + 1)
        #expect(event["last_chain"] as? String == lastChain)
        if emptied { #expect(event["prev"] as? String == lastChain) }
        // The chain itself is whole (the event follows what is left), but verify names the cut.
        let v = HashChain.check(files: [(path, try String(contentsOfFile: path, encoding: .utf8))])
        #expect(v.failure?.line == cutAt + 1)
        #expect(v.failure?.message.contains("cut short") == true && v.failure?.message.contains(lastChain) == true,
                "\(v.failure?.description ?? "no failure")")
        #expect(v.checked == cutAt)
    }

    @Test("the log deleted while esafetyd writes it: its lines are recovered, a new log starts and says so")
    func deletedWhileRunning() throws {
        let path = tempPath() + ".jsonl"
        let log = try startedLog(path, logger: logger)
        var stopped = false
        defer {
            if !stopped { log.stop() }
            let folder = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
            for f in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where f.hasPrefix(name) {
                try? FileManager.default.removeItem(atPath: folder + "/" + f)
            }
        }
        for id in ["a", "b"] { log.append("{\"event\":\"incident\",\"id\":\"\(id)\"}", urgent: true) }
        var deadline = Date() + 5
        while lines(path).count < 2 && Date() < deadline { usleep(10_000) }
        let before = try String(contentsOfFile: path, encoding: .utf8)
        let lastChain = try #require(HashChain.split(Substring(before.split(separator: "\n")[1]))).chain
        #expect(unlink(path) == 0)
        deadline = Date() + 5
        while !FileManager.default.fileExists(atPath: path) && Date() < deadline { usleep(10_000) }
        log.append(#"{"event":"incident","id":"c"}"#, urgent: true)
        deadline = Date() + 5
        while lines(path).count < 2 && Date() < deadline { usleep(10_000) }
        #expect(log.status.tampering?.contains("the log was deleted; its lines are saved in \(path).recovered-") == true, "\(log.status)")
        log.stop()
        stopped = true
        let after = lines(path)
        try #require(after.count == 2, "\(after)")
        let event = json(after[0])
        #expect(event["event"] as? String == "truncated")
        #expect(event["last_chain"] as? String == lastChain && event["prev"] as? String == lastChain)
        #expect(json(after[1])["id"] as? String == "c")
        // Everything written before the deletion is in the recovered file, 0640, and verifies.
        let recovered = try #require(event["recovered"] as? String)
        #expect(recovered.hasPrefix(path + ".recovered-"))
        #expect(try String(contentsOfFile: recovered, encoding: .utf8) == before)
        #expect((try FileManager.default.attributesOfItem(atPath: recovered)[.posixPermissions] as? Int) == 0o640)
        #expect(HashChain.verify(files: [(recovered, before)]).0 == nil)
        // The new log follows on from it, and verify names the deletion and the recovered file.
        let v = HashChain.check(files: [(recovered, before), (path, try String(contentsOfFile: path, encoding: .utf8))])
        #expect(v.failure?.file == path && v.failure?.line == 1 && v.checked == 2)
        #expect(v.failure?.message.contains("deleted") == true && v.failure?.message.contains(recovered) == true,
                "\(v.failure?.description ?? "no failure")")
        // Readers, the report and verify find the copy where its chain goes on, also after
        // the new log is rotated: the coordinator still sees a, b and c.
        #expect(IncidentStore.withRotations(path) == [recovered, path])
        #expect(try IncidentStore.load(path).map(\.id) == ["a", "b", "c"])
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        let next = try startedLog(path, logger: logger)
        next.append(#"{"event":"incident","id":"d"}"#, urgent: true)
        next.stop()
        #expect(IncidentStore.withRotations(path) == [recovered, path + ".1", path])
        #expect(try IncidentStore.load(path).map(\.id) == ["a", "b", "c", "d"])
        let files = try IncidentStore.withRotations(path).map { ($0, try String(contentsOfFile: $0, encoding: .utf8)) }
        #expect(HashChain.check(files: files).failure?.file == path + ".1")
    }

    @Test("an unwritable log keeps incidents queued, says so, and writes them when it can")
    func fullDisk() throws {
        // /dev/full fails every write with ENOSPC, like a full disk.
        let log = IncidentLog(path: "/dev/full", syncInterval: 0.05, bound: 3, logger: logger)
        try log.open()
        log.start()
        for i in 0..<5 { log.append("{\"event\":\"incident\",\"id\":\"\(i)\"}", urgent: true) }
        usleep(300_000)
        let h = log.status
        #expect(h.writing == false)
        #expect(h.lastError?.contains("No space") == true)
        #expect(h.queued + h.lost == 5)
        #expect(h.lost == 2)
        log.stop()
    }
}

@Suite("Incidents: policy and de-duplication")
struct IncidentSinkTests {
    let logger = Logger(label: "test")

    func run(_ matches: [MatchedRequest], policy: Policy = Policy()) throws -> [[String: Any]] {
        try runLines(matches, policy: policy).map(json)
    }

    func runLines(_ matches: [MatchedRequest], policy: Policy = Policy()) throws -> [String] {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: logger)
        let sink = IncidentSink(log: log, policy: policy, suffixes: PublicSuffix(text: "com\nuk\nco.uk\n"))
        for m in matches { sink.accept(m) }
        sink.closeAll()
        log.stop()
        return lines(path)
    }

    @Test("a page that loads 80 resources is one incident; the window's final count follows")
    func deduplication() throws {
        var ms: [MatchedRequest] = []
        for i in 0..<80 { ms.append(match(i % 2 == 0 ? "www.bet365.com" : "static.bet365.com", url: "http://www.bet365.com/r\(i)", time: 1000 + Double(i) / 10)) }
        let records = try run(ms)
        #expect(records.filter { $0["event"] as? String == "incident" }.count == 1)
        let hits = try #require(records.first { $0["event"] as? String == "hits" })
        #expect(hits["hits"] as? Int == 80)
        #expect((hits["sample_urls"] as? [String])?.count == 5)
        #expect(hits["id"] as? String == records[0]["id"] as? String)
    }

    @Test("context: the person's other categorised requests in the hour before and after, no one else's")
    func context() throws {
        let raw = try runLines([
            match("games.example.com", time: 1000, category: "games", severity: "info"),               // counted only
            match("shop.example.com", url: "http://shop.example.com/search?q=knife", time: 1100, category: "shopping", severity: "info"),
            match("other.example.com", user: "pupil2", time: 1150, category: "games", severity: "info"), // someone else
            match("old.example.com", time: 1000 - 4000, category: "news", severity: "info"),            // out of order, too old
            match("www.bet365.com", time: 1200),                                                        // the incident
            match("chat.example.com", time: 1500, category: "chat", severity: "info"),                  // the hour after
            match("www.williamhill.com", time: 1600),                                                   // a second incident
            match("late.example.com", user: "pupil2", time: 1200 + 3601, category: "games", severity: "info"), // closes it
        ])
        let records = raw.map(json)
        let incidents = records.filter { $0["event"] as? String == "incident" }
        #expect(incidents.count == 2)
        let incident = try #require(incidents.first, "\(records)")
        let context = records.filter { $0["event"] as? String == "context" && $0["id"] as? String == incident["id"] as? String }
        let before = try #require(context.first { $0["span"] as? String == "before" }, "\(records)")
        let after = try #require(context.first { $0["span"] as? String == "after" })
        let hosts = { (e: [String: Any]) in (e["requests"] as? [[String: Any]] ?? []).compactMap { $0["host"] as? String } }
        #expect(hosts(before) == ["games.example.com", "shop.example.com"])
        #expect((before["requests"] as? [[String: Any]])?[1]["search_term"] as? String == "knife")
        #expect(hosts(after) == ["chat.example.com", "www.williamhill.com"])
        // The second incident, inside the first one's hour, shares its `after` event and
        // writes no `before` of its own; both incidents show it.
        #expect(after["ids"] as? [String] == incidents.compactMap { $0["id"] as? String })
        let views = IncidentStore.fold(raw.joined(separator: "\n"))
        #expect(views.count == 2)
        #expect(views.allSatisfy { $0.context.contains { $0.span == .after } })
        #expect(!records.contains { ($0["requests"] as? [[String: Any]])?.contains { $0["host"] as? String == "other.example.com" } == true })
        // Nobody without an incident has context written.
        #expect(context.count == 2)
        #expect(records.filter { $0["event"] as? String == "context" }.count == 2)
        var off = Policy()
        off.contextWindow = 0
        let none = try run([match("games.example.com", time: 1000, category: "games", severity: "info"), match("www.bet365.com", time: 1200)], policy: off)
        #expect(!none.contains { $0["event"] as? String == "context" })
    }

    @Test("a window or an hour after that ends between sweeps still has its count and context written")
    func expiryBetweenSweeps() throws {
        // Windows shorter than the sweep's second: the next request finds them expired
        // before any sweep has closed them.
        var short = Policy()
        short.deduplicationWindow = 0.5
        short.contextWindow = 0.5
        let records = try run([
            match("www.bet365.com", url: "http://www.bet365.com/a", time: 1000.0),
            match("www.bet365.com", url: "http://www.bet365.com/b", time: 1000.1),
            match("chat.example.com", time: 1000.2, category: "chat", severity: "info"),  // the hour (here 0.5 s) after
            match("www.bet365.com", url: "http://www.bet365.com/c", time: 1000.7),        // a new window
        ], policy: short)
        let incidents = records.filter { $0["event"] as? String == "incident" }
        #expect(incidents.count == 2)
        let first = try #require(incidents.first?["id"] as? String)
        let hits = try #require(records.first { $0["event"] as? String == "hits" && $0["id"] as? String == first }, "\(records)")
        #expect(hits["hits"] as? Int == 2)
        #expect(hits["sample_urls"] as? [String] == ["http://www.bet365.com/a", "http://www.bet365.com/b"])
        let after = try #require(records.first { $0["event"] as? String == "context" && $0["span"] as? String == "after" && $0["id"] as? String == first },
                                 "\(records)")
        #expect((after["requests"] as? [[String: Any]])?.compactMap { $0["host"] as? String } == ["www.bet365.com", "chat.example.com"])
    }

    @Test("device names by MAC: a DHCP lease in the logs ties the address to the device")
    func deviceByMAC() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: logger)
        let devices = try MappingFile.parse("A4:5E:60:D1:22:0B  Library PC 3\n10.9.9.9 Staff laptop\n", file: "devices")
        let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\n"), devices: devices)
        sink.lease(client: "10.0.0.57", mac: "a4:5e:60:d1:22:0b")
        sink.accept(match("www.bet365.com", user: nil, client: "10.0.0.57", time: 1000))
        sink.accept(match("www.bet365.com", user: nil, client: "10.9.9.9", time: 1000))
        sink.accept(match("www.bet365.com", user: nil, client: "10.0.0.99", time: 1000))
        sink.closeAll()
        log.stop()
        let records = lines(path).map(json).filter { $0["event"] as? String == "incident" }
        #expect(records.count == 3)
        #expect(records[0]["device"] as? String == "Library PC 3")
        #expect(records[0]["mac"] as? String == "a4:5e:60:d1:22:0b")
        #expect(records[1]["device"] as? String == "Staff laptop")
        #expect(records[2]["device"] is NSNull)
    }

    @Test("a new window, another person or another site opens a new incident")
    func windows() throws {
        let records = try run([
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

    @Test("every incident carries the documented keys")
    func schema() throws {
        let r = try #require(try run([match("www.bet365.com", url: "https://www.google.com/search?q=free+bets%21", time: 1795255200)]).first)
        for key in ["id", "time", "severity", "category", "group", "client", "user", "host", "url", "rule", "hits", "due",
                    "route", "search_term", "action", "source", "first_seen", "last_seen", "chain"] {
            #expect(r[key] != nil, "missing \(key)")
        }
        #expect(r["time"] as? String == "2026-11-21T10:00:00.000Z")
        #expect(r["due"] as? String == "2026-11-24T10:00:00.000Z")
        #expect(r["search_term"] as? String == "free bets!")
        #expect((r["rule"] as? [String: Any])?["line"] as? Int == 3)
    }

    /// The keys docs/INCIDENT-LOG.md gives each kind of line, by its section's heading.
    static func documentedKeys() throws -> [String: Set<String>] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/INCIDENT-LOG.md"), encoding: .utf8)
        var sections: [String: Set<String>] = [:]
        var current = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("## ") { current = String(line.dropFirst(3)); continue }
            guard line.hasPrefix("| `") else { continue }
            let cell = line.dropFirst(2).prefix { $0 != "|" }
            for name in cell.split(separator: ",") {
                let key = name.trimmingCharacters(in: .whitespaces)
                if key.hasPrefix("`") && key.hasSuffix("`") { sections[current, default: []].insert(String(key.dropFirst().dropLast())) }
            }
        }
        return sections
    }

    @Test("docs/INCIDENT-LOG.md names every key of every kind of line the log holds, and no key an incident lacks")
    func documentedSchema() throws {
        let docs = try Self.documentedKeys()
        let common = try #require(docs["On every line"])
        func section(_ prefix: String) throws -> Set<String> { try #require(docs.first { $0.key.hasPrefix(prefix) }?.value, "no section \(prefix)") }
        // Real lines: an incident with a device and a MAC, its window's count, its context,
        // a workflow action of each kind, lost and truncated events, all sealed into a chain.
        let sink = try runLines([
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
        lines.append(json(String(decoding: IncidentLog.lostEvent(count: 3), as: UTF8.self)))
        lines.append(json(String(decoding: IncidentLog.truncatedEvent(size: 0, expected: 9, lastChain: "x", recovered: "f", reason: "r"), as: UTF8.self)))
        var seen = Set<String>()
        for line in lines {
            let event = try #require(line["event"] as? String)
            seen.insert(event)
            let kind = ["incident", "hits", "context", "lost", "truncated"].contains(event) ? "`\(event)`" : "Workflow actions"
            let documented = try section(kind).union(common)
            for key in line.keys { #expect(documented.contains(key), "\(event): \(key) is not in docs/INCIDENT-LOG.md") }
        }
        #expect(seen.isSuperset(of: ["incident", "hits", "context", "ack", "escalate", "resolve", "lost", "truncated"]), "\(seen)")
        // Every key documented for an incident without "optional" is on a real one.
        let incident = try #require(sink.first { $0["event"] as? String == "incident" })
        for key in try section("`incident`") where key != "mac" {
            #expect(incident[key] != nil, "the docs promise \(key) on every incident")
        }
    }

    @Test("policy table", arguments: [
        // (group shift, category severity, locked, repeated) -> severity
        (0, "medium", false, false, "medium"),
        (1, "medium", false, false, "high"),
        (1, "high", false, false, "critical"),
        (-1, "high", false, false, "medium"),
        (-4, "medium", true, false, "critical"),
        (0, "low", false, true, "medium"),
        (2, "info", false, true, "info"),
    ])
    func severity(shift: Int, category: String, locked: Bool, repeated: Bool, expected: String) {
        var g = Policy.Group(name: "g")
        g.severityShift = shift
        #expect(Policy().severity(category: Severity(name: category)!, locked: locked, group: g, repeated: repeated).description == expected)
    }

    @Test("groups by network and user; first match wins; info is counted, not an incident")
    func groups() throws {
        var policy = Policy()
        var ks2 = Policy.Group(name: "ks2")
        ks2.networks = [Policy.network("10.2.0.0/16")!]
        ks2.severityShift = 1
        var staff = Policy.Group(name: "staff")
        staff.users = ["t.*"]
        staff.routes = [.medium: ["headteacher"]]
        policy.groups = [staff, ks2]
        #expect(policy.group(client: "10.2.3.4", user: nil).name == "ks2")
        #expect(policy.group(client: "10.2.3.4", user: "t.smith").name == "staff")
        #expect(policy.group(client: "10.3.3.4", user: "pupil").name == "default")
        let records = try run([
            match("www.bet365.com", user: nil, client: "10.2.3.4", time: 1000),
            match("www.bet365.com", user: "t.smith", client: "10.2.3.5", time: 1000),
            match("tiktok.com", time: 1000, category: "social-media", severity: "info"),
            match("abuse.example", time: 1000, category: "iwf", severity: "critical", locked: true),
        ], policy: policy).filter { $0["event"] as? String == "incident" }
        #expect(records.count == 3)
        #expect(records[0]["severity"] as? String == "high")
        #expect(records[0]["group"] as? String == "ks2")
        #expect(records[1]["route"] as? [String] == ["headteacher"])
        #expect(records[2]["severity"] as? String == "critical")
        #expect(records[2]["route"] as? [String] == ["DSL", "deputy DSL"])
    }

    @Test("after each reload, a person's group comes from the policy in force")
    func groupsAfterReload() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: logger)
        func policy(_ name: String) -> Policy {
            var p = Policy()
            var g = Policy.Group(name: name)
            g.networks = [Policy.network("10.0.0.0/8")!]
            p.groups = [g]
            return p
        }
        let sink = IncidentSink(log: log, policy: policy("g0"), suffixes: PublicSuffix(text: "com\n"))
        // Two reloads between this person's requests, many times: a policy freed by one
        // reload can leave its memory to the next.
        let between = policy("between"), policies = (0..<40).map { policy("g\($0)") }
        for i in 0..<40 {
            if i > 0 {
                sink.update(policy: between)
                sink.update(policy: policies[i])
            }
            sink.accept(match("site\(i).com", client: "10.1.2.3", time: 1000 + Double(i)))
        }
        sink.closeAll()
        log.stop()
        let groups = lines(path).map(json).filter { $0["event"] as? String == "incident" }.compactMap { $0["group"] as? String }
        #expect(groups == (0..<40).map { "g\($0)" })
    }

    @Test("a group's categories: only those raise incidents (locked lists always do); the rest are counted")
    func groupCategories() throws {
        var policy = Policy()
        var staff = Policy.Group(name: "staff")
        staff.users = ["t.*"]
        staff.categories = ["self-harm"]
        policy.groups = [staff]
        let both = MatchedRequest(time: 1000, client: "10.0.0.1", user: "t.smith", host: "mixed.com", url: nil, method: "GET",
                                  action: .allowed, format: .squid, source: "ingest:squid",
                                  categories: [MatchDetail(name: "gambling", severity: .high, locked: false, kind: .domain, file: "f", line: 1, rule: "mixed.com"),
                                               MatchDetail(name: "self-harm", severity: .medium, locked: false, kind: .domain, file: "g", line: 2, rule: "mixed.com")],
                                  generation: 1)
        let records = try run([
            match("www.bet365.com", user: "t.smith", time: 1000),                                            // not for staff
            match("abuse.example", user: "t.smith", time: 1001, category: "iwf", severity: "critical", locked: true),
            both,                                                                                           // raised as self-harm
            match("www.bet365.com", user: "pupil1", time: 1002),                                             // default group: all
        ], policy: policy).filter { $0["event"] as? String == "incident" }
        #expect(records.map { $0["category"] as? String } == ["iwf", "self-harm", "gambling"])
        #expect(records.map { $0["group"] as? String } == ["staff", "staff", "default"])
    }

    @Test("repetition raises severity one step")
    func repetition() throws {
        let ms = (0..<5).map { match("site\($0).com", time: 1000 + Double($0) * 60) }
        let records = try run(ms).filter { $0["event"] as? String == "incident" }
        #expect(records.map { $0["severity"] as? String } == ["medium", "medium", "medium", "medium", "high"])
    }

    @Test("registrable domains from the Public Suffix List", arguments: [
        ("www.example.co.uk", "example.co.uk"), ("a.b.example.com", "example.com"), ("example.com", "example.com"),
        ("co.uk", "co.uk"), ("10.0.0.1", "10.0.0.1"), ("x.city.kawasaki.jp", "city.kawasaki.jp"), ("x.y.kobe.jp", "x.y.kobe.jp"),
    ])
    func suffixes(host: String, expected: String) {
        let psl = PublicSuffix(text: "com\nuk\nco.uk\njp\n*.kawasaki.jp\n!city.kawasaki.jp\n*.kobe.jp\n")
        #expect(psl.registrableDomain(host) == expected)
    }
}

@Suite("Time windows and mapping files")
struct WindowTests {
    @Test("windows by day and time, wrapping midnight", arguments: [
        // 2026-11-16 is a Monday. (day offset, "hh:mm", expected window)
        (0, "09:00", "school"), (0, "16:00", nil as String?), (5, "09:00", nil), (0, "22:00", "night"), (1, "05:00", "night"),
        (0, "05:00", "night"),
    ])
    func windows(dayOffset: Int, time: String, expected: String?) {
        var school = Policy.TimeWindow(name: "school")
        school.days = [1, 2, 3, 4, 5]
        school.start = 8 * 60 + 30
        school.end = 15 * 60 + 30
        var night = Policy.TimeWindow(name: "night")
        night.start = 21 * 60 + 30
        night.end = 6 * 60 + 30
        var g = Policy.Group(name: "boarders")
        g.windows = [school, night]
        let parts = time.split(separator: ":").map { Int($0)! }
        let t = 1_794_787_200.0 + Double(dayOffset * 86400 + parts[0] * 3600 + parts[1] * 60)
        #expect(Policy().window(for: g, time: t, utcOffset: 0)?.name == expected)
    }

    @Test("a window raises severity and changes the route; mapping files fill device and user")
    func windowIncident() throws {
        var night = Policy.TimeWindow(name: "night")
        night.start = 21 * 60
        night.end = 7 * 60
        night.severityShift = 1
        night.routes = [.high: ["on-call DSL"]]
        var g = Policy.Group(name: "boarders")
        g.networks = [Policy.network("10.30.0.0/16")!]
        g.windows = [night]
        var policy = Policy()
        policy.groups = [g]
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = IncidentLog(path: path, syncInterval: 0.05, logger: Logger(label: "t"))
        try log.open()
        log.start()
        let devices = try MappingFile.parse("# DHCP\n10.30.0.5 laptop-17\n", file: "devices")
        let users = try MappingFile.parse("10.30.0.5 boarder.jones\n", file: "users")
        let sink = IncidentSink(log: log, policy: policy, suffixes: PublicSuffix(text: "com\n"), devices: devices, users: users, utcOffset: 0)
        // 2026-11-21 23:00 UTC.
        sink.accept(match("www.bet365.com", user: nil, client: "10.30.0.5", time: 1_795_302_000))
        log.stop()
        let r = json(lines(path)[0])
        #expect(r["severity"] as? String == "high")
        #expect(r["window"] as? String == "night")
        #expect(r["route"] as? [String] == ["on-call DSL"])
        #expect(r["device"] as? String == "laptop-17")
        #expect(r["user"] as? String == "boarder.jones")
    }

    @Test("mapping file errors name file and line")
    func mappingErrors() {
        #expect(throws: MappingFile.Failure.self) { try MappingFile.parse("10.0.0.1\n", file: "m") }
        do { _ = try MappingFile.parse("10.0.0.1 a\n10.0.0.1 b\n", file: "m") } catch { #expect(error.description == "m:2: 10.0.0.1 is listed twice") }
    }
}

@Suite("esafety incidents tail, list, show")
struct IncidentsCommandTests {
    static let buildDirectory: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }()

    func esafety(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.buildDirectory + "/esafety")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("filters, newest first, JSON pass-through, history, escaped control characters")
    func commands() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = IncidentLog(path: path, syncInterval: 0.05, logger: Logger(label: "t"))
        try log.open()
        log.start()
        let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\n"), utcOffset: 0)
        // Times relative to now: the critical incident is two hours old (overdue: due within the hour).
        let now = Date().timeIntervalSince1970
        sink.accept(match("www.bet365.com", url: "http://www.bet365.com/a", time: now - 7300))
        sink.accept(match("www.bet365.com", url: "http://www.bet365.com/b", time: now - 7299))
        sink.accept(match("abuse.example", user: "evil\u{1B}[2J", time: now - 7200, category: "iwf", severity: "critical", locked: true))
        sink.accept(match("tinder.com", user: "pupil2", time: now - 60, category: "dating", severity: "medium"))
        sink.closeAll()
        log.stop()
        let (status, list) = try esafety(["incidents", "list", "--log", path])
        #expect(status == 0)
        let rows = list.split(separator: "\n")
        #expect(rows.count == 3)
        #expect(rows.first?.contains("dating") == true)   // newest first
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

    @Test("tail -f prints each incident once, as its line completes, also when a partial line is cut and replaced")
    func tailFollow() throws {
        let path = tempPath() + ".jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        func record(_ id: String) -> String { #"{"event":"incident","id":"\#(id)","time":"2026-11-21T10:00:00.000Z","severity":"high","category":"selfharm","group":"ks3","client":"10.0.0.1","user":"u","host":"h.example","url":null,"rule":{},"hits":1,"due":null}"# + "\n" }
        func append(_ text: String) throws {
            let h = try #require(FileHandle(forWritingAtPath: path))
            h.seekToEndOfFile()
            h.write(Data(text.utf8))
            try h.close()
        }
        try record("inc-old").write(toFile: path, atomically: false, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.buildDirectory + "/esafety")
        p.arguments = ["incidents", "tail", "-f", "--json", "-n", "0", "--log", path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        usleep(500_000)
        // A whole line; then the first half of one (being written, or a writer killed).
        try append(record("inc-a"))
        let b = record("inc-b")
        try append(String(b.prefix(60)))
        usleep(700_000)
        // The next writer cuts the partial line and appends whole ones.
        let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(truncate(path, off_t(size - 60)) == 0)
        try append(record("inc-c") + b)
        usleep(700_000)
        kill(p.processIdentifier, SIGKILL)  // SIGTERM may be blocked in a test runner's children
        p.waitUntilExit()
        let ids = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").map { ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["id"] as? String ?? "unreadable: \($0)" }
        #expect(ids == ["inc-a", "inc-c", "inc-b"])
    }
}
