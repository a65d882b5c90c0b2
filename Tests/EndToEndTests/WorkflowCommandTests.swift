import Foundation
import TestSupport
import Testing

@testable import Daemon
@testable import Incidents

/// `esafety incidents ack|note|assign|escalate|resolve|false-positive|reopen` against a
/// running esafetyd's log: the real binaries, real processes at once, real permissions.
@Suite("The coordinator's workflow through esafety", .serialized)
struct WorkflowCommandTests {
    static let esafety = buildDirectory + "/esafety"

    static func squid(_ user: String, host: String = "gambling.canary.esafety.invalid", t: Int = 0) -> String {
        "1795255200.\(t % 1000) 5 10.0.0.\(1 + t % 200) TCP_MISS/200 900 GET http://\(host)/p \(user) HIER_DIRECT/1.2.3.4 text/html\n"
    }

    static func incidents(_ log: String) -> [[String: Any]] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    static func waitFor(_ log: String, events: Int) {
        for _ in 0..<300 {
            guard incidents(log).count < events else { break }
            usleep(20_000)
        }
    }

    static func me() -> String { getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "" }

    static func run(_ args: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
        try Child.run(esafety, args, environment: environment)
    }

    @Test("ack, escalate (a referral), resolve, false-positive, reopen; refusals say why and write nothing")
    func workflow() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [IngestTests.makeLists(dir)], dir: dir)
        let log = dir.path + "/incidents.jsonl"
        let fd = try connectUnix(daemon.socket)
        writeAll(fd, Array((Self.squid("pupil1") + Self.squid("pupil2", t: 1)).utf8))
        close(fd)
        Self.waitFor(log, events: 2)
        let ids = Self.incidents(log).compactMap { $0["id"] as? String }
        #expect(ids.count == 2)
        let (a, b) = (ids[0], ids[1])
        let L = ["--log", log]

        // Ids need not be typed whole: a unique prefix of 8 or more characters will do.
        let prefix = String(a.prefix(24))
        var (code, out) = try Self.run(["incidents", "ack", prefix] + L)
        #expect(code == 0, "\(out)")
        #expect(out.contains("now acknowledged"))
        #expect(out.contains(a), "the whole id is said back: \(out)")
        (code, out) = try Self.run(["incidents", "show", prefix] + L)
        #expect(code == 0 && out.contains(a), "\(out)")
        (code, out) = try Self.run(["incidents", "show", "inc-"] + L)
        #expect(code == 1 && out.contains("at least 8 characters"), "\(out)")
        if a.prefix(12) == b.prefix(12) {
            (code, out) = try Self.run(["incidents", "show", String(a.prefix(12))] + L)
            #expect(code == 1 && out.contains("2 incidents start with"), "\(out)")
        }
        // A referral outside school needs a reason on the record.
        (code, out) = try Self.run(["incidents", "escalate", a, "--to", "social-care"] + L)
        #expect(code == 2 && out.contains("needs --reason"), "\(out)")
        (code, out) = try Self.run(["incidents", "ack", a] + L)
        #expect(code == 1)
        #expect(out.contains("already acknowledged"), "\(out)")
        (code, out) = try Self.run(["incidents", "escalate", a, "--to", "police", "--reason", "adult contact"] + L)
        #expect(code == 0, "\(out)")
        (code, out) = try Self.run(["incidents", "escalate", a, "--to", "janitor"] + L)
        #expect(code == 2)
        #expect(out.contains("unknown role"))
        (code, out) = try Self.run(["incidents", "resolve", a, "--outcome", "referred-police"] + L)
        #expect(code == 2, "closing needs a reason")
        (code, out) = try Self.run(
            ["incidents", "resolve", a, "--outcome", "referred-police", "--action", "referred; parents told"] + L
        )
        #expect(code == 0, "\(out)")
        (code, out) = try Self.run(["incidents", "note", a, "called back by PC Smith"] + L)
        #expect(code == 0, "notes are allowed on closed incidents: \(out)")
        (code, out) = try Self.run(["incidents", "escalate", a, "--to", "dsl"] + L)
        #expect(code == 1)
        #expect(out.contains("already closed"))
        (code, out) = try Self.run(
            ["incidents", "false-positive", b, "--reason", "the school's own fundraiser", "--by", "Ms Jones"] + L
        )
        #expect(code == 0, "\(out)")
        #expect(out.contains("allowlist/domains"))
        #expect(out.contains("gambling.canary.esafety.invalid"))
        (code, out) = try Self.run(["incidents", "reopen", b, "--reason", "second look"] + L)
        #expect(code == 0, "\(out)")
        (code, out) = try Self.run(["incidents", "ack", "inc-nonexistent"] + L)
        #expect(code == 1)
        #expect(out.contains("no incident inc-nonexistent"))
        #expect(daemon.stop().0 == 0)

        let events = Self.incidents(log).filter { $0["event"] as? String != "incident" }
        #expect(
            events.map { $0["event"] as? String ?? "" } == [
                "ack", "escalate", "resolve", "note", "false-positive", "reopen",
            ]
        )
        let escalation = events[1]
        #expect(escalation["to"] as? String == "police")
        #expect(escalation["referral"] as? String == "police")
        #expect(events[4]["by"] as? String == "Ms Jones")
        #expect(events[4]["account"] as? String == Self.me())
        #expect(events[0]["by"] as? String == Self.me())
        let views = try IncidentStore.load(log)
        #expect(views.first { $0.id == a }?.state == .resolved)
        #expect(views.first { $0.id == b }?.state == .acknowledged)
        (code, out) = try Self.run(["verify", log])
        #expect(code == 0, "\(out)")
        (code, out) = try Self.run(["incidents", "list", "--open"] + L)
        #expect(out.contains(b) && !out.contains(a), "\(out)")
    }

    @Test(
        "removed lines: verify --head with the head from the journal shows a cut made while esafetyd was stopped; esafetyd records one made while it runs"
    )
    func removedLines() throws {
        let dir = TempDir()
        let log = dir.path + "/incidents.jsonl"
        var daemon = try DaemonProcess(lists: [IngestTests.makeLists(dir)], dir: dir)
        var fd = try connectUnix(daemon.socket)
        writeAll(fd, Array((0..<3).map { Self.squid("pupil\($0)", t: $0) }.joined().utf8))
        close(fd)
        Self.waitFor(log, events: 3)
        // esafetyd writes its chain head to its own log (the journal) at exit.
        let (status, journal) = daemon.stop()
        #expect(status == 0)
        let noted = try #require(journal.split(separator: "\n").last { $0.contains("incident log chain head") })
        let head = try #require(noted.split(separator: " ").first { $0.hasPrefix("incidents.chain=") }).dropFirst(
            "incidents.chain=".count
        )
        var (code, out) = try Self.run(["verify", log])
        #expect(code == 0 && out.contains("head: \(head) (\(log):3)"), "\(out)")
        // While esafetyd is stopped, someone removes the last incident: the chain alone still
        // verifies; with the recorded head it does not.
        let rows = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(truncate(log, off_t(rows.prefix(2).map { $0.utf8.count + 1 }.reduce(0, +))) == 0)
        (code, out) = try Self.run(["verify", log])
        #expect(code == 0, "\(out)")
        (code, out) = try Self.run(["verify", log, "--head", String(head.prefix(16))])
        #expect(code == 1 && out.contains("BROKEN") && out.contains("removed"), "\(out)")
        (code, out) = try Self.run(["verify", log, "--head", "not-hex"])
        #expect(code == 2 && out.contains("--head takes 12 to 64 hex digits"), "\(out)")
        // While esafetyd runs, the same cut is found and recorded at once, and verify names it.
        daemon = try DaemonProcess(lists: [IngestTests.makeLists(dir)], extra: [], dir: dir)
        fd = try connectUnix(daemon.socket)
        writeAll(fd, Array(Self.squid("pupil9", t: 9).utf8))
        close(fd)
        Self.waitFor(log, events: 3)
        // esafety status shows the head esafetyd has written (the last line's chain value).
        let last = try #require(String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").last)
        let written = try #require(HashChain.split(last)).chain
        for _ in 0..<100
        where ((try? daemon.status())?["incident_log"] as? [String: Any])?["chain_head"] as? String != written {
            usleep(20_000)
        }
        (code, out) = try Self.run(["status", "--control-socket", daemon.control])
        #expect(out.contains("incident log chain head: \(written)") && !out.contains("TAMPERED"), "\(out)")
        #expect(truncate(log, off_t(rows[0].utf8.count + 1)) == 0)
        for _ in 0..<250 where !Self.incidents(log).contains(where: { $0["event"] as? String == "truncated" }) {
            usleep(20_000)
        }
        (code, out) = try Self.run(["verify", log])
        #expect(code == 1 && out.contains("\(log):2: esafetyd found the log cut short here"), "\(out)")
        (code, out) = try Self.run(["status", "--control-socket", daemon.control])
        #expect(out.contains("INCIDENT LOG TAMPERED WITH: ") && out.contains("the log was cut short"), "\(out)")
        let (_, logged) = daemon.stop()
        #expect(logged.contains("THE INCIDENT LOG WAS CUT SHORT"), "\(logged)")
    }

    @Test("two coordinators at once while the daemon appends: every event kept, the chain unbroken")
    func concurrentWriters() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [IngestTests.makeLists(dir)], dir: dir)
        let log = dir.path + "/incidents.jsonl"
        var first = ""
        for i in 0..<10 { first += Self.squid("early\(i)", t: i) }
        let fd = try connectUnix(daemon.socket)
        writeAll(fd, Array(first.utf8))
        close(fd)
        Self.waitFor(log, events: 10)
        let ids = Self.incidents(log).compactMap { $0["id"] as? String }
        #expect(ids.count == 10)
        // The daemon keeps opening incidents while two coordinators each note every one.
        let lateFD = try connectUnix(daemon.socket)
        let feeder = Thread {
            for i in 0..<400 {
                writeAll(lateFD, Array(Self.squid("late\(i)", t: i).utf8))
                usleep(500)
            }
        }
        feeder.start()
        var children: [Child] = []
        for coordinator in ["Ms Jones", "Mr Patel"] {
            for id in ids {
                children.append(
                    try Child(
                        Self.esafety,
                        ["incidents", "note", id, "checked by \(coordinator)", "--by", coordinator, "--log", log],
                        capture: true
                    )
                )
            }
        }
        let results = children.map { $0.wait() }
        while !feeder.isFinished { usleep(10_000) }
        close(lateFD)
        #expect(results.allSatisfy { $0.0 == 0 }, "\(results.filter { $0.0 != 0 })")
        _ = try daemon.waitForLines(410)
        #expect(daemon.stop().0 == 0)
        let records = Self.incidents(log)
        #expect(records.filter { $0["event"] as? String == "note" }.count == 20)
        #expect(records.filter { $0["event"] as? String == "incident" }.count == 410)
        let (code, out) = try Self.run(["verify", log])
        #expect(code == 0, "\(out)")
    }

    @Test("only the configured group: refused plainly for others, through sudo or not")
    func permissions() throws {
        let dir = TempDir()
        let log = dir.path + "/incidents.jsonl"
        let incident =
            "{\"event\":\"incident\",\"id\":\"inc-1\",\"time\":\"2026-11-21T10:00:00.000Z\",\"severity\":\"high\",\"category\":\"gambling\",\"group\":\"ks3\",\"client\":\"10.0.0.1\",\"user\":\"p1\",\"host\":\"x.example\",\"url\":null,\"hits\":1,\"due\":null}"
        var out: [UInt8] = []
        _ = HashChain.seal(incident, previous: HashChain.genesis, appendingTo: &out)
        #expect(
            FileManager.default.createFile(atPath: log, contents: Data(out), attributes: [.posixPermissions: 0o640])
        )
        // A copy of the tool that any account can run.
        let tool = dir.path + "/esafety"
        try copyExecutable(Self.esafety, to: tool)
        chmod(dir.path, 0o755)

        // Not root, not in the group: cannot read, cannot act.
        var (code, text) = try Child(
            "/usr/bin/setpriv",
            ["--reuid=nobody", "--regid=nogroup", "--clear-groups", tool, "incidents", "list", "--log", log],
            capture: true
        ).wait()
        #expect(code == 1)
        #expect(text.contains("you may not read incidents"), "\(text)")
        (code, text) = try Child(
            "/usr/bin/setpriv",
            ["--reuid=nobody", "--regid=nogroup", "--clear-groups", tool, "incidents", "ack", "inc-1", "--log", log],
            capture: true
        ).wait()
        #expect(code == 2)
        #expect(text.contains("you may not act on incidents"), "\(text)")

        // Through sudo: the sudo user must be in the configured group.
        dir.write("esafetyd.yaml", "incidents:\n  log_group: daemon\n")
        let C = ["--config", dir.path + "/esafetyd.yaml", "--log", log]
        (code, text) = try Self.run(["incidents", "ack", "inc-1"] + C, environment: ["SUDO_USER": "nobody"])
        #expect(code == 2)
        #expect(text.contains("nobody is not a member of the group daemon"), "\(text)")
        (code, text) = try Self.run(["incidents", "list"] + C, environment: ["SUDO_USER": "nobody"])
        #expect(code == 2)
        (code, text) = try Self.run(["incidents", "ack", "inc-1"] + C, environment: ["SUDO_USER": "daemon"])
        #expect(code == 0, "\(text)")
        let ack = Self.incidents(log).last
        #expect(ack?["event"] as? String == "ack")
        #expect(ack?["by"] as? String == "daemon", "SUDO_USER is who acted")
        #expect(Self.incidents(log).count == 2, "the refusals wrote nothing")
    }
}
