import Foundation
import Glibc
import TestSupport
import Testing

@testable import Daemon

/// `esafety web` as the DSL, the coordinator, a governor and IT use it: the real esafetyd
/// writing incidents, the real console process on loopback, real HTTP over TCP, and the
/// incident log checked after every action.
@Suite("The safeguarding console", .serialized)
struct ConsoleTests {
    static let esafety = buildDirectory + "/esafety"
    static let password = "correct horse battery staple"

    /// esafetyd on test lists, the console beside it, and accounts of every role.
    final class Setup: @unchecked Sendable {
        let dir = TempDir()
        let daemon: DaemonProcess
        let web: Child
        let port: UInt16
        var log: String { dir.path + "/incidents.jsonl" }
        var accounts: String { dir.path + "/web-accounts" }
        var accessLog: String { dir.path + "/console-access.log" }
        var errors: String { dir.path + "/web.err" }

        init(extra: [String] = []) throws {
            daemon = try DaemonProcess(lists: [IngestTests.makeLists(dir)], dir: dir)
            for (name, role) in [("dsl1", "dsl"), ("coord", "coordinator"), ("gov", "governor"), ("tech", "it")] {
                let (code, out) = try Setup.user(["add", name, "--role", role], accounts: dir.path + "/web-accounts")
                #expect(code == 0, "\(out)")
            }
            let args =
                [
                    "web", "--log", dir.path + "/incidents.jsonl", "--accounts", dir.path + "/web-accounts",
                    "--listen", "127.0.0.1:0", "--control-socket", daemon.control,
                ] + extra
            (web, port) = try ConsoleTests.startWeb(args, errors: dir.path + "/web.err")
        }

        /// `esafety web user ...`, the password on standard input.
        static func user(
            _ args: [String],
            accounts: String,
            password: String = ConsoleTests.password
        ) throws -> (Int32, String) {
            try Child.run(
                "/bin/sh",
                ["-c", "printf '%s\\n' \"$PW\" | \"$0\" web user \"$@\"", ConsoleTests.esafety] + args + [
                    "--accounts", accounts, "--owner", "root",
                ],
                environment: ["PW": password]
            )
        }

        /// Sends Squid lines to esafetyd and waits until the index has the incidents.
        func send(_ lines: [String], incidents: Int) throws {
            let fd = try connectUnix(daemon.socket)
            writeAll(fd, Array(lines.joined().utf8))
            close(fd)
            _ = poll(timeout: 20) {
                WorkflowCommandTests.incidents(log).filter { $0["event"] as? String == "incident" }.count >= incidents
            }
        }

        func ids() -> [String] {
            WorkflowCommandTests.incidents(log).filter { $0["event"] as? String == "incident" }.compactMap {
                $0["id"] as? String
            }
        }

        func client(_ name: String?, password: String = ConsoleTests.password) throws -> HTTPClient {
            let c = HTTPClient(port: port)
            guard let name else { return c }
            let form = try c.get("/login")
            let r = try c.post(
                "/login",
                [("csrf", form.field("csrf") ?? ""), ("username", name), ("password", password)]
            )
            #expect(r.status == 303, "log in as \(name): \(r.status) \(r.body)")
            return c
        }

        func stop() -> String {
            web.stop()
            _ = daemon.stop()
            return (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        }
    }

    /// `esafety ARGS` (a console listening on port 0: the kernel's choice), its standard error
    /// appended to `errors`: the process and its port, once it says it listens.
    static func startWeb(_ args: [String], errors: String, scheme: String = "http") throws -> (Child, UInt16) {
        let web = try Child(
            "/bin/sh",
            ["-c", "exec \"$0\" \"$@\" 2>>\"$ERR\"", ConsoleTests.esafety] + args,
            environment: ["ERR": errors]
        )
        var found: UInt16?
        _ = poll(timeout: 20) {
            let text = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
            if let r = text.range(of: "listening on \(scheme)://127.0.0.1:") {
                found = UInt16(text[r.upperBound...].prefix { $0.isNumber })
            }
            return found != nil
        }
        guard let found else {
            web.stop(SIGKILL)
            throw TestFailure(
                message: "esafety web did not start: \((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")"
            )
        }
        return (web, found)
    }

    static func squid(_ user: String, host: String, t: Int) -> String {
        let now = Int(Date().timeIntervalSince1970)
        return
            "\(now).\(100 + t) 5 10.0.0.\(t + 1) TCP_MISS/200 900 GET http://\(host)/p \(user) HIER_DIRECT/1.2.3.4 text/html\n"
    }

    @Test("a DSL logs in, filters, opens an incident and acts; each action is an event in the log, which verifies")
    func workThroughIncidents() throws {
        let s = try Setup()
        defer { _ = s.stop() }
        try s.send(
            [
                Self.squid("alice", host: "gambling.canary.esafety.invalid", t: 0),
                Self.squid("bob", host: "abuse.example/1", t: 1),
            ],
            incidents: 2
        )
        let ids = s.ids()
        #expect(ids.count == 2)
        let (alice, bob) = (ids[0], ids[1])
        let c = try s.client("dsl1")
        #expect(c.cookies["esafety_session"] != nil)

        var r = try c.get("/incidents?state=open")
        #expect(r.status == 200)
        #expect(r.body.contains(alice) && r.body.contains(bob))
        r = try c.get("/incidents?state=open&severity=critical")
        #expect(!r.body.contains(alice) && r.body.contains(bob), "the severity filter")

        r = try c.get("/incidents/\(bob)")
        #expect(r.status == 200)
        #expect(r.body.contains("/lists/iwf/urls:2"), "the rule that matched, with file:line")
        #expect(r.body.contains("sev-critical"))
        let csrf = r.field("csrf") ?? ""
        #expect(!csrf.isEmpty)
        let before = lines(s.log).count

        // Forms without the session's token are refused and write nothing.
        r = try c.post("/incidents/\(bob)/ack", [])
        #expect(r.status == 403)
        r = try c.post("/incidents/\(bob)/ack", [("csrf", "forged")])
        #expect(r.status == 403)
        #expect(lines(s.log).count == before, "a refused form wrote nothing")

        r = try c.post("/incidents/\(bob)/ack", [("csrf", csrf)])
        #expect(r.status == 303 && r.header("Location") == "/incidents/\(bob)?done=ack")
        r = try c.post("/incidents/\(bob)/ack", [("csrf", csrf)])
        #expect(r.status == 409 && r.body.contains("already acknowledged"), "\(r.body)")
        r = try c.post("/incidents/\(bob)/escalate", [("csrf", csrf), ("to", "police")])
        #expect(r.status == 409 && r.body.contains("needs a reason"))
        r = try c.post("/incidents/\(bob)/escalate", [("csrf", csrf), ("to", "police"), ("reason", "adult contact")])
        #expect(r.status == 303)
        r = try c.post("/incidents/\(alice)/false-positive", [("csrf", csrf), ("reason", "a news page")])
        #expect(r.status == 303)
        r = try c.get("/incidents/\(alice)?done=false-positive")
        #expect(r.body.contains("allowlist/domains") && r.body.contains("gambling.canary.esafety.invalid"))

        let events = WorkflowCommandTests.incidents(s.log).filter {
            $0["id"] as? String == bob && $0["event"] as? String != "incident"
        }
        let actions = events.compactMap { $0["event"] as? String }.filter { ["ack", "escalate"].contains($0) }
        #expect(actions == ["ack", "escalate"], "\(events)")
        #expect(events.allSatisfy { ($0["by"] as? String ?? "dsl1") == "dsl1" }, "by: the logged-in account")
        #expect(events.contains { $0["referral"] as? String == "police" && $0["reason"] as? String == "adult contact" })
        let (code, out) = try Child.run(Self.esafety, ["verify", s.log])
        #expect(code == 0, "the log verifies after the console's actions: \(out)")

        // Every view of a child's record is in the access log.
        let access = WorkflowCommandTests.incidents(s.accessLog)
        #expect(
            access.contains {
                $0["what"] as? String == "incident" && $0["id"] as? String == bob && $0["account"] as? String == "dsl1"
            }
        )
        #expect(access.contains { $0["what"] as? String == "action" && $0["id"] as? String == alice })
        #expect(access.contains { $0["what"] as? String == "list" })
        r = try c.get("/access")
        #expect(r.status == 200 && r.body.contains(bob))

        // The tool sees what the console did.
        let (_, shown) = try Child.run(Self.esafety, ["incidents", "show", bob, "--log", s.log])
        #expect(shown.contains("state        escalated"), "\(shown)")
    }

    @Test("every route without a session redirects to the log-in page or refuses; security headers on every answer")
    func noSessionNoRecord() throws {
        let s = try Setup()
        defer { _ = s.stop() }
        try s.send([Self.squid("alice", host: "gambling.canary.esafety.invalid", t: 0)], incidents: 1)
        let id = s.ids()[0]
        let c = try s.client(nil)
        for path in [
            "/", "/incidents", "/incidents?state=all", "/incidents/\(id)", "/incidents/\(id)/person", "/report",
            "/health", "/access",
        ] {
            let r = try c.get(path)
            #expect(r.status == 303 && r.header("Location") == "/login", "\(path): \(r.status)")
            #expect(!r.body.contains("alice"))
        }
        for path in ["/api/incidents", "/events"] {
            let r = try c.get(path)
            #expect(r.status == 401, "\(path): \(r.status)")
            #expect(!r.body.contains("alice"))
        }
        for path in ["/incidents/\(id)/ack", "/logout", "/incidents/search"] {
            let r = try c.post(path, [("csrf", "x")])
            #expect(r.status == 401, "\(path): \(r.status)")
        }
        #expect(lines(s.log).count == 1)
        let r = try c.get("/login")
        let csp = r.header("Content-Security-Policy") ?? ""
        #expect(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
        )
        #expect(r.header("X-Content-Type-Options") == "nosniff")
        #expect(r.header("X-Frame-Options") == "DENY")
        #expect(r.header("Cache-Control") == "no-store")
        #expect(r.header("Referrer-Policy") == "no-referrer")
        #expect(!r.body.contains("<script>"), "no inline script")
    }

    @Test("a governor sees only the anonymised report; IT only health; only the DSL reads the access log")
    func roles() throws {
        let s = try Setup()
        defer { _ = s.stop() }
        try s.send([Self.squid("alice", host: "gambling.canary.esafety.invalid", t: 0)], incidents: 1)
        let id = s.ids()[0]
        let gov = try s.client("gov")
        for path in [
            "/incidents", "/incidents/\(id)", "/incidents/\(id)/person", "/api/incidents", "/events", "/access",
            "/health",
        ] {
            let r = try gov.get(path)
            #expect(r.status == 403, "governor \(path): \(r.status)")
            #expect(!r.body.contains("alice") && !r.body.contains(id))
        }
        var r = try gov.get("/")
        #expect(r.status == 303 && r.header("Location") == "/report")
        r = try gov.get("/report")
        #expect(r.status == 200 && r.body.contains("name nobody") && !r.body.contains("r-anon"), "the chooser")
        let today = String(ISO8601DateFormatter().string(from: Date()).prefix(10))
        r = try gov.get("/report?date=\(today)")
        #expect(r.status == 200, "\(r.body.prefix(300))")
        #expect(r.body.contains("anonymised") && !r.body.contains("alice"), "the governor's report names nobody")

        let tech = try s.client("tech")
        r = try tech.get("/health")
        #expect(r.status == 200 && r.body.contains("lines"), "IT sees esafetyd's status")
        #expect(!r.body.contains("\\x0A"), "the status keeps its lines")
        for path in ["/incidents", "/incidents/\(id)", "/report?date=\(today)", "/api/incidents", "/access"] {
            r = try tech.get(path)
            #expect(r.status == 403, "IT \(path): \(r.status)")
            #expect(!r.body.contains("alice"))
        }
        r = try tech.get("/report")
        #expect(r.status == 403)
        let coord = try s.client("coord")
        r = try coord.get("/incidents/\(id)")
        #expect(r.status == 200 && r.body.contains("alice"))
        r = try coord.get("/access")
        #expect(r.status == 403)
        r = try coord.get("/report?date=\(today)")
        #expect(r.status == 200 && r.body.contains("alice"), "the coordinator's report names the pupil")
        r = try coord.get("/report?date=\(today)&anonymise=1")
        #expect(r.status == 200 && !r.body.contains("alice"), "and its anonymised one does not")
        r = try coord.get("/report")
        #expect(r.status == 200 && r.body.contains("r-anon") && r.body.contains("/report?date="))
    }

    @Test(
        "repeated failed log-ins lock the name out, even with the right password; logged; a password change ends sessions"
    )
    func lockout() throws {
        let s = try Setup()
        defer { _ = s.stop() }
        let c = try s.client(nil)
        for _ in 0..<5 {
            let form = try c.get("/login")
            let r = try c.post(
                "/login",
                [("csrf", form.field("csrf") ?? ""), ("username", "coord"), ("password", "wrong")]
            )
            #expect(r.status == 401 && r.body.contains("wrong"))
            #expect(c.cookies["esafety_session"] == nil)
        }
        let form = try c.get("/login")
        var r = try c.post(
            "/login",
            [("csrf", form.field("csrf") ?? ""), ("username", "coord"), ("password", Self.password)]
        )
        #expect(r.status == 429 && r.body.contains("Too many failed log-ins"))
        #expect(c.cookies["esafety_session"] == nil)
        // A log-in form without its token is refused before the password is looked at.
        r = try c.post("/login", [("username", "dsl1"), ("password", Self.password)])
        #expect(r.status == 403)
        // Another name is not locked.
        let dsl = try s.client("dsl1")
        r = try dsl.get("/incidents")
        #expect(r.status == 200)
        let access = WorkflowCommandTests.incidents(s.accessLog)
        #expect(
            access.filter { $0["what"] as? String == "login-failed" && $0["account"] as? String == "coord" }.count == 5
        )
        #expect(access.contains { $0["what"] as? String == "locked-out" })
        #expect(!((try? String(contentsOfFile: s.accessLog, encoding: .utf8)) ?? "").contains(Self.password))

        // A new password ends the sessions of the old one.
        let (code, out) = try Setup.user(["passwd", "dsl1"], accounts: s.accounts, password: "another long password")
        #expect(code == 0, "\(out)")
        r = try dsl.get("/incidents")
        #expect(r.status == 303 && r.header("Location") == "/login")
        // Log out ends a session.
        let d2 = try s.client("dsl1", password: "another long password")
        let page = try d2.get("/incidents")
        let token = d2.cookies["esafety_session"]
        r = try d2.post("/logout", [("csrf", page.field("csrf") ?? "")])
        #expect(r.status == 303)
        d2.cookies["esafety_session"] = token
        r = try d2.get("/incidents")
        #expect(r.status == 303, "the old cookie no longer works")
        let errors = s.stop()
        #expect(errors.contains("locked out"), "\(errors)")
        #expect(!errors.contains(Self.password) && !errors.contains("another long password"), "no password in the logs")
    }

    @Test("a view that cannot be recorded in the access log is not shown")
    func unrecordedViewNotShown() throws {
        // The access log's path is a folder: no line can be appended there.
        let s = try Setup(extra: ["--access-log", "/tmp"])
        defer { _ = s.stop() }
        try s.send([Self.squid("alice", host: "gambling.canary.esafety.invalid", t: 0)], incidents: 1)
        let id = try #require(s.ids().first)
        let c = try s.client("dsl1")
        for path in ["/incidents/\(id)", "/incidents?state=open", "/api/incidents"] {
            let r = try c.get(path)
            #expect(r.status == 500, "\(path): \(r.status)")
            #expect(!r.body.contains("alice") && r.body.contains("could not be recorded"), "\(path)")
        }
    }

    @Test("an index far behind the log is not brought up to date in a request: the page says how far it has come")
    func indexFarBehind() throws {
        let s = try Setup()
        defer { _ = s.stop() }
        try s.send([Self.squid("alice", host: "gambling.canary.esafety.invalid", t: 0)], incidents: 1)
        let c = try s.client("dsl1")
        #expect(try c.get("/incidents?state=open").status == 200)
        // esafetyd stopped, and 300 MB of log its index has not read (as while esafetyd builds
        // the index after an upgrade): not read in the request, nor answered from the old index.
        _ = s.daemon.stop()
        var st = stat()
        #expect(stat(s.log, &st) == 0)
        #expect(truncate(s.log, off_t(st.st_size) + 300 << 20) == 0)
        Thread.sleep(forTimeInterval: 1.1)  // the console looks at the index again after a second
        let started = Date()
        let r = try c.get("/incidents?state=open")
        #expect(r.status == 503, "\(r.status)")
        #expect(r.body.contains("the incident index has read 0% of the log"), "\(r.body)")
        #expect(r.body.contains("esafety index status"), "\(r.body)")
        #expect(!r.body.contains("alice"))
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("hostile text in hosts, users and search terms is shown escaped")
    func hostileText() throws {
        let s = try Setup()
        defer { _ = s.stop() }
        let now = Int(Date().timeIntervalSince1970)
        let user = "<script>alert(1)</script>\\u202Eevil\\u0007"
        let json =
            "{\"time\":\(now),\"client\":\"10.9.9.9\",\"user\":\"\(user)\",\"url\":\"http://abuse.example/1?q=<img src=x onerror=alert(2)>\",\"method\":\"GET\"}\n"
        try s.send([json], incidents: 1)
        let id = try #require(s.ids().first)
        let c = try s.client("dsl1")
        for path in ["/incidents?state=open", "/incidents/\(id)", "/incidents/\(id)/person"] {
            let r = try c.get(path)
            #expect(r.status == 200)
            #expect(!r.body.contains("<script>alert") && !r.body.contains("<img src=x"), "\(path)")
            #expect(r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(path): the text is there, escaped")
            #expect(
                !r.body.contains("\u{202E}") && !r.body.contains("\u{07}"),
                "\(path): no raw bidi override or control"
            )
            #expect(r.body.contains("\\u{202E}"), "\(path): the override shown as an escape")
        }
    }

    @Test("a new incident reaches an open live stream within seconds; a critical one is marked")
    func live() throws {
        let s = try Setup()
        defer { _ = s.stop() }
        let c = try s.client("dsl1")
        let fd = try c.openEvents()
        defer { close(fd) }
        usleep(500_000)
        try s.send([Self.squid("carol", host: "abuse.example/2", t: 3)], incidents: 1)
        let id = try #require(s.ids().first)
        var got = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline && !got.contains(id) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            got += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        #expect(got.contains("text/event-stream"))
        #expect(got.contains("event: incident"))
        #expect(got.contains("\"id\":\"\(id)\"") && got.contains("\"severity\":\"critical\""), "\(got)")
        #expect(
            WorkflowCommandTests.incidents(s.accessLog).contains {
                $0["what"] as? String == "live" && $0["id"] as? String == id
            }
        )
    }

    @Test("a flood of new incidents reaches an open live stream whole: each announced once, none older")
    func liveFlood() throws {
        let s = try Setup()
        defer { _ = s.stop() }
        try s.send([Self.squid("before", host: "gambling.canary.esafety.invalid", t: 0)], incidents: 1)
        let c = try s.client("dsl1")
        let fd = try c.openEvents()
        defer { close(fd) }
        usleep(500_000)
        // 2,500 pupils at once: more than a poll reads (2,000; the newest 50 once, when 100 of
        // 150 were never announced; then the newest 2,000, when 500 of 2,500 were not).
        try s.send(
            (1...2500).map { Self.squid("pupil\($0)", host: "gambling.canary.esafety.invalid", t: $0 % 200) },
            incidents: 2501
        )
        let ids = Array(s.ids().dropFirst())
        #expect(ids.count == 2500)
        var got = ""
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(40)
        func announced() -> [String] {
            got.components(separatedBy: "data: ").dropFirst().compactMap {
                ((try? JSONSerialization.jsonObject(with: Data(($0.split(separator: "\n").first ?? "").utf8)))
                    as? [String: Any])?["id"] as? String
            }
        }
        while Date() < deadline && announced().count < 2500 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            got += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        usleep(1_500_000)
        var more = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &more, more.count, Int32(MSG_DONTWAIT))
        if n > 0 { got += String(decoding: more[0..<n], as: UTF8.self) }
        let missing = Set(ids).subtracting(announced())
        #expect(missing.isEmpty, "\(missing.count) of 2,500 not announced")
        #expect(Set(announced()).isSubset(of: Set(ids)), "only the flood's incidents")
        #expect(announced().count == 2500, "each once, the incident before the stream not at all")
    }
}
