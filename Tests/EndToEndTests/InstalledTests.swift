import Foundation
import Glibc
import TestSupport
import Testing

/// scripts/install in a booted Debian 12 with its own systemd, checked as the people who use
/// it: the proxy's account sends lines, a coordinator (not root) reads and acts, someone
/// outside the groups can do neither.
@Suite("Installed for real under systemd", .serialized)
struct InstalledTests {
    /// A Squid line (through syslog) for `user` visiting the self-harm canary.
    static func squidLine(_ user: String, path: String = "a") -> String {
        "1795255200.000 5 10.0.0.7 TCP_MISS/200 10 GET http://self-harm.canary.esafety.invalid/\(path) \(user) "
            + "HIER_DIRECT/1.2.3.4 text/html"
    }

    /// Owner, group and mode of each path, one line each.
    static let modes =
        "stat -c '%n %U %G %a' /run/esafety /run/esafety/ingest.sock /run/esafety/ingest.dgram "
        + "/run/esafety/control.sock /var/lib/esafety /var/lib/esafety/incidents.jsonl"

    @Test(
        "scripts/install: the units start; the proxy writes, a coordinator reads and acts, others cannot; reload, restart, the report and lines sent while stopped"
    )
    func installed() throws {
        let c = try Container()
        // --prefix and --no-start: installed and enabled where asked, nothing started.
        let elsewhere = try c.run(
            "/src/scripts/install --from /opt/esafety-build --prefix /opt/esafety --no-start 2>&1"
        )
        #expect(elsewhere.0 == 0, "\(elsewhere.1)")
        #expect(try c.run("test -x /opt/esafety/bin/esafetyd && test -d /opt/esafety/share/esafety/Blocklists").0 == 0)
        #expect(
            try c.run("grep -c '^ExecStart=/opt/esafety/bin/esafetyd$' /etc/systemd/system/esafetyd.service").1
                .hasPrefix("1")
        )
        #expect(try c.run("systemctl is-active esafetyd.service").1.hasPrefix("inactive"))
        #expect(try c.run("systemctl is-enabled esafetyd.service").1.hasPrefix("enabled"))
        try c.run("rm -f /etc/esafety/esafetyd.yaml")
        let (code, out) = try c.run("/src/scripts/install --from /opt/esafety-build 2>&1")
        try #require(code == 0, "\(out)")
        // Idempotent: a second run changes nothing and keeps the configuration.
        try c.run("echo '# edited by the admin' >> /etc/esafety/esafetyd.yaml")
        let again = try c.run("/src/scripts/install --from /opt/esafety-build 2>&1")
        #expect(again.0 == 0, "\(again.1)")
        #expect(again.1.contains("kept your /etc/esafety/esafetyd.yaml"))
        #expect(try c.run("tail -1 /etc/esafety/esafetyd.yaml").1.contains("edited by the admin"))

        try c.run(
            "useradd -m alice && usermod -aG esafety-admin alice && useradd -m bob && usermod -aG esafety-log proxy"
        )

        // The units: socket activation, Type=notify with its watchdog, the timer.
        let active = try c.run(
            "systemctl is-active esafetyd.socket esafetyd-control.socket esafetyd.service esafety-report.timer"
        )
        #expect(active.1.split(separator: "\n") == ["active", "active", "active", "active"], "\(active.1)")
        let show = try c.run("systemctl show esafetyd.service -p Type -p WatchdogUSec -p User -p Group")
        for line in ["Type=notify", "WatchdogUSec=30s", "User=esafety", "Group=esafety-admin"] {
            #expect(show.1.contains(line), "\(show.1)")
        }
        let modes = try c.run(Self.modes)
        let expected = [
            "/run/esafety esafety esafety 711", "/run/esafety/ingest.sock esafety esafety-log 660",
            "/run/esafety/ingest.dgram esafety esafety-log 660", "/run/esafety/control.sock esafety esafety-admin 660",
            "/var/lib/esafety esafety esafety-admin 750", "/var/lib/esafety/incidents.jsonl esafety esafety-admin 640",
        ]
        #expect(modes.1.split(separator: "\n").map(String.init) == expected, "\(modes.1)")

        // The proxy's account writes through syslog's socket; bob, in no group, cannot.
        let sent = try c.run(
            "logger --socket-errors=on -d -u /run/esafety/ingest.dgram -t squid '\(Self.squidLine("pupil7"))'",
            as: "proxy"
        )
        #expect(sent.0 == 0, "\(sent.1)")
        let refused = try c.run(
            "logger --socket-errors=on -d -u /run/esafety/ingest.dgram -t squid '\(Self.squidLine("pupil8"))'",
            as: "bob"
        )
        #expect(refused.0 != 0, "bob may not send lines: \(refused.1)")

        // The coordinator: status, the incident, an action recorded as theirs.
        #expect(poll(timeout: 20) { (try? c.run("esafety incidents list", as: "alice").1.contains("pupil7")) == true })
        let status = try c.run("esafety status", as: "alice")
        #expect(status.0 == 0, "\(status.1)")
        #expect(status.1.contains("syslog"), "\(status.1)")
        let list = try c.run("esafety incidents list --json", as: "alice")
        let id = try #require(json(String(list.1.split(separator: "\n").first ?? ""))["id"] as? String, "\(list.1)")
        let direct = try c.run("esafety incidents ack \(id.prefix(12))", as: "alice")
        #expect(direct.0 != 0)
        #expect(direct.1.contains("sudo -u esafety"), "the refusal says how: \(direct.1)")
        let ack = try c.run("sudo -u esafety esafety incidents ack \(id.prefix(12))", as: "alice")
        #expect(ack.0 == 0, "\(ack.1)")
        #expect(ack.1.contains("ack by alice"), "\(ack.1)")
        let shown = try c.run("esafety incidents show \(id.prefix(12))", as: "alice")
        #expect(shown.1.contains("state        acknowledged"), "\(shown.1)")
        // bob: not the coordinators' group.
        #expect(try c.run("esafety status", as: "bob").0 != 0)
        let bobList = try c.run("esafety incidents list", as: "bob")
        #expect(bobList.0 != 0 && !bobList.1.contains("pupil7"), "\(bobList.1)")
        #expect(try c.run("sudo -n -u esafety esafety incidents ack \(id.prefix(12))", as: "bob").0 != 0)
        #expect(try c.run("cat /var/lib/esafety/incidents.jsonl", as: "bob").0 != 0)

        // The nightly report's service writes a report the coordinator can read.
        let report = try c.run("systemctl start esafety-report.service && ls /var/lib/esafety/reports/")
        #expect(report.0 == 0 && report.1.contains(".html"), "\(report.1)")
        #expect(try c.run("cat /var/lib/esafety/reports/*.html | head -c 100", as: "alice").0 == 0)
        #expect(try c.run("esafety report --date $(date +%F)", as: "alice").1.contains("pupil7"))

        // systemctl reload loads the lists again.
        func generation() throws -> Int {
            json(try c.run("esafety status --json", as: "alice").1)["generation"] as? Int ?? -1
        }
        let before = try generation()
        try c.run("systemctl reload esafetyd.service")
        #expect(poll(timeout: 20) { (try? generation()) == before + 1 }, "reload: generation \(before)")

        // A restart keeps every owner and mode (systemd sets them again at start).
        try c.run("systemctl restart esafetyd.service")
        #expect(try c.run(Self.modes).1 == modes.1)
        #expect(try c.run("esafety status", as: "alice").0 == 0)

        // Lines sent to the stream socket while esafetyd is stopped are read when it starts
        // (systemd holds the socket; the connection starts it).
        try c.run("systemctl stop esafetyd.service")
        #expect(try c.run("systemctl is-active esafetyd.service").1.hasPrefix("inactive"))
        let streamed = try c.run(
            "logger --socket-errors=on -T -u /run/esafety/ingest.sock -t squid '\(Self.squidLine("pupil9"))'",
            as: "proxy"
        )
        #expect(streamed.0 == 0, "\(streamed.1)")
        #expect(poll(timeout: 30) { (try? c.run("esafety incidents list", as: "alice").1.contains("pupil9")) == true })
        #expect(try c.run("systemctl is-active esafetyd.service").1.hasPrefix("active"))
        // The same for rsyslog's datagram socket.
        try c.run("systemctl stop esafetyd.service")
        try c.run(
            "logger --socket-errors=on -d -u /run/esafety/ingest.dgram -t squid '\(Self.squidLine("pupil13"))'",
            as: "proxy"
        )
        #expect(poll(timeout: 30) { (try? c.run("esafety incidents list", as: "alice").1.contains("pupil13")) == true })

        // Squid's access.log through the shipped follower unit, as docs/INTEGRATION.md says:
        // what the file held before is history; what Squid writes after arrives.
        try c.run(
            "install -d -o proxy -g proxy -m 0750 /var/log/squid && "
                + "echo '\(Self.squidLine("pupil10"))' > /var/log/squid/access.log && "
                + "chown proxy:proxy /var/log/squid/access.log && chmod 0640 /var/log/squid/access.log"
        )
        let follow = try c.run("systemctl enable --now esafety-follow.service 2>&1")
        #expect(follow.0 == 0, "\(follow.1)")
        #expect(
            poll(timeout: 10) {
                (try? c.run("systemctl is-active esafety-follow.service").1)?.hasPrefix("active") == true
            }
        )
        usleep(500_000)
        try c.run("echo '\(Self.squidLine("pupil11"))' >> /var/log/squid/access.log", as: "proxy")
        #expect(poll(timeout: 30) { (try? c.run("esafety incidents list", as: "alice").1.contains("pupil11")) == true })
        #expect(try c.run("esafety incidents list", as: "alice").1.contains("pupil10") == false)
        #expect(
            try c.run("ls /var/lib/esafety-follow/ 2>&1 || ls /var/lib/private/esafety-follow/").1.contains(".position")
        )

        // An alert that needs the network, which esafetyd's sandbox forbids: spooled by
        // esafetyd, sent by esafety-alert.service (logger to a syslog server on loopback).
        let receiver = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(receiver) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(receiver, $0, &len) }
        }
        let port = UInt16(bigEndian: addr.sin_port)
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let command =
            #"  commands: [{name: siem, command: ["/usr/bin/logger", "--socket-errors=on", "-n", "127.0.0.1", "-P", "\#(port)", "-d", "-t", "esafety-alert"]}]"#
        try c.run(
            "sed -i 's|^  commands: \\[\\]$|\(command)|' /etc/esafety/esafetyd.yaml && systemctl restart esafetyd.service"
        )
        #expect(try c.run("grep -c 'name: siem' /etc/esafety/esafetyd.yaml").1.hasPrefix("1"))
        #expect(try c.run("systemctl is-active esafety-alert.path").1.hasPrefix("active"))
        try c.run(
            "logger --socket-errors=on -d -u /run/esafety/ingest.dgram -t squid '\(Self.squidLine("pupil12", path: "alert"))'",
            as: "proxy"
        )
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(receiver, &buffer, buffer.count, 0)
        let alert = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
        let diagnosis =
            alert.isEmpty
            ? (try? c.run("esafety status; journalctl -u esafety-alert --no-pager | tail -5"))?.1 ?? "" : ""
        #expect(alert.contains("pupil12") && alert.contains("self-harm"), "the alert arrived: \(alert) \(diagnosis)")
        #expect(poll(timeout: 10) { (try? c.run("ls /var/lib/esafety/alerts | wc -l").1.hasPrefix("0")) == true })
        // The counter is written when the command has exited, which may be after the SIEM got
        // the datagram and the spool emptied: read until it is there (a race, seen once).
        var counters = (Int32(0), "")
        _ = try poll(timeout: 10) {
            counters = try c.run("grep '\"event\":\"alert\"' /var/lib/esafety/counters.jsonl", as: "alice")
            return counters.1.contains("\"command\":\"siem\",\"ok\":true")
        }
        #expect(counters.1.contains("\"command\":\"siem\",\"ok\":true"), "\(counters.1)")
        let handed = try c.run("esafety status", as: "alice").1
        #expect(handed.contains("1 handed to the delivery spool /var/lib/esafety/alerts"), "\(handed)")

        // esafetyd keeps the incident index; the coordinator's tools read it as it stands.
        #expect(
            try c.run("stat -c '%U %G %a' /var/lib/esafety/incidents.jsonl.index.sqlite").1.hasPrefix(
                "esafety esafety-admin 640"
            )
        )
        #expect(poll(timeout: 10) { (try? c.run("esafety index status", as: "alice").1.contains(": current")) == true })
        #expect(try c.run("esafety incidents list --person pupil12", as: "alice").1.contains("pupil12"))
        #expect(try c.run("esafety index status", as: "bob").0 != 0)

        // The console: running on loopback as the service account under its own unit. Root
        // makes a DSL's account; the DSL logs in, sees the pupil's incident and acknowledges
        // it: the event is in the log as the DSL's, and the view is in the access log.
        #expect(try c.run("systemctl is-active esafety-web.service").1.hasPrefix("active"))
        let added = try c.run("printf '%s\\n' 'a long dsl password' | esafety web user add dsl-a --role dsl 2>&1")
        #expect(added.0 == 0, "\(added.1)")
        #expect(try c.run("stat -c '%U %a' /etc/esafety/web-accounts").1.hasPrefix("esafety 600"))
        let picked = try c.run("esafety incidents list --person pupil12 --json", as: "alice")
        let pupil12 = try #require(json(String(picked.1.split(separator: "\n").first ?? ""))["id"] as? String)
        let web = HTTPClient(port: 8080)
        #expect(poll(timeout: 20) { (try? web.get("/login").status) == 200 })
        let form = try web.get("/login")
        let login = try web.post(
            "/login",
            [("csrf", form.field("csrf") ?? ""), ("username", "dsl-a"), ("password", "a long dsl password")]
        )
        #expect(login.status == 303, "\(login.status) \(login.body.prefix(300))")
        let page = try web.get("/incidents/\(pupil12)")
        #expect(page.status == 200 && page.body.contains("pupil12"), "\(page.status) \(page.body.prefix(300))")
        let acked = try web.post("/incidents/\(pupil12)/ack", [("csrf", page.field("csrf") ?? "")])
        #expect(acked.status == 303, "\(acked.status) \(acked.body.prefix(300))")
        #expect(
            try c.run(
                "grep -c '\"event\":\"ack\",\"id\":\"\(pupil12)\".*\"by\":\"dsl-a\"' /var/lib/esafety/incidents.jsonl"
            ).1.hasPrefix("1")
        )
        #expect(try c.run("esafety verify /var/lib/esafety/incidents.jsonl", as: "alice").0 == 0)
        #expect(
            try c.run("stat -c '%U %G %a' /var/lib/esafety/console-access.log").1.hasPrefix("esafety esafety-admin 640")
        )
        #expect(try c.run("grep -c '\"what\":\"incident\"' /var/lib/esafety/console-access.log").1.hasPrefix("1"))
        #expect(try c.run("cat /var/lib/esafety/console-access.log", as: "bob").0 != 0)
    }

    @Test(
        "docs/CENTRAL.md's set-up run as written: the trust makes the school's forwarder role; the school's esafety-forward.service ships its incidents over TLS (verify-full), its password a systemd credential seen nowhere else"
    )
    func forwardService() throws {
        // The trust's store on this machine: TLS on 127.0.0.1 with a certificate for
        // db.trust.example, signed by a local CA (the container shares this machine's network).
        let dir = TempDir()
        try makeLocalCertificates(in: dir.path, name: "server", subjectAltName: "DNS:db.trust.example")
        let pg = try CentralTests.store(
            dir,
            sites: ["south"],
            extra: ["-c", "ssl=on", "-c", "ssl_cert_file=server.pem", "-c", "ssl_key_file=server.key"]
        ) { folder in
            for f in ["server.pem", "server.key"] {
                try FileManager.default.copyItem(atPath: "\(dir.path)/\(f)", toPath: "\(folder)/data/\(f)")
            }
            chmod("\(folder)/data/server.key", 0o600)
        }
        let document = try String(contentsOfFile: repositoryRoot + "/docs/CENTRAL.md", encoding: .utf8)
        let text = document.split(separator: "\n", omittingEmptySubsequences: false)
        /// The first block of commands after the line ending `paragraph`, its indent removed.
        func block(after paragraph: String) throws -> String {
            let line = try #require(text.firstIndex { $0.hasSuffix(paragraph) })
            let start = try #require(text[line...].firstIndex { $0.hasPrefix("    ") })
            return text[start...].prefix { $0.hasPrefix("    ") }.map { $0.dropFirst(4) }.joined(separator: "\n")
        }
        // The trust's administrator makes the school's forwarder role as docs/CENTRAL.md does,
        // on this server's socket (psql by PGHOST and PGPORT, the URL naming it) and with a
        // password for '...'.
        let role = try block(after: "role of its own and its part:")
        #expect(role.contains("--role fwd_north --as forwarder --site north"), "\(role)")
        let made = try Child.run(
            "/bin/sh",
            [
                "-c",
                role.replacingOccurrences(of: "sudo -u postgres ", with: "runuser -u postgres -- ")
                    .replacingOccurrences(of: "'...'", with: "'pw-fwd_north'")
                    .replacingOccurrences(
                        of: "postgres@/esafety?host=/var/run/postgresql",
                        with: "postgres@:\(pg.port)/esafety?host=\(pg.dir)"
                    )
                    .replacingOccurrences(of: "esafety central grant", with: CentralTests.esafety + " central grant")
                    + " 2>&1",
            ],
            environment: ["PGHOST": pg.dir, "PGPORT": String(pg.port)]
        )
        #expect(made.0 == 0, "\(made.1)")
        let c = try Container()
        let (code, out) = try c.run("/src/scripts/install --from /opt/esafety-build 2>&1")
        try #require(code == 0, "\(out)")
        try c.run("usermod -aG esafety-log proxy && echo '127.0.0.1 db.trust.example' >> /etc/hosts")
        let ca = try String(contentsOfFile: dir.path + "/ca.pem", encoding: .utf8)
        try c.run("cat > /etc/esafety/trust-ca.pem <<'PEM'\n\(ca)PEM")
        // The school's block of docs/CENTRAL.md as it is written, but for the password typed in
        // an editor and the test server's port.
        let school = try block(after: "never the password:")
        #expect(school.contains("systemctl enable --now esafety-forward.service"), "\(school)")
        let typed = school.replacingOccurrences(
            of: "editor /etc/esafety/postgres-password",
            with: "echo pw-fwd_north > /etc/esafety/postgres-password"
        ).replacingOccurrences(of: "@db.trust.example/", with: "@db.trust.example:\(pg.port)/")
        let setUp = try c.run(typed + " 2>&1")
        #expect(setUp.0 == 0, "\(setUp.1)")
        #expect(try c.run("stat -c '%U %a' /etc/esafety/postgres-password").1 == "root 600\n")
        #expect(try c.run("systemctl is-active esafety-forward.service").1 == "active\n")
        // A pupil's incident at the school reaches the store, with every line of the log.
        for user in ["pupil7", "pupil8"] {
            let sent = try c.run(
                "logger --socket-errors=on -d -u /run/esafety/ingest.dgram -t squid '\(Self.squidLine(user))'",
                as: "proxy"
            )
            #expect(sent.0 == 0, "\(sent.1)")
        }
        func local() -> Int {
            Int(
                (try? c.run("wc -l < /var/lib/esafety/incidents.jsonl").1)?.trimmingCharacters(
                    in: .whitespacesAndNewlines
                ) ?? ""
            ) ?? -1
        }
        #expect(
            poll(timeout: 30) { CentralTests.shipped(pg, "north") >= 2 && CentralTests.shipped(pg, "north") == local() }
        )
        #expect(
            pg.value("SELECT string_agg(person, ',' ORDER BY person) FROM esafety.incidents WHERE site = 'north'")
                == "pupil7,pupil8"
        )
        #expect(pg.value("SELECT count(*) FROM esafety.lines WHERE site = 'north' AND NOT intact") == "0")
        // Over TLS, as the forwarder's role; the service as esafety, its password nowhere but the credential.
        #expect(
            pg.value(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.usename = 'fwd_north'"
            ) == "1"
        )
        #expect(try c.run("systemctl show esafety-forward.service -p User").1 == "User=esafety\n")
        let environment = try c.run(
            "tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value esafety-forward.service)/environ"
        )
        #expect(
            environment.1.contains("CREDENTIALS_DIRECTORY=/run/credentials/esafety-forward.service"),
            "the password handed over as a credential: \(environment.1)"
        )
        #expect(!environment.1.contains("pw-fwd_north"))
        let seen = try c.run(
            "for p in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $p; echo; done; journalctl -u esafety-forward.service --no-pager; cat /var/lib/esafety/forward-north.position"
        )
        #expect(seen.1.contains("esafety forward --site north") && !seen.1.contains("pw-fwd_north"), "\(seen.1)")
        // esafety status shows how far the forwarder has shipped.
        let status = try c.run("esafety status")
        #expect(status.1.contains("forwarding site north"), "\(status.1)")
    }

}
