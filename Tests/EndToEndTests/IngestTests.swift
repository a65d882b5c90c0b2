import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Daemon

@Suite("esafetyd ingest, reload and shutdown", .serialized)
struct IngestTests {
    /// Lists with a canary, so reloads pass the self-test, and one listed domain.
    static func makeLists(_ dir: TempDir) -> String {
        dir.write(
            "lists/gambling/category.toml",
            "severity = \"medium\"\ncanary = \"gambling.canary.esafety.invalid\"\n"
        )
        dir.write("lists/gambling/domains", "gambling.canary.esafety.invalid\nbet.example\n")
        dir.write(
            "lists/iwf/category.toml",
            "severity = \"critical\"\nlocked = true\ncanary = \"http://iwf.canary.esafety.invalid/c\"\n"
        )
        dir.write("lists/iwf/urls", "iwf.canary.esafety.invalid/c\nabuse.example/1\nabuse.example/2\nabuse.example/3\n")
        return dir.path + "/lists"
    }

    /// Line i: every third a listed host; formats rotate through Squid, dnsmasq, BIND, unbound, JSON;
    /// one in 50 is garbage.
    static func line(_ i: Int, client: Int) -> (String, parsed: Bool, matched: Bool) {
        if i % 50 == 49 { return ("garbage line \(i) from client \(client)", false, false) }
        let listed = i % 3 == 0
        let host = listed ? "www.bet.example" : "site\(i).example.org"
        switch i % 5 {
        case 0:
            return (
                "1700000000.\(i % 1000) 5 10.0.\(client).9 TCP_MISS/200 10 GET http://\(host)/p\(i) pupil\(client) HIER_DIRECT/1.2.3.4 text/html",
                true, listed
            )
        case 1: return ("Nov 21 10:00:00 dnsmasq[812]: query[A] \(host) from 10.0.\(client).7", true, listed)
        case 2:
            return (
                "21-Nov-2026 10:00:00.123 queries: info: client @0x7f 10.0.\(client).5#5353 (\(host)): query: \(host) IN A +E(0)K (10.0.0.1)",
                true, listed
            )
        case 3: return ("[1700000000] unbound[1:0] info: 10.0.\(client).8 \(host). A IN", true, listed)
        default: return ("{\"client\":\"10.0.\(client).6\",\"url\":\"https://\(host)/x\"}", true, listed)
        }
    }

    @Test("several clients at once, partial writes, CRLF, SIGHUP mid-stream and a broken list: every line counted")
    func streamWithReloads() throws {
        let dir = TempDir()
        let lists = Self.makeLists(dir)
        let daemon = try DaemonProcess(lists: [lists], dir: dir)
        let clients = 4
        let perClient = 20_000
        var expectedParsed = 0
        var expectedMatched = 0
        var payloads: [[UInt8]] = []
        for c in 0..<clients {
            var text = ""
            for i in 0..<perClient {
                let (l, p, m) = Self.line(i, client: c)
                text += l + (i % 7 == 0 ? "\r\n" : "\n")
                if p { expectedParsed += 1 }
                if m { expectedMatched += 1 }
            }
            payloads.append(Array(text.utf8))
        }
        // Stream from several threads; writes of odd sizes split lines across reads.
        let group = DispatchGroup()
        for c in 0..<clients {
            let payload = payloads[c]
            let path = daemon.socket
            DispatchQueue.global().async(group: group) {
                let fd = try! connectUnix(path)
                var off = 0
                var step = 1
                while off < payload.count {
                    let n = min(payload.count - off, 997 * step % 8191 + 1)
                    writeAll(fd, Array(payload[off..<(off + n)]))
                    off += n
                    step += 1
                    if step % 200 == 0 { usleep(1000) }
                }
                close(fd)
            }
        }
        // Reloads while lines flow: good ones, then one with a broken list, then a good one.
        for _ in 0..<3 {
            usleep(30_000)
            daemon.signal(SIGHUP)
        }
        usleep(200_000)
        dir.write("lists/gambling/category.toml", "severity = \"urgent\"\n")
        daemon.signal(SIGHUP)
        #expect(
            poll(timeout: 20) { ((try? daemon.status())?["last_reload"] as? [String: Any])?["ok"] as? Bool == false }
        )
        group.wait()
        let s = try daemon.waitForLines(clients * perClient)
        #expect(s["lines_received"] as? Int == clients * perClient)
        #expect(s["lines_parsed"] as? Int == expectedParsed)
        #expect(s["lines_matched"] as? Int == expectedMatched)
        #expect(s["parse_errors"] as? Int == clients * perClient - expectedParsed)
        let last = try #require(s["last_reload"] as? [String: Any])
        #expect(last["ok"] as? Bool == false)
        #expect((last["message"] as? String)?.contains("category.toml:1") == true)
        let generation = try #require(s["generation"] as? Int)
        #expect(generation >= 2)
        // The refused reload kept the lists: a listed host still matches after it.
        let fd = try connectUnix(daemon.socket)
        writeAll(fd, Array("Nov 21 10:00:00 dnsmasq[812]: query[A] bet.example from 10.9.9.9\n".utf8))
        close(fd)
        let after = try daemon.waitForLines(clients * perClient + 1)
        #expect(after["lines_matched"] as? Int == expectedMatched + 1)
        #expect(after["generation"] as? Int == generation)
        // A good list again: the reload goes through.
        dir.write(
            "lists/gambling/category.toml",
            "severity = \"medium\"\ncanary = \"gambling.canary.esafety.invalid\"\n"
        )
        let reload =
            try JSONSerialization.jsonObject(with: Data(try ControlClient.send("reload", to: daemon.control).utf8))
            as! [String: Any]
        #expect(reload["ok"] as? Bool == true)
        #expect(reload["generation"] as? Int == generation + 1)
        let (code, log) = daemon.stop()
        #expect(code == 0)
        #expect(log.contains("reload refused"))
        #expect(!FileManager.default.fileExists(atPath: daemon.socket))
    }

    @Test("a reload is refused when a canary stops classifying or a locked list shrinks too much")
    func reloadChecks() throws {
        let dir = TempDir()
        let lists = Self.makeLists(dir)
        let daemon = try DaemonProcess(lists: [lists], dir: dir)
        dir.write("lists/gambling/domains", "bet.example\n")
        var r =
            try JSONSerialization.jsonObject(with: Data(try ControlClient.send("reload", to: daemon.control).utf8))
            as! [String: Any]
        #expect(r["ok"] as? Bool == false)
        #expect((r["message"] as? String)?.contains("canary gambling.canary.esafety.invalid") == true)
        dir.write("lists/gambling/domains", "gambling.canary.esafety.invalid\nbet.example\n")
        dir.write("lists/iwf/urls", "iwf.canary.esafety.invalid/c\n")
        r =
            try JSONSerialization.jsonObject(with: Data(try ControlClient.send("reload", to: daemon.control).utf8))
            as! [String: Any]
        #expect(r["ok"] as? Bool == false)
        #expect((r["message"] as? String)?.contains("locked category iwf shrank from 4 to 1") == true)
        #expect(try daemon.status()["generation"] as? Int == 1)
        #expect(daemon.stop().0 == 0)
    }

    @Test("over-long lines are counted and skipped; the connection survives; a last line without newline counts")
    func longLinesAndDisconnect() throws {
        let dir = TempDir()
        let lists = Self.makeLists(dir)
        let daemon = try DaemonProcess(lists: [lists], extra: [], dir: dir)
        let fd = try connectUnix(daemon.socket)
        var text = "Nov 21 10:00:00 dnsmasq[812]: query[A] bet.example from 10.0.0.1\n"
        text +=
            "Nov 21 10:00:00 dnsmasq[812]: query[A] " + String(repeating: "a", count: 200_000)
            + ".example from 10.0.0.1\n"
        text += "Nov 21 10:00:00 dnsmasq[812]: query[A] www.bet.example from 10.0.0.2\n"
        text += "Nov 21 10:00:00 dnsmasq[812]: query[A] last.bet.example from 10.0.0.3"  // no newline: client hangs up
        writeAll(fd, Array(text.utf8))
        close(fd)
        let s = try daemon.waitForLines(4)
        #expect(s["lines_received"] as? Int == 4)
        #expect(s["lines_too_long"] as? Int == 1)
        #expect(s["lines_matched"] as? Int == 3)
        #expect(daemon.stop().0 == 0)
    }

    @Test("datagrams with RFC 3164 and RFC 5424 envelopes")
    func datagrams() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [Self.makeLists(dir)], dir: dir)
        sendDatagram(daemon.datagram, "<30>Nov 21 10:00:00 host dnsmasq[1]: query[A] bet.example from 10.0.0.3")
        sendDatagram(
            daemon.datagram,
            "<134>1 2026-11-21T10:00:00Z proxy squid 12 - - 1700000000.1 5 10.0.0.7 TCP_MISS/200 10 GET http://abuse.example/1 - HIER_DIRECT/1.2.3.4 -"
        )
        sendDatagram(daemon.datagram, "<30>Nov 21 10:00:00 host dnsmasq[1]: forwarded bet.example to 1.1.1.1\n")
        let s = try daemon.waitForLines(3)
        #expect(s["lines_received"] as? Int == 3)
        #expect(s["lines_parsed"] as? Int == 2)
        #expect(s["lines_matched"] as? Int == 2)
        #expect(s["lines_ignored"] as? Int == 1)
        let categories = s["matched_by_category"] as? [String: Int]
        #expect(categories?["iwf"] == 1)
        #expect(categories?["gambling"] == 1)
        // Per source too: both came through the datagram socket.
        let sources = s["sources"] as? [[String: Any]] ?? []
        #expect(sources.count == 1)
        #expect(sources.first?["matched_by_category"] as? [String: Int] == ["gambling": 1, "iwf": 1])
        let (code, text) = try Child.run(buildDirectory + "/esafety", ["status", "--control-socket", daemon.control])
        #expect(code == 0)
        #expect(text.contains("    gambling 1, iwf 1\n"), "\(text)")
        #expect(daemon.stop().0 == 0)
    }

    @Test("a datagram flood from two senders: every datagram read, every incident written, none lost or dropped")
    func datagramFlood() throws {
        let dir = TempDir()
        // A queue of 1,000 records before the log: twelve times fewer than the incidents below,
        // so the incident path must wait for the writer (it once dropped them instead).
        dir.write("esafetyd.yaml", "incidents:\n  queue: 1000\n")
        let daemon = try DaemonProcess(
            lists: [Self.makeLists(dir)],
            extra: ["--config", dir.path + "/esafetyd.yaml"],
            dir: dir
        )
        // Two senders, 60,000 datagrams each; one in ten names a listed site from a client of
        // its own, so every such datagram is a new incident (12,000 in all). The senders block
        // when esafetyd falls behind: on a Unix datagram socket the kernel makes them wait.
        let perSender = 60_000
        let failures = Mutex(0)
        let group = DispatchGroup()
        for sender in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
                defer { close(fd) }
                var addr = sockaddr_un()
                addr.sun_family = sa_family_t(AF_UNIX)
                let path = Array(daemon.datagram.utf8)
                withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: path) }
                for i in 0..<perSender {
                    let n = sender * perSender + i
                    let host = i % 10 == 0 ? "www.bet.example" : "site\(i).example.org"
                    let client = "10.\(n >> 16 & 255).\(n >> 8 & 255).\(n & 255)"
                    var m = "<30>Nov 21 10:00:00 host dnsmasq[1]: query[A] \(host) from \(client)"
                    let sent = m.withUTF8 { buf in
                        withUnsafePointer(to: &addr) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                            }
                        }
                    }
                    if sent < 0 { failures.withLock { $0 += 1 } }
                }
            }
        }
        group.wait()
        #expect(failures.withLock { $0 } == 0, "a blocking sender is never refused")
        let total = 2 * perSender
        var s = try daemon.waitForLines(total, timeout: 120)
        #expect(s["lines_received"] as? Int == total)
        #expect(s["lines_matched"] as? Int == total / 10)
        // Every match handled by the incident path and written.
        #expect(
            poll(timeout: 120, interval: 0.2) {
                s = (try? daemon.status()) ?? s
                let log = s["incident_log"] as? [String: Any]
                return log?["matches_handled"] as? Int == total / 10 && log?["queued"] as? Int == 0
            },
            "\(s["incident_log"] ?? "")"
        )
        let log = s["incident_log"] as? [String: Any]
        #expect(log?["lost"] as? Int == 0)
        #expect(daemon.stop().0 == 0)
        let lines = lines(dir.path + "/incidents.jsonl")
        #expect(lines.filter { $0.hasPrefix("{\"event\":\"incident\"") }.count == total / 10)
        #expect(!lines.contains { $0.hasPrefix("{\"event\":\"lost\"") })
    }

    @Test("SIGTERM drains every line already sent before exiting 0")
    func drainOnShutdown() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [Self.makeLists(dir)], dir: dir)
        let fd = try connectUnix(daemon.socket)
        defer { close(fd) }
        func lines(_ range: Range<Int>) -> [UInt8] {
            Array(
                range.map { "Nov 21 10:00:00 dnsmasq[812]: query[A] h\($0).bet.example from 10.0.0.1\n" }.joined().utf8
            )
        }
        let first = 30_000
        writeAll(fd, lines(0..<first))
        #expect(try daemon.waitForLines(first)["lines_received"] as? Int == first)
        // esafetyd stopped, a client starts 1.3 MB of lines: the kernel's socket buffer takes
        // the first ~200 KB and the client blocks. SIGTERM is pending when esafetyd resumes,
        // so most of the stream reaches it while it shuts down: every line the client sends
        // before the daemon hangs up must be counted, none lost in the kernel's buffer.
        daemon.signal(SIGSTOP)
        let rest = lines(first..<first + 20_000)
        let sent = Mutex(0)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            var off = 0
            rest.withUnsafeBytes { raw in
                while off < raw.count {
                    let n = send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    off += n
                }
            }
            sent.withLock { $0 = off }
            done.signal()
        }
        usleep(100_000)
        daemon.signal(SIGTERM)
        daemon.signal(SIGCONT)
        let (code, log) = daemon.waitExit()
        done.wait()
        #expect(code == 0)
        let sentLines = first + rest.prefix(sent.withLock { $0 }).reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        // The final log line carries the totals.
        let received = log.split(separator: "\n").last { $0.contains("esafetyd stopped") }
        #expect(received?.contains("lines.received=\(sentLines)") == true, "sent \(sentLines) lines: \(log)")
    }

    @Test("a connection the kernel completed before SIGTERM, not yet accepted, is drained too")
    func backlogOnShutdown() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [Self.makeLists(dir)], dir: dir)
        // Stopped, esafetyd cannot accept: the connection waits in the listen backlog with
        // its lines, and SIGTERM is pending when it resumes.
        daemon.signal(SIGSTOP)
        let fd = try connectUnix(daemon.socket)
        let n = 1_000
        var text = ""
        for i in 0..<n { text += "Nov 21 10:00:00 dnsmasq[812]: query[A] h\(i).bet.example from 10.0.0.1\n" }
        writeAll(fd, Array(text.utf8))
        close(fd)
        daemon.signal(SIGTERM)
        daemon.signal(SIGCONT)
        let (code, log) = daemon.waitExit()
        #expect(code == 0)
        let stopped = log.split(separator: "\n").last { $0.contains("esafetyd stopped") }
        #expect(stopped?.contains("lines.received=\(n)") == true, "\(log)")
    }

    @Test(
        "through the incident thread: each match's fields, in order, and a DHCP lease before a match names its device"
    )
    func handOverToIncidents() throws {
        let dir = TempDir()
        dir.write("devices", "a4:5e:60:d1:22:0b  Library PC 3\n")
        dir.write("esafetyd.yaml", "incidents:\n  devices: \(dir.path)/devices\n  context_window: 0\n")
        let daemon = try DaemonProcess(
            lists: [Self.makeLists(dir)],
            extra: ["--config", dir.path + "/esafetyd.yaml"],
            dir: dir
        )
        let fd = try connectUnix(daemon.socket)
        var text = "Nov 21 10:00:00 dnsmasq-dhcp[812]: DHCPACK(eth0) 10.0.0.57 A4:5E:60:D1:22:0B library-pc-3\n"
        // 300 people on 300 sites: each opens its own incident, in this order.
        for i in 0..<300 {
            text +=
                "1795255200.\(100 + i) 5 10.1.\(i / 250).\(i % 250 + 1) TCP_MISS/200 900 GET http://s\(i).bet.example/p?x=\(i) pupil\(i) HIER_DIRECT/1.2.3.4 text/html\n"
        }
        text += "Nov 21 10:00:01 dnsmasq[812]: query[A] www.bet.example from 10.0.0.57\n"
        writeAll(fd, Array(text.utf8))
        close(fd)
        _ = try daemon.waitForLines(302)
        #expect(daemon.stop().0 == 0)
        let records = ((try? String(contentsOfFile: dir.path + "/incidents.jsonl", encoding: .utf8)) ?? "").split(
            separator: "\n"
        )
        .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        .filter { $0["event"] as? String == "incident" }
        #expect(records.count == 301)
        for (i, r) in records.prefix(300).enumerated() {
            #expect(r["user"] as? String == "pupil\(i)")
            #expect(r["client"] as? String == "10.1.\(i / 250).\(i % 250 + 1)")
            #expect(r["host"] as? String == "s\(i).bet.example")
            #expect(r["url"] as? String == "http://s\(i).bet.example/p?x=\(i)")
            #expect(r["category"] as? String == "gambling")
            #expect((r["source"] as? [String: Any])?["format"] as? String == "squid")
        }
        let dns = try #require(records.last)
        #expect(dns["client"] as? String == "10.0.0.57")
        #expect(dns["user"] is NSNull)
        #expect(dns["url"] is NSNull)
        #expect(dns["mac"] as? String == "a4:5e:60:d1:22:0b")
        #expect(dns["device"] as? String == "Library PC 3")
    }

    @Test("esafety status and reload through the control socket")
    func statusCommand() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [Self.makeLists(dir)], dir: dir)
        let fd = try connectUnix(daemon.socket)
        writeAll(fd, Array("Nov 21 10:00:00 dnsmasq[812]: query[A] bet.example from 10.0.0.1\nnot a log line\n".utf8))
        close(fd)
        _ = try daemon.waitForLines(2)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: buildDirectory + "/esafety")
        p.arguments = ["status", "--json", "--control-socket", daemon.control]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        p.waitUntilExit()
        let object =
            try JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile()) as! [String: Any]
        for key in ["lines_received", "lines_parsed", "lines_matched", "parse_errors", "generation"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["parse_errors"] as? Int == 1)
        let sources = object["sources"] as? [[String: Any]]
        #expect((sources?.first?["error_samples"] as? [String])?.first?.contains("not a log line") == true)
        let human = Process()
        human.executableURL = URL(fileURLWithPath: buildDirectory + "/esafety")
        human.arguments = ["status", "--control-socket", daemon.control]
        let hout = Pipe()
        human.standardOutput = hout
        try human.run()
        human.waitUntilExit()
        let text = String(decoding: hout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // The text adds up: received = parsed + ignored + parse errors + too long.
        #expect(
            text.contains("lines: 2 received = 1 parsed + 0 ignored + 1 parse errors + 0 too long; 1 matched;"),
            "\(text)"
        )
        #expect(daemon.stop().0 == 0)
        // With the daemon gone, status says so plainly.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: buildDirectory + "/esafety")
        gone.arguments = ["status", "--control-socket", daemon.control]
        let gerr = Pipe()
        gone.standardError = gerr
        try gone.run()
        gone.waitUntilExit()
        #expect(gone.terminationStatus == 1)
        #expect(
            String(decoding: gerr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains(
                "esafetyd is not running"
            )
        )
    }

    @Test("the control and ingest sockets are 0660")
    func socketModes() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [Self.makeLists(dir)], dir: dir)
        for path in [daemon.socket, daemon.datagram, daemon.control] {
            let attrs = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attrs[.posixPermissions] as? Int) == 0o660, "\(path)")
        }
        #expect(daemon.stop().0 == 0)
    }

    @Test("a FIFO among the lists: the reload is refused at once and status keeps answering")
    func fifoList() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [Self.makeLists(dir)], dir: dir)
        #expect(mkfifo(dir.path + "/lists/gambling/domains.1", 0o644) == 0)
        let answer = try ControlClient.send("reload", to: daemon.control, timeout: 10)
        #expect(answer.contains("\"ok\":false"), "\(answer)")
        #expect(answer.contains("domains.1: cannot read: a FIFO, not a regular file"), "\(answer)")
        let status = try daemon.status()
        #expect(status["generation"] as? Int == 1)
        #expect(daemon.stop().0 == 0)
    }

    @Test("an authenticated visit is one incident, with its user; a redirector's block says so")
    func truthfulActions() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [Self.makeLists(dir)], dir: dir)
        let fd = try connectUnix(daemon.socket)
        writeAll(
            fd,
            Array(
                """
                1795255200.100     2 10.0.0.5 TCP_DENIED/407 3900 GET http://bet.example/ - HIER_NONE/- text/html
                1795255200.200    40 10.0.0.5 TCP_MISS/200 5120 GET http://bet.example/ pupil1 HIER_DIRECT/1.2.3.4 text/html
                1795255300.000     1 10.0.0.6 TCP_REDIRECT/302 360 GET http://bet.example/x pupil2 HIER_NONE/- -

                """.utf8
            )
        )
        close(fd)
        let log = dir.path + "/incidents.jsonl"
        #expect(poll { lines(log).filter { $0.contains("\"event\":\"incident\"") }.count >= 2 })
        let incidents = lines(log).map(json).filter { $0["event"] as? String == "incident" }
        #expect(incidents.count == 2, "\(incidents)")
        let visit = incidents.first { $0["user"] as? String == "pupil1" }
        #expect(visit?["action"] as? String == "allowed")
        #expect(!incidents.contains { $0["user"] is NSNull }, "no incident for the 407 challenge")
        let redirected = incidents.first { $0["user"] as? String == "pupil2" }
        #expect(redirected?["action"] as? String == "blocked")
        #expect(redirected?["blocked_by"] as? String == "redirector")
        let status = try daemon.status()
        #expect(status["lines_ignored"] as? Int == 1, "the 407 challenge is counted as ignored")
        #expect(daemon.stop().0 == 0)
    }

    @Test("a second esafetyd on the same sockets refuses to start; the first keeps them and keeps working")
    func secondDaemonRefused() throws {
        let dir = TempDir()
        let lists = Self.makeLists(dir)
        let first = try DaemonProcess(lists: [lists], dir: dir)
        let second = try Child(
            buildDirectory + "/esafetyd",
            [
                "--socket", first.socket, "--datagram-socket", first.datagram, "--control-socket", first.control,
                "--incident-log", dir.path + "/other.jsonl", "--lists", lists,
            ],
            capture: true,
            environment: ["STATE_DIRECTORY": dir.path + "/state2"]
        )
        let (code, said) = second.wait()
        #expect(code != 0, "\(said)")
        #expect(said.contains("another process is listening here"), "\(said)")
        // The first still answers and still reads lines.
        let fd = try connectUnix(first.socket)
        writeAll(fd, Array("Nov 21 10:00:00 dnsmasq[1]: query[A] bet.example from 10.0.0.1\n".utf8))
        close(fd)
        #expect(poll { (try? first.status())?["lines_matched"] as? Int == 1 })
        #expect(first.stop().0 == 0)
        #expect(!FileManager.default.fileExists(atPath: first.socket), "its own sockets are removed at stop")
    }

    @Test("at stop, esafetyd removes only socket files that are still its own")
    func removesOnlyItsOwnSockets() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [Self.makeLists(dir)], dir: dir)
        // Another program put a new socket where esafetyd's stream socket was.
        #expect(unlink(daemon.socket) == 0)
        let other = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(other) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(daemon.socket.utf8)) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(other, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(rc == 0)
        #expect(daemon.stop().0 == 0)
        #expect(FileManager.default.fileExists(atPath: daemon.socket), "the other program's socket is left alone")
        #expect(!FileManager.default.fileExists(atPath: daemon.control), "esafetyd's own control socket is removed")
    }

    @Test("README's 'check it works' line is counted and matched on the bundled lists, and writes no incident")
    func checkItWorks() throws {
        let readme = try String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)
        let paragraph = try #require(readme.range(of: "Check it works:").map { readme[$0.lowerBound...].prefix(600) })
        let start = try #require(paragraph.range(of: "echo '"))
        let end = try #require(paragraph[start.upperBound...].firstIndex(of: "'"))
        let line = String(paragraph[start.upperBound..<end])
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [repositoryRoot + "/Blocklists"], dir: dir)
        let fd = try connectUnix(daemon.socket)
        writeAll(fd, Array((line + "\n").utf8))
        close(fd)
        #expect(poll { (try? daemon.status())?["lines_matched"] as? Int == 1 }, "\(line)")
        let status = try daemon.status()
        #expect((status["matched_by_category"] as? [String: Any])?["games"] as? Int == 1, "\(status)")
        #expect(daemon.stop().0 == 0)
        #expect(!lines(dir.path + "/incidents.jsonl").contains { $0.contains("\"event\":\"incident\"") })
    }
}
