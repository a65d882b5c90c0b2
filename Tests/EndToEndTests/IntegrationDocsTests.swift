import Foundation
import Glibc
import TestSupport
import Testing

@testable import Incidents

/// docs/INTEGRATION.md, installed as written: its rsyslog file in a real rsyslogd, its Squid,
/// dnsmasq, unbound and BIND files in the real programs on loopback, each logging through
/// syslog(3) as it would on the school's server (the programs run in their own mount
/// namespace whose /dev/log is the test rsyslogd's socket). Real traffic goes through them;
/// esafetyd must record every request once, with whether and by whom it was blocked.
@Suite("docs/INTEGRATION.md in real programs", .serialized)
struct IntegrationDocsTests {
    static let document = repositoryRoot + "/docs/INTEGRATION.md"

    /// The document's fenced blocks whose first line names a file: file -> content.
    static func blocks() throws -> [String: String] {
        let text = try String(contentsOfFile: document, encoding: .utf8)
        var blocks: [String: String] = [:]
        var current: [Substring]? = nil
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                if let c = current, let first = c.first, first.hasPrefix("# /") {
                    blocks[String(first.dropFirst(2))] = c.joined(separator: "\n") + "\n"
                }
                current = current == nil ? [] : nil
            } else if current != nil {
                current!.append(line)
            }
        }
        return blocks
    }

    /// The files this suite installs; a block for any other file is not tested, and fails.
    static let exercised: Set<String> = [
        "/etc/rsyslog.d/30-esafety.conf", "/etc/squid/conf.d/esafety.conf", "/etc/dnsmasq.d/esafety.conf",
        "/etc/unbound/unbound.conf.d/esafety.conf", "/etc/unbound/unbound.conf.d/esafety-rpz.conf",
        "/etc/bind/named.conf.local",
    ]

    @Test("every file block in docs/INTEGRATION.md is one this suite installs")
    func everyBlockTested() throws {
        let names = Set(try Self.blocks().keys)
        #expect(
            names == Self.exercised,
            "untested: \(names.subtracting(Self.exercised)); gone: \(Self.exercised.subtracting(names))"
        )
    }

    /// Starts `program` in a mount namespace of its own whose /dev/log is `socket`.
    static func withSyslog(_ socket: String, dir: String, _ program: String, _ args: [String]) throws -> Child {
        let upper = dir + "/dev-upper-\(UUID().uuidString.prefix(6))"
        let work = upper + "-work"
        try FileManager.default.createDirectory(atPath: upper, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        symlink(socket, upper + "/log")
        let quoted = ([program] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        return try Child(
            "/usr/bin/unshare",
            [
                "--mount", "--propagation", "private", "/bin/sh", "-c",
                "mount -t overlay overlay -o lowerdir=/dev,upperdir=\(upper),workdir=\(work) /dev && "
                    + "mount -t tmpfs -o mode=1777 tmpfs /dev/shm && exec "
                    + quoted.joined(separator: " "),
            ],
            capture: true
        )
    }

    @Test(
        "rsyslog, Squid, dnsmasq, unbound and BIND as documented: every request once; resolver blocks recorded as blocked, by whom; Squid's search terms kept"
    )
    func asDocumented() throws {
        let rsyslogd = try requireExecutable("/usr/sbin/rsyslogd", package: "rsyslog")
        let squidBinary = try requireExecutable("/usr/sbin/squid", package: "squid")
        let dnsmasqBinary = try requireExecutable("/usr/sbin/dnsmasq", package: "dnsmasq")
        let unboundBinary = try requireExecutable("/usr/sbin/unbound", package: "unbound")
        let namedBinary = try requireExecutable("/usr/sbin/named", package: "bind9")
        let curl = try requireExecutable("/usr/bin/curl", package: "curl")
        _ = try requireExecutable("/usr/bin/unshare", package: "util-linux")
        let blocks = try Self.blocks()
        let dir = TempDir()
        chmod(dir.path, 0o777)  // Squid writes its cache.log as the proxy account
        dir.write("lists/self-harm/domains", "dns-harm.example\nub-harm.example\nbind-harm.example\n")
        dir.write("lists/gambling/domains", "bet.example\n")
        let daemon = try DaemonProcess(lists: [dir.path + "/lists"], dir: dir)
        // Four ports from 10000 to 19003: clear of RealPeersTests' (20000 to 30001) and of the
        // kernel's choices (32768 and up) that chromedriver and PostgreSQL get.
        let base = UInt16(10000 + Int(getpid() % 9000))

        // rsyslog with the document's file.
        dir.write(
            "rsyslog.d/30-esafety.conf",
            try #require(blocks["/etc/rsyslog.d/30-esafety.conf"]).replacingOccurrences(
                of: "/run/esafety/ingest.dgram",
                with: daemon.datagram
            )
        )
        dir.write("work/.keep", "")
        let logSocket = dir.path + "/log.sock"
        dir.write(
            "rsyslog.conf",
            """
            global(workDirectory="\(dir.path)/work")
            module(load="imuxsock" SysSock.Use="off")
            input(type="imuxsock" Socket="\(logSocket)")
            $IncludeConfig \(dir.path)/rsyslog.d/*.conf

            """
        )
        let rsyslog = try Child(rsyslogd, ["-n", "-f", dir.path + "/rsyslog.conf", "-i", dir.path + "/rsyslog.pid"])
        defer { rsyslog.stop(SIGKILL) }
        #expect(poll { FileManager.default.fileExists(atPath: logSocket) })

        // dnsmasq: the document's file; the school's own rule blocks dns-harm.example.
        let dnsmasqPort = base
        dir.write("dnsmasq.d/esafety.conf", try #require(blocks["/etc/dnsmasq.d/esafety.conf"]))
        dir.write(
            "dnsmasq.conf",
            """
            port=\(dnsmasqPort)
            listen-address=127.0.0.1
            bind-interfaces
            no-resolv
            no-hosts
            user=root
            pid-file=\(dir.path)/dnsmasq.pid
            address=/dns-harm.example/
            address=/ok.example/127.0.0.1
            conf-dir=\(dir.path)/dnsmasq.d

            """
        )
        let dnsmasq = try Self.withSyslog(
            logSocket,
            dir: dir.path,
            dnsmasqBinary,
            ["-k", "-C", dir.path + "/dnsmasq.conf"]
        )
        defer { dnsmasq.stop() }

        // unbound: the document's two files. The school's response policy zone, which BIND
        // below serves too, blocks ub-harm.example and bind-harm.example.
        let unboundPort = base + 1
        dir.write(
            "rpz.school.zone",
            """
            $TTL 60
            @ IN SOA localhost. root.localhost. 1 3600 600 86400 60
              IN NS localhost.
            ub-harm.example CNAME .
            bind-harm.example CNAME .
            probe.example CNAME .

            """
        )
        dir.write("unbound.d/esafety.conf", try #require(blocks["/etc/unbound/unbound.conf.d/esafety.conf"]))
        dir.write(
            "unbound.d/esafety-rpz.conf",
            try #require(blocks["/etc/unbound/unbound.conf.d/esafety-rpz.conf"]).replacingOccurrences(
                of: "/etc/unbound/rpz.school.zone",
                with: dir.path + "/rpz.school.zone"
            )
        )
        dir.write(
            "unbound.conf",
            """
            server:
                interface: 127.0.0.1
                port: \(unboundPort)
                do-daemonize: no
                username: ""
                chroot: ""
                directory: "\(dir.path)"
                pidfile: "\(dir.path)/unbound.pid"
                do-not-query-localhost: no
                module-config: "respip iterator"
                local-zone: "ok.example." static
                local-data: "ok.example. A 127.0.0.1"
            include: "\(dir.path)/unbound.d/*.conf"

            """
        )
        let unbound = try Self.withSyslog(
            logSocket,
            dir: dir.path,
            unboundBinary,
            ["-d", "-c", dir.path + "/unbound.conf"]
        )
        defer { unbound.stop() }

        // BIND: the document's file, and the same response policy zone.
        let namedPort = base + 2
        dir.write("named.conf.local", try #require(blocks["/etc/bind/named.conf.local"]))
        dir.write(
            "named.conf",
            """
            options {
              directory "\(dir.path)";
              listen-on port \(namedPort) { 127.0.0.1; };
              listen-on-v6 { none; };
              pid-file "\(dir.path)/named.pid";
              recursion yes;
              allow-query { 127.0.0.1; };
              dnssec-validation no;
              response-policy { zone "rpz.school"; } qname-wait-recurse no;
            };
            zone "rpz.school" { type primary; file "\(dir.path)/rpz.school.zone"; allow-query { none; }; };
            zone "ok.example" { type primary; file "\(dir.path)/ok.db"; };
            include "\(dir.path)/named.conf.local";

            """
        )
        dir.write(
            "ok.db",
            "$TTL 60\n@ IN SOA localhost. root.localhost. 1 3600 600 86400 60\n  IN NS localhost.\n@ IN A 127.0.0.1\n"
        )
        let named = try Self.withSyslog(
            logSocket,
            dir: dir.path,
            namedBinary,
            ["-f", "-u", "root", "-c", dir.path + "/named.conf"]
        )
        defer { named.stop() }

        // Squid: the document's file, after a loopback set-up of the test's own.
        let proxyPort = base + 3
        dir.write("squid.d/esafety.conf", try #require(blocks["/etc/squid/conf.d/esafety.conf"]))
        dir.write(
            "squid.conf",
            """
            http_port 127.0.0.1:\(proxyPort)
            pid_filename \(dir.path)/squid.pid
            cache_log \(dir.path)/cache.log
            cache_store_log none
            cache deny all
            cache_mem 8 MB
            dns_nameservers 127.0.0.1
            acl blocked dstdomain .bet.example
            http_access deny blocked
            http_access allow localhost
            http_access deny all
            coredump_dir \(dir.path)
            shutdown_lifetime 1 seconds
            include \(dir.path)/squid.d/*.conf

            """
        )
        let squid = try Self.withSyslog(logSocket, dir: dir.path, squidBinary, ["-N", "-f", dir.path + "/squid.conf"])
        defer { squid.stop() }

        // Traffic: a lookup of each resolver's blocked name and of an allowed one.
        for (port, name) in [
            (dnsmasqPort, "dns-harm.example"), (unboundPort, "ub-harm.example"), (namedPort, "bind-harm.example"),
        ] {
            #expect(poll(timeout: 20) { RealPeersTests.query("ok.example", port: port) }, "port \(port) answers")
            // BIND loads its response policy zone after it starts answering: until then a
            // listed name is recursed for (no network here: no answer). A name in the zone and in
            // no esafety list tells when it is in force (its lines count, and raise nothing).
            if port != dnsmasqPort {
                #expect(poll(timeout: 20) { RealPeersTests.query("probe.example", port: port) }, "policy on \(port)")
            }
            #expect(RealPeersTests.query(name, port: port), "\(name)")
        }
        // A search through Squid, refused by its own rule.
        var denied = false
        for _ in 0..<50 where !denied {
            let (_, code) = try Child.run(
                curl,
                [
                    "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://127.0.0.1:\(proxyPort)",
                    "http://www.bet.example/search?q=poker+tips",
                ]
            )
            denied = code == "403"
            if !denied { usleep(200_000) }
        }
        #expect(denied, "squid did not answer")

        // What esafetyd recorded: one incident per visit, with the resolver's verdict.
        let log = dir.path + "/incidents.jsonl"
        func views() -> [IncidentView] { (try? IncidentStore.load(log, group: nil)) ?? [] }
        func incident(_ host: String) -> [IncidentView] { views().filter { $0.host.hasPrefix(host) } }
        let arrived = poll(timeout: 30) {
            ["dns-harm.example", "ub-harm.example", "bind-harm.example", "www.bet.example"].allSatisfy {
                incident($0).first?.record.blockedBy != nil
            }
        }
        if !arrived {
            Issue.record("\(views().map { "\($0.host) \($0.record.action) \($0.record.blockedBy ?? "-")" })")
            Issue.record("status: \(String(describing: try? daemon.status()))")
        }
        for (host, format, blocker) in [
            ("dns-harm.example", "dnsmasq", "dnsmasq"), ("ub-harm.example", "unbound", "rpz"),
            ("bind-harm.example", "bind", "rpz"), ("www.bet.example", "squid", "squid"),
        ] {
            let found = incident(host)
            #expect(found.count == 1, "\(host): one incident, not \(found.count)")
            #expect(found.first?.record.action == "blocked", "\(host)")
            #expect(found.first?.record.blockedBy == blocker, "\(host)")
            #expect(found.first?.record.source.format == format, "\(host)")
            #expect(found.first?.hits == 1, "\(host): the block line is not a second visit")
        }
        #expect(incident("www.bet.example").first?.record.searchTerm == "poker tips", "strip_query_terms off")
        let status = try daemon.status()
        #expect(status["parse_errors"] as? Int == 0, "\(status)")
    }
}
