import Foundation
import TestSupport
import Testing

@testable import Daemon

/// A real Squid and a real dnsmasq (Debian packages, loopback only) write their own log
/// lines for requests to test host names; the lines are streamed into esafetyd with socat
/// and must all be parsed and classified. `.ci/run` installs squid, dnsmasq and socat.
@Suite("Real Squid and dnsmasq", .serialized)
struct RealPeersTests {
    static func require(_ path: String) throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw DaemonProcess.Failure(
                message:
                    "\(path) is missing: install squid, dnsmasq and socat (apt-get install squid dnsmasq socat); .ci/run does"
            )
        }
    }

    static func start(_ path: String, _ args: [String], cwd: String? = nil) throws -> Child {
        try Child(path, args, cwd: cwd)
    }

    /// A DNS query for `name` over UDP to 127.0.0.1:`port`; true when an answer came back.
    static func query(_ name: String, type: UInt16 = 1, port: UInt16) -> Bool {
        var packet: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            packet.append(UInt8(label.utf8.count))
            packet += label.utf8
        }
        packet += [0, UInt8(type >> 8), UInt8(type & 0xff), 0, 1]
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let sent = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, packet, packet.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard sent == packet.count else { return false }
        var reply = [UInt8](repeating: 0, count: 512)
        return recv(fd, &reply, reply.count, 0) > 0
    }

    @Test("dnsmasq and Squid write real log lines; esafetyd parses and classifies all of them")
    func realPeers() throws {
        for binary in ["/usr/sbin/squid", "/usr/sbin/dnsmasq", "/usr/bin/socat", "/usr/bin/curl"] {
            try Self.require(binary)
        }
        let dir = TempDir()
        chmod(dir.path, 0o777)
        dir.write("lists/gambling/domains", "bet.example\n")
        dir.write("lists/social-media/domains", "tiktok.example\n")
        dir.write("lists/iwf/category.toml", "severity = \"critical\"\nlocked = true\n")
        dir.write("lists/iwf/urls", "site.example.org/abuse/42\n")
        let daemon = try DaemonProcess(lists: [dir.path + "/lists"], dir: dir)
        // Three ports from 20000 to 30001: clear of IntegrationDocsTests' (10000 to 19003) and
        // of the kernel's choices (32768 and up).
        let base = UInt16(20000 + Int(getpid() % 10000))
        let dnsPort = base
        let proxyPort = base + 1
        let webPort = base + 2

        // dnsmasq: answers the test names itself, logs every query to a file.
        let dnsLog = dir.path + "/dnsmasq.log"
        let dnsmasq = try Self.start(
            "/usr/sbin/dnsmasq",
            [
                "-k", "--conf-file=/dev/null", "--port=\(dnsPort)", "--listen-address=127.0.0.1", "--bind-interfaces",
                "--no-resolv", "--no-hosts", "--log-queries", "--log-facility=\(dnsLog)", "--user=root",
                "--pid-file=\(dir.path)/dnsmasq.pid", "--address=/bet.example/127.0.0.1",
                "--address=/example.org/127.0.0.1",
                "--address=/tiktok.example/127.0.0.1",
            ]
        )
        defer { dnsmasq.stop() }
        var answered = false
        for _ in 0..<50 {
            guard !answered else { break }
            answered = Self.query("warmup.example.org", port: dnsPort)
            if !answered { usleep(100_000) }
        }
        #expect(answered, "dnsmasq did not answer")
        let names = [
            ("www.bet.example", UInt16(1)), ("cdn.tiktok.example", 28), ("site.example.org", 1),
            ("school.example.org", 1),
        ]
        for (name, type) in names { #expect(Self.query(name, type: type, port: dnsPort)) }
        usleep(300_000)

        // Squid: denies *.bet.example, proxies the rest to a local web server.
        let web = try Self.start(
            "/usr/bin/env",
            ["python3", "-m", "http.server", "\(webPort)", "--bind", "127.0.0.1", "--directory", dir.path]
        )
        defer { web.stop() }
        dir.write("hosts", "127.0.0.1 site.example.org cdn.tiktok.example\n")
        dir.write(
            "squid.conf",
            """
            http_port 127.0.0.1:\(proxyPort)
            pid_filename \(dir.path)/squid.pid
            access_log stdio:\(dir.path)/access.log
            cache_log \(dir.path)/cache.log
            cache_store_log none
            cache deny all
            cache_mem 8 MB
            hosts_file \(dir.path)/hosts
            dns_nameservers 127.0.0.1
            acl blocked dstdomain .bet.example
            http_access deny blocked
            http_access allow localhost
            http_access deny all
            coredump_dir \(dir.path)
            shutdown_lifetime 1 seconds
            """
        )
        let squid = try Self.start("/usr/sbin/squid", ["-N", "-f", dir.path + "/squid.conf"])
        var squidRunning = true
        defer { if squidRunning { squid.stop() } }
        var up = false
        for _ in 0..<100 {
            guard !up else { break }
            let (_, code) = try Child.run(
                "/usr/bin/curl",
                [
                    "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://127.0.0.1:\(proxyPort)",
                    "http://site.example.org:\(webPort)/",
                ]
            )
            up = code == "200"
            if !up { usleep(200_000) }
        }
        #expect(up, "squid did not come up")
        let urls = [
            "http://www.bet.example/casino", "http://site.example.org:\(webPort)/abuse/42",
            "http://site.example.org:\(webPort)/homework",
        ]
        for url in urls {
            _ = try Child.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-x", "http://127.0.0.1:\(proxyPort)", url])
        }
        _ = try Child.run(
            "/usr/bin/curl",
            [
                "-s", "-o", "/dev/null", "-x", "http://127.0.0.1:\(proxyPort)", "-p",
                "http://cdn.tiktok.example:\(webPort)/v",
            ]
        )
        squid.stop()
        squidRunning = false

        // Stream both logs into esafetyd, as an admin's `tail -F | socat` would.
        let accessLines = lines(dir.path + "/access.log")
        let dnsLines = lines(dnsLog)
        #expect(accessLines.count >= urls.count + 2, "\(accessLines)")
        for file in [dir.path + "/access.log", dnsLog] {
            let (status, output) = try Child.run(
                "/usr/bin/socat",
                ["-u", "OPEN:\(file)", "UNIX-CONNECT:\(daemon.socket)"]
            )
            #expect(status == 0, "\(output)")
        }
        let s = try daemon.waitForLines(accessLines.count + dnsLines.count)
        #expect(s["lines_received"] as? Int == accessLines.count + dnsLines.count)
        #expect(s["parse_errors"] as? Int == 0, "\(s["sources"] ?? "")")
        let dnsQueries = dnsLines.filter { $0.contains("query[") }.count
        #expect(dnsQueries >= names.count + 1)
        #expect(s["lines_parsed"] as? Int == accessLines.count + dnsQueries)
        let byCategory = s["matched_by_category"] as? [String: Int] ?? [:]
        // Squid: bet (denied), the IWF URL, tiktok (CONNECT); dnsmasq: www.bet.example and cdn.tiktok.example.
        #expect(byCategory["gambling"] == 2)
        #expect(byCategory["iwf"] == 1)
        #expect(byCategory["social-media"] == 2)
        #expect(daemon.stop().0 == 0)

        // The same Squid lines through replay: the denied request is `blocked`, with its category.
        let (_, json) = try Child.run(
            buildDirectory + "/esafety",
            ["replay", "--json", "--lists", dir.path + "/lists", dir.path + "/access.log"]
        )
        let records = json.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let bet = records.first { ($0["host"] as? String) == "www.bet.example" }
        #expect(bet?["action"] as? String == "blocked")
        #expect(bet?["format"] as? String == "squid")
        let iwf = records.first { (($0["categories"] as? [[String: Any]])?.first?["name"] as? String) == "iwf" }
        #expect(iwf?["url"] as? String == "http://site.example.org:\(webPort)/abuse/42")
        #expect(iwf?["action"] as? String == "allowed")
    }

    /// A loopback UDP port for rsyslog's network input, apart from other test runs.
    static let syslogPort = 20000 + Int(getpid()) % 20000

    /// A fenced block of docs/INTEGRATION.md whose first line names the file it goes in.
    static func readmeBlock(for file: String) throws -> String {
        let text = try String(contentsOfFile: repositoryRoot + "/docs/INTEGRATION.md", encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]? = nil
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                if let c = current { blocks.append(c.joined(separator: "\n") + "\n") }
                current = current == nil ? [] : nil
            } else if current != nil {
                current!.append(line)
            }
        }
        return try #require(
            blocks.first { $0.hasPrefix("# " + file + "\n") },
            "INTEGRATION.md has no block for \(file)"
        )
    }

    @Test(
        "docs/INTEGRATION.md's rsyslog file, installed verbatim in a real rsyslogd, forwards Squid, dnsmasq, unbound and BIND"
    )
    func rsyslogAsDocumented() throws {
        let rsyslogd = try requireExecutable("/usr/sbin/rsyslogd", package: "rsyslog")
        let logger = try requireExecutable("/usr/bin/logger", package: "bsdutils")
        let dir = TempDir()
        dir.write(
            "lists/gambling/category.toml",
            "severity = \"medium\"\ncanary = \"gambling.canary.esafety.invalid\"\n"
        )
        dir.write("lists/gambling/domains", "gambling.canary.esafety.invalid\nbet.example\n")
        let daemon = try DaemonProcess(lists: [dir.path + "/lists"], dir: dir)
        // The document's block, with the test daemon's socket in place of /run/esafety's.
        let block = try Self.readmeBlock(for: "/etc/rsyslog.d/30-esafety.conf")
        dir.write(
            "rsyslog.d/30-esafety.conf",
            block.replacingOccurrences(of: "/run/esafety/ingest.dgram", with: daemon.datagram)
        )
        dir.write("work/.keep", "")
        dir.write(
            "rsyslog.conf",
            """
            global(workDirectory="\(dir.path)/work")
            module(load="imuxsock" SysSock.Use="off")
            input(type="imuxsock" Socket="\(dir.path)/log.sock")
            module(load="imudp")
            input(type="imudp" address="127.0.0.1" port="\(Self.syslogPort)")
            $IncludeConfig \(dir.path)/rsyslog.d/*.conf

            """
        )
        let rsyslog = try Child(
            rsyslogd,
            ["-n", "-f", dir.path + "/rsyslog.conf", "-i", dir.path + "/rsyslog.pid"],
            capture: true
        )
        defer { kill(rsyslog.pid, SIGKILL) }
        #expect(poll { FileManager.default.fileExists(atPath: dir.path + "/log.sock") })
        let socket = dir.path + "/log.sock"
        let sent: [(tag: String, priority: String, message: String, rfc5424: Bool)] = [
            (
                "squid", "local4.info",
                "1795255200.000 5 10.0.0.1 TCP_MISS/200 10 GET http://bet.example/a - HIER_DIRECT/1.2.3.4 text/html",
                false
            ),
            ("dnsmasq", "daemon.info", "query[A] bet.example from 10.0.0.2", false),
            ("unbound", "daemon.info", "[812:0] info: 10.0.0.3 bet.example. A IN", false),
            (
                "named", "local5.info",
                "client @0x7f0 10.0.0.4#5353 (bet.example): query: bet.example IN A + (10.0.0.53)", false
            ),
            // A message that reaches rsyslog as RFC 5424 over the network (another machine's, logger -n).
            ("dnsmasq", "daemon.info", "query[AAAA] bet.example from 10.0.0.5", true),
        ]
        for m in sent {
            let (rc, out) = try Child.run(
                logger,
                (m.rfc5424 ? ["--rfc5424", "-d", "-n", "127.0.0.1", "-P", "\(Self.syslogPort)"] : ["-u", socket])
                    + ["-t", m.tag, "-p", m.priority, m.message]
            )
            #expect(rc == 0, "\(out)")
        }
        let arrived = poll(timeout: 15) { (try? daemon.status())?["lines_matched"] as? Int == sent.count }
        if !arrived {
            kill(rsyslog.pid, SIGTERM)
            let (_, said) = rsyslog.wait()
            Issue.record("not all arrived: \(String(describing: try? daemon.status())); rsyslogd said: \(said)")
        }
        let status = try daemon.status()
        #expect(status["parse_errors"] as? Int == 0, "\(status)")
        let formats = (status["sources"] as? [[String: Any]])?.first?["formats"] as? [String: Any] ?? [:]
        for f in ["squid", "dnsmasq", "unbound", "bind"] { #expect(formats[f] != nil, "\(f) in \(formats)") }
        #expect(daemon.stop().0 == 0)
    }
}
