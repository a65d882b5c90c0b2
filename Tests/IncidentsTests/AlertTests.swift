import Foundation
import Logging
import Synchronization
import SystemSupport
import TestSupport
import Testing

@testable import Classifier
@testable import Incidents

/// Instant alerts with real child processes (/bin/sh), real pipes and real timeouts.
@Suite("Instant alerts")
struct AlertTests {
    final class Recorded: Sendable {
        let events = Mutex<[(String, Bool, String?)]>([])
        func add(_ c: String, _ ok: Bool, _ e: String?) { events.withLock { $0.append((c, ok, e)) } }
    }

    static func settings(_ script: String, retries: Int = 3, timeout: Double = 5) -> AlertDispatcher.Settings {
        var s = AlertDispatcher.Settings()
        s.commands = [.init(name: "test", argv: ["/bin/sh", "-c", script])]
        s.retries = retries
        s.backoff = 0.05
        s.timeout = timeout
        return s
    }

    static func waitUntil(_ condition: () -> Bool) {
        for _ in 0..<500 {
            guard !condition() else { break }
            usleep(10_000)
        }
    }

    @Test("the incident arrives as JSON on standard input; one alert per person and category within the rate limit")
    func payloadAndRateLimit() throws {
        let out = tempPath()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let recorded = Recorded()
        let d = AlertDispatcher(
            settings: Self.settings("cat >> \(out)"),
            logger: Logger(label: "test"),
            record: recorded.add
        )
        d.start()
        let record = #"{"event":"incident","id":"inc-1","severity":"critical","category":"selfharm","user":"p1"}"#
        d.incident(record, id: "inc-1", severity: .critical, person: "p1", category: "selfharm", now: 100)
        // within 600 s
        d.incident(record, id: "inc-2", severity: .critical, person: "p1", category: "selfharm", now: 200)
        d.incident(record, id: "inc-3", severity: .high, person: "p1", category: "adult", now: 200)  // another category
        d.incident(record, id: "inc-4", severity: .medium, person: "p2", category: "gambling", now: 200)  // not alerted
        // after the limit
        d.incident(record, id: "inc-5", severity: .critical, person: "p1", category: "selfharm", now: 701)
        Self.waitUntil { d.status.sent == 3 }
        d.stop()
        #expect(d.status.sent == 3)
        #expect(d.status.rateLimited == 1)
        let lines = (try String(contentsOfFile: out, encoding: .utf8)).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
        #expect(recorded.events.withLock { $0.map(\.1) } == [true, true, true])
    }

    @Test("a failing command is retried with backoff until it succeeds")
    func retries() throws {
        let count = tempPath()
        defer { try? FileManager.default.removeItem(atPath: count) }
        // Fails twice (exit 75, as sendmail does when the mail server is down), then works.
        let script =
            "cat >/dev/null; n=$(cat \(count) 2>/dev/null || echo 0); n=$((n+1)); echo $n > \(count); [ $n -ge 3 ] || exit 75"
        let recorded = Recorded()
        let d = AlertDispatcher(settings: Self.settings(script), logger: Logger(label: "test"), record: recorded.add)
        d.start()
        d.incident("{}", id: "inc-1", severity: .high, person: "p1", category: "adult", now: 0)
        Self.waitUntil { d.status.sent == 1 }
        d.stop()
        #expect(d.status.sent == 1)
        #expect(d.status.retried == 2)
        #expect(d.status.failed == 0)
        #expect(
            try String(contentsOfFile: count, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "3"
        )
        #expect(d.status.lastError?.contains("exit status 75") == true)
    }

    @Test("a command that hangs is killed at the timeout, and after its retries the failure is recorded")
    func timeout() throws {
        let recorded = Recorded()
        let d = AlertDispatcher(
            settings: Self.settings("sleep 30", retries: 1, timeout: 0.3),
            logger: Logger(label: "test"),
            record: recorded.add
        )
        d.start()
        let start = Date()
        d.incident("{}", id: "inc-1", severity: .critical, person: "p1", category: "iwf", now: 0)
        Self.waitUntil { d.status.failed == 1 }
        d.stop()
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(d.status.failed == 1)
        let events = recorded.events.withLock { $0 }
        #expect(events.count == 1)
        #expect(events.first?.1 == false)
        #expect(events.first?.2?.contains("timed out") == true)
        #expect(events.first?.2?.contains("2 attempt") == true)
    }

    @Test("overdue and unacknowledged: alerted again, until someone acknowledges")
    func overdue() throws {
        let out = tempPath()
        defer { try? FileManager.default.removeItem(atPath: out) }
        var settings = Self.settings("cat >> \(out)")
        settings.overdueRepeat = 1
        let d = AlertDispatcher(settings: settings, logger: Logger(label: "test"))
        d.start()
        let now = Date().timeIntervalSince1970
        d.incident(
            #"{"event":"incident","id":"inc-late"}"#,
            id: "inc-late",
            severity: .critical,
            person: "p1",
            category: "selfharm",
            due: now - 1,
            now: 0
        )
        d.incident(
            #"{"event":"incident","id":"inc-ontime"}"#,
            id: "inc-ontime",
            severity: .critical,
            person: "p2",
            category: "selfharm",
            due: now + 3600,
            now: 0
        )
        Self.waitUntil { d.status.sent >= 3 }
        // The coordinator acknowledges (a line the log writer passes on): no more repeats.
        d.workflowLine(#"{"event":"ack","id":"inc-late","time":"2026-11-21T10:00:00.000Z","by":"dsl","chain":"00"}"#)
        let sentAtAck = d.status.sent
        usleep(2_500_000)
        d.stop()
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.filter { $0.contains("\"alert\":\"overdue\"") }.allSatisfy { $0.contains("inc-late") })
        #expect(lines.filter { $0.contains("\"alert\":\"overdue\"") }.count >= 1)
        #expect(!lines.contains { $0.contains("inc-ontime") && $0.contains("overdue") })
        #expect(d.status.sent == sentAtAck, "no overdue alert after the acknowledgement")
        #expect(d.status.overdueAlerts >= 1)
    }

    @Test("a missing program is a failure with a reason, not a crash")
    func missingProgram() {
        #expect(ChildProcess.run(["/nonexistent/alert"], input: "{}", timeout: 1)?.contains("cannot run") == true)
        #expect(
            ChildProcess.run(["/bin/sh", "-c", "exit 0"], input: String(repeating: "x", count: 1 << 20), timeout: 5)
                == nil,
            "a command that does not read its input still succeeds"
        )
        // No shell unless asked for, and only PATH and LANG from the daemon's environment.
        let out = tempPath()
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(ChildProcess.run(["/usr/bin/env"], input: "{}", timeout: 5) == nil)
        #expect(ChildProcess.run(["/bin/sh", "-c", "env > \(out)"], input: "{}", timeout: 5) == nil)
        let names = Set(
            ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").map {
                String($0.prefix { $0 != "=" })
            }
        )
        #expect(names.subtracting(["PWD", "SHLVL", "_"]) == ["PATH", "LANG"], "\(names)")
    }
}

/// The spool between esafetyd (sandboxed) and `esafety alerts deliver` (its own unit).
@Suite("Spooled alerts")
struct AlertSpoolTests {
    @Test(
        "esafetyd spools each alert whole; delivery runs the command with the record, removes it, records the outcome"
    )
    func spoolAndDeliver() throws {
        let folder = tempPath()
        let out = tempPath()
        defer {
            for f in [folder, folder + ".tmp", folder + ".failed", out] {
                try? FileManager.default.removeItem(atPath: f)
            }
        }
        var settings = AlertTests.settings("cat >> \(out)")
        settings.spool = folder
        let d = AlertDispatcher(settings: settings, logger: Logger(label: "test"))
        d.start()
        d.incident(#"{"id":"inc-1","severity":"high"}"#, id: "inc-1", severity: .high, person: "p1", category: "c")
        d.incident(
            #"{"id":"inc-2","severity":"critical"}"#,
            id: "inc-2",
            severity: .critical,
            person: "p2",
            category: "c"
        )
        let spool = AlertSpool(folder: folder)
        AlertTests.waitUntil { spool.waiting().count == 2 }
        d.stop()
        #expect(spool.waiting().count == 2)
        #expect(!FileManager.default.fileExists(atPath: out), "esafetyd ran nothing itself")
        #expect(d.status.sent == 2)
        let first = try #require(spool.waiting().first)
        #expect(spool.read(first)?.command == "test")
        var outcomes: [(String, Bool, String)] = []
        let failed = spool.deliver(commands: settings.commands, timeout: 5, retries: 0, backoff: 0.01) {
            outcomes.append(($0, $1, $3))
        }
        #expect(failed == 0)
        #expect(spool.waiting().isEmpty)
        let delivered = try String(contentsOfFile: out, encoding: .utf8)
        #expect(
            delivered == #"{"id":"inc-1","severity":"high"}"# + "\n" + #"{"id":"inc-2","severity":"critical"}"# + "\n"
        )
        #expect(outcomes.map(\.0) == ["test", "test"])
        #expect(outcomes.map(\.1) == [true, true])
        #expect(outcomes.map(\.2) == ["inc-1", "inc-2"])
    }

    @Test("a command that fails every attempt keeps its alert in SPOOL.failed, with the reason; an unknown command too")
    func failures() throws {
        let folder = tempPath()
        defer {
            for f in [folder, folder + ".tmp", folder + ".failed"] { try? FileManager.default.removeItem(atPath: f) }
        }
        let spool = AlertSpool(folder: folder)
        #expect(spool.put(#"{"id":"inc-9"}"#, command: "broken", incident: "inc-9") == nil)
        #expect(spool.put(#"{"id":"inc-8"}"#, command: "gone", incident: "inc-8") == nil)
        var outcomes: [(String, Bool, String?)] = []
        let commands = [AlertDispatcher.Command(name: "broken", argv: ["/bin/sh", "-c", "exit 75"])]
        let failed = spool.deliver(commands: commands, timeout: 5, retries: 1, backoff: 0.01) { c, ok, e, _ in
            outcomes.append((c, ok, e))
        }
        #expect(failed == 2)
        #expect(spool.waiting().isEmpty)
        let kept = try FileManager.default.contentsOfDirectory(atPath: spool.failedFolder)
        #expect(kept.count == 2)
        #expect(outcomes.contains { $0.0 == "broken" && !$0.1 && ($0.2 ?? "").contains("after 2 attempt(s)") })
        #expect(outcomes.contains { $0.0 == "gone" && ($0.2 ?? "").contains("no alert command named gone") })
    }
}
