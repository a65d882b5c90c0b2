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
        #expect(poll { lines(path).contains { $0.contains(#""id":"c""#) } })
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        log.reopen()
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
        defer {
            for f in [path, path + ".1", path + ".chain", dated] { try? FileManager.default.removeItem(atPath: f) }
        }
        // An older rotation from before, with a chain of its own.
        try HashChainTests.chainText(2).write(toFile: path + ".1", atomically: false, encoding: .utf8)
        let log = try startedLog(path, logger: logger)
        log.append(#"{"event":"incident","id":"a"}"#, urgent: true)
        var deadline = Date() + 5
        while lines(path).count < 1 && Date() < deadline { usleep(10_000) }
        try FileManager.default.moveItem(atPath: path, toPath: dated)
        // The coordinator's tool appends to the moved file before esafetyd reopens.
        try IncidentLog.appendEvents(path: dated, group: nil) { _ in
            [ActionRecord(.note, id: "a", time: "2026-11-21T10:00:00.000Z", by: "dsl", note: "seen")]
        }
        log.reopen()
        log.append(#"{"event":"incident","id":"b"}"#, urgent: true)
        deadline = Date() + 5
        while lines(path).count < 1 && Date() < deadline { usleep(10_000) }
        log.stop()
        let old = try String(contentsOfFile: dated, encoding: .utf8)
        let new = try String(contentsOfFile: path, encoding: .utf8)
        #expect(old.split(separator: "\n").count == 2)
        let oldLast = try #require(HashChain.split(old.split(separator: "\n").last!)).chain
        #expect(json(String(new.split(separator: "\n")[0]))["prev"] as? String == oldLast)
        let v = HashChain.check(files: [(dated, old), (path, new)])
        #expect(v.failure == nil && v.checked == 3, "\(v.failure?.description ?? "")")
    }

    @Test("rotated while stopped: a new empty log continues from LOG.1's last line, else from LOG.chain")
    func rotatedWhileStopped() throws {
        let path = tempPath() + ".jsonl"
        defer {
            for f in [path, path + ".1", path + ".1.gz", path + ".chain"] {
                try? FileManager.default.removeItem(atPath: f)
            }
        }
        func session(_ id: String) throws {
            let log = try startedLog(path, logger: logger)
            log.append("{\"event\":\"incident\",\"id\":\"\(id)\"}", urgent: true)
            log.stop()
        }
        try session("a")
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        try FileManager.default.removeItem(atPath: path + ".chain")  // LOG.1 alone must carry it
        try session("b")
        var (failure, checked) = HashChain.verify(files: [
            (path + ".1", try String(contentsOfFile: path + ".1", encoding: .utf8)),
            (path, try String(contentsOfFile: path, encoding: .utf8)),
        ])
        #expect(failure == nil)
        #expect(checked == 2)
        // LOG.1 compressed away by logrotate: the value saved at the last close carries on.
        let previous = try String(contentsOfFile: path, encoding: .utf8)
        try FileManager.default.removeItem(atPath: path + ".1")
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1.gz")
        try session("c")
        (failure, checked) = HashChain.verify(files: [
            ("old", previous), (path, try String(contentsOfFile: path, encoding: .utf8)),
        ])
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
            for _ in 0..<200 where !notes().contains(where: { $0.contains("incidents.chain=\(chain)") }) {
                usleep(10_000)
            }
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

    @Test(
        "lines removed while esafetyd runs: a truncated event names the cut and verify fails there",
        arguments: [false, true]
    )
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
        #expect(
            log.status.tampering?.contains("the log was cut short (\(kept.utf8.count) bytes") == true,
            "\(log.status)"
        )
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
        #expect(
            v.failure?.message.contains("cut short") == true && v.failure?.message.contains(lastChain) == true,
            "\(v.failure?.description ?? "no failure")"
        )
        #expect(v.checked == cutAt)
    }

    @Test("the log deleted while esafetyd writes it: its lines are recovered, a new log starts and says so")
    func deletedWhileRunning() throws {
        let path = tempPath() + ".jsonl"
        let log = try startedLog(path, logger: logger)
        var stopped = false
        defer {
            if !stopped { log.stop() }
            let folder = (path as NSString).deletingLastPathComponent
            let name = (path as NSString).lastPathComponent
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
        #expect(
            log.status.tampering?.contains("the log was deleted; its lines are saved in \(path).recovered-") == true,
            "\(log.status)"
        )
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
        #expect(
            v.failure?.message.contains("deleted") == true && v.failure?.message.contains(recovered) == true,
            "\(v.failure?.description ?? "no failure")"
        )
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

    @Test(
        "an unwritable log keeps every critical and high record queued; only ordinary ones past the bound drop, counted"
    )
    func fullDisk() throws {
        // /dev/full fails every write with ENOSPC, like a full disk.
        let spill = TempDir()
        let log = IncidentLog(
            path: "/dev/full",
            syncInterval: 0.05,
            bound: 3,
            spillDirectory: spill.path,
            logger: logger
        )
        try log.open()
        log.start()
        log.append("{\"event\":\"incident\",\"id\":\"first\"}", urgent: true)
        #expect(poll { !log.status.writing })
        // Behind a full queue of ordinary records, critical ones (a queue of 101,000 ordinary
        // records once dropped a critical incident).
        // Five medium incidents of two pupils: dropped, but who and what they were is kept.
        for i in 0..<5 {
            log.append(
                "{\"event\":\"incident\",\"id\":\"m\(i)\",\"time\":\"2026-12-02T10:00:0\(i)Z\","
                    + "\"client\":\"10.0.0.\(i % 2)\",\"category\":\"gambling\",\"severity\":\"medium\"}",
                urgent: false
            )
        }
        for i in 0..<4 { log.append("{\"event\":\"incident\",\"id\":\"c\(i)\"}", urgent: true) }
        // The five critical records fill the bound: every ordinary one is dropped, each once.
        #expect(poll { log.status.queued == 5 && log.status.lost == 5 }, "\(log.status)")
        let h = log.status
        #expect(h.writing == false)
        #expect(h.lastError?.contains("No space") == true)
        // Retries do not count them again.
        usleep(1_200_000)
        #expect(log.status.lost == 5)
        log.stop()
        // What could not be written is in the spill file, after one `lost` line for the five.
        let spilled = lines(spill.path + "/incidents.spill")
        #expect(spilled.count == 6, "\(spilled)")
        #expect(spilled.first?.contains("\"event\":\"lost\",") == true)
        #expect(spilled.first?.contains("\"count\":5,") == true)
        #expect(spilled.first?.contains("No space left on device") == true)
        // Exact tallies of the dropped incidents, per person, category and severity.
        let lost = try #require(LogRecord(line: spilled.first ?? ""))
        guard case .lost(let record) = lost else { throw TestFailure(message: "not a lost line: \(lost)") }
        #expect(
            record.incidents
                == [
                    LostRecord.Summary(
                        person: "10.0.0.0",
                        category: "gambling",
                        severity: "medium",
                        count: 3,
                        first: "2026-12-02T10:00:00Z",
                        last: "2026-12-02T10:00:04Z"
                    ),
                    LostRecord.Summary(
                        person: "10.0.0.1",
                        category: "gambling",
                        severity: "medium",
                        count: 2,
                        first: "2026-12-02T10:00:01Z",
                        last: "2026-12-02T10:00:03Z"
                    ),
                ]
        )
        // The next start writes them first into a real log, seals them into the chain, and
        // removes the spill file.
        let path = spill.path + "/incidents.jsonl"
        let next = IncidentLog(path: path, syncInterval: 0.05, spillDirectory: spill.path, logger: logger)
        try next.open()
        next.start()
        next.append("{\"event\":\"incident\",\"id\":\"after\"}", urgent: true)
        #expect(poll { lines(path).count == 7 })
        next.stop()
        let written = lines(path)
        #expect(written.filter { $0.contains("\"event\":\"lost\"") }.count == 1)
        for id in ["first", "c0", "c1", "c2", "c3", "after"] {
            #expect(written.contains { $0.contains("\"id\":\"\(id)\"") }, "\(id)")
        }
        #expect(HashChain.verifyText(path: path).0 == nil)
        #expect(!FileManager.default.fileExists(atPath: spill.path + "/incidents.spill"))
    }

    @Test("a full queue while the log can be written slows the producer; nothing is lost")
    func backpressure() throws {
        let dir = TempDir()
        let path = dir.path + "/incidents.jsonl"
        let log = IncidentLog(path: path, syncInterval: 0.05, bound: 10, logger: logger)
        try log.open()
        log.start()
        for i in 0..<1000 { log.append("{\"event\":\"incident\",\"id\":\"\(i)\"}", urgent: false) }
        log.stop()
        #expect(log.status.lost == 0)
        #expect(lines(path).count == 1000)
        #expect(!lines(path).contains { $0.contains("\"event\":\"lost\"") })
    }

    @Test("a symbolic link where the log should be is refused by esafetyd's writer and the tool, its target untouched")
    func symlinkRefused() throws {
        let dir = TempDir()
        let target = dir.path + "/elsewhere"
        dir.write("elsewhere", "not the incident log\n")
        #expect(chmod(target, 0o644) == 0)
        let path = dir.path + "/incidents.jsonl"
        #expect(symlink(target, path) == 0)
        let log = IncidentLog(path: path, syncInterval: 0.05, logger: logger)
        let opened = #expect(throws: FileSystem.Error.self) { try log.open() }
        #expect(opened?.description.contains("symbolic link") == true)
        let acted = #expect(throws: IncidentLog.ActFailure.self) {
            try IncidentLog.appendEvents(path: path, group: nil) { _ in
                [ActionRecord(.note, id: "x", time: "2026-11-21T10:00:00.000Z", by: "dsl", note: "n")]
            }
        }
        #expect(acted?.description.contains("symbolic link") == true)
        var st = stat()
        #expect(stat(target, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o644, "the target was not chmod'ed")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "not the incident log\n")
    }
}
