import Foundation
import TestSupport
import Testing

@testable import Daemon
@testable import Incidents

@Suite("systemd integration", .serialized)
struct SystemdTests {
    @Test("systemd-analyze verify passes on the shipped units")
    func unitsVerify() throws {
        let analyze = try requireExecutable("/usr/bin/systemd-analyze", package: "systemd")
        let dir = TempDir()
        for unit in [
            "esafetyd.service", "esafetyd.socket", "esafetyd-control.socket", "esafety-report.service",
            "esafety-report.timer", "esafety-follow.service", "esafety-web.service", "esafety-forward.service",
            "esafety-web-central.service",
        ] {
            var text = try String(contentsOfFile: repositoryRoot + "/systemd/" + unit, encoding: .utf8)
            // Point at the binary this build made (the unit names the installed path).
            text = text.replacingOccurrences(of: "/usr/local/bin/esafetyd", with: buildDirectory + "/esafetyd")
                .replacingOccurrences(of: "/usr/local/bin/esafety ", with: buildDirectory + "/esafety ")
            dir.write(unit, text)
        }
        let (status, output) = try Child.run(
            analyze,
            [
                "verify", "--man=no",
                dir.path + "/esafetyd.service", dir.path + "/esafetyd.socket", dir.path + "/esafetyd-control.socket",
                dir.path + "/esafety-report.service", dir.path + "/esafety-report.timer",
                dir.path + "/esafety-follow.service", dir.path + "/esafety-web.service",
                dir.path + "/esafety-forward.service", dir.path + "/esafety-web-central.service",
            ]
        )
        #expect(status == 0, "\(output)")
        #expect(!output.contains("Unknown"), "\(output)")
        let service = try String(contentsOfFile: repositoryRoot + "/systemd/esafetyd.service", encoding: .utf8)
        for line in [
            "Type=notify", "ExecReload=/usr/local/bin/esafety reload", "User=esafety", "ProtectSystem=strict",
            "NoNewPrivileges=yes", "PrivateTmp=yes", "RestrictAddressFamilies=AF_UNIX", "WatchdogSec=",
        ] {
            #expect(service.contains(line), "missing \(line)")
        }
    }

    @Test(
        "the shipped logrotate file, run by logrotate: LOG.1 keeps the lines, esafetyd reopens, the chain and the readers go on"
    )
    func logrotate() throws {
        let logrotate = try requireExecutable("/usr/sbin/logrotate", package: "logrotate")
        let dir = TempDir()
        dir.write("lists/gambling/domains", "bet.example\n")
        let daemon = try DaemonProcess(lists: [dir.path + "/lists"], dir: dir)
        let log = dir.path + "/incidents.jsonl"
        func send(_ user: String) throws {
            let fd = try connectUnix(daemon.socket)
            writeAll(
                fd,
                Array(
                    "1795255200.000 5 10.0.0.9 TCP_MISS/200 900 GET http://bet.example/ \(user) HIER_DIRECT/1.2.3.4 text/html\n"
                        .utf8
                )
            )
            close(fd)
        }
        func lineCount(_ file: String) -> Int {
            ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        try send("p1")
        try send("p2")
        for _ in 0..<250 where lineCount(log) < 2 { usleep(20_000) }
        // The shipped file, pointed at this folder, this account and this esafetyd.
        let me = String(cString: getpwuid(getuid())!.pointee.pw_name)
        let group = String(cString: getgrgid(getgid())!.pointee.gr_name)
        let conf = try String(contentsOfFile: repositoryRoot + "/systemd/esafety.logrotate", encoding: .utf8)
            .replacingOccurrences(of: "/var/lib/esafety/", with: dir.path + "/")
            .replacingOccurrences(of: "create 0640 esafety esafety-admin", with: "create 0640 \(me) \(group)")
            .replacingOccurrences(
                of: "/bin/systemctl kill --signal=SIGUSR1 --kill-whom=main esafetyd.service",
                with: "/bin/kill -USR1 \(daemon.child.pid)"
            )
        #expect(conf.contains("/bin/kill -USR1") && conf.contains(dir.path + "/incidents.jsonl {"), "\(conf)")
        dir.write("logrotate.conf", conf)
        let (status, output) = try Child.run(
            logrotate,
            ["-f", "-s", dir.path + "/logrotate.state", dir.path + "/logrotate.conf"]
        )
        #expect(status == 0, "\(output)")
        #expect(lineCount(log + ".1") == 2)
        #expect((try FileManager.default.attributesOfItem(atPath: log)[.posixPermissions] as? Int) == 0o640)
        // esafetyd writes the next incident into the new file, following LOG.1's last line.
        try send("p3")
        for _ in 0..<250 where lineCount(log) < 1 { usleep(20_000) }
        let verify = try Child.run(buildDirectory + "/esafety", ["verify", log])
        #expect(verify.0 == 0 && verify.1.contains("OK: 3 line(s) in 2 file(s) verified"), "\(verify.1)")
        let list = try Child.run(buildDirectory + "/esafety", ["incidents", "list", "--log", log])
        #expect(list.0 == 0 && ["p1", "p2", "p3"].allSatisfy { list.1.contains($0) }, "\(list.1)")
        // Before the reopen, esafetyd wrote the rotated file's head to its own log.
        let (exit, logged) = daemon.stop()
        #expect(exit == 0)
        let rotatedLast = try #require(String(contentsOfFile: log + ".1", encoding: .utf8).split(separator: "\n").last)
        let rotatedHead = try #require(HashChain.split(rotatedLast)).chain
        #expect(
            logged.split(separator: "\n").contains {
                $0.contains("incident log chain head") && $0.contains("incidents.chain=\(rotatedHead)")
            },
            "\(logged)"
        )
    }

    @Test(
        "under the journal (JOURNAL_STREAM names stderr) each line carries its syslog priority and no time of its own"
    )
    func journalPriorities() throws {
        let dir = TempDir()
        dir.write("lists/gambling/domains", "bet.example\n")
        // What systemd does: JOURNAL_STREAM is device:inode of the stream standard error is.
        let wrapper = ["/bin/sh", "-c", "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$0\" \"$@\""]
        let daemon = try DaemonProcess(lists: [dir.path + "/lists"], dir: dir, wrapper: wrapper)
        let log = dir.path + "/incidents.jsonl"
        let fd = try connectUnix(daemon.socket)
        writeAll(
            fd,
            Array(
                "1795255200.000 5 10.0.0.9 TCP_MISS/200 900 GET http://bet.example/ p1 HIER_DIRECT/1.2.3.4 text/html\n"
                    .utf8
            )
        )
        close(fd)
        for _ in 0..<250 where ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").isEmpty { usleep(20_000) }
        #expect(truncate(log, 0) == 0)
        for _ in 0..<250 where !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("truncated") {
            usleep(20_000)
        }
        let (status, output) = daemon.stop()
        #expect(status == 0)
        let lines = output.split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.first == "<" }, "\(output)")
        #expect(lines.contains { $0.hasPrefix("<6>info esafetyd:") && $0.hasSuffix("esafetyd ready") }, "\(output)")
        #expect(
            lines.contains { $0.hasPrefix("<2>critical esafetyd:") && $0.contains("THE INCIDENT LOG WAS CUT SHORT") },
            "\(output)"
        )
        #expect(
            lines.contains { $0.hasPrefix("<5>notice esafetyd:") && $0.hasSuffix("incident log chain head") },
            "\(output)"
        )
        // Elsewhere (a terminal, a file), a line starts with its time.
        let plain = DaemonLogHandler.format(
            level: .warning,
            label: "esafetyd",
            message: "a\u{1B}[2Jb\nc",
            metadata: ["peer": "x\ny"],
            source: "Daemon",
            journal: false,
            time: 1795255200.5
        )
        #expect(plain == "2026-11-21T10:00:00.500Z warning esafetyd: peer=x\\x0Ay [Daemon] a\\x1B[2Jb\\x0Ac\n")
        #expect(
            DaemonLogHandler.format(
                level: .error,
                label: "l",
                message: "m",
                metadata: [:],
                source: "S",
                journal: true,
                time: 0
            ) == "<3>error l: [S] m\n"
        )
        // JOURNAL_STREAM is inherited: it counts only when it names this very descriptor.
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        var st = stat()
        fstat(fds[1], &st)
        #expect(DaemonLogHandler.isJournal(fd: fds[1], environment: "\(st.st_dev):\(st.st_ino)"))
        #expect(!DaemonLogHandler.isJournal(fd: fds[1], environment: "\(st.st_dev):\(st.st_ino + 1)"))
        #expect(!DaemonLogHandler.isJournal(fd: fds[1], environment: nil))
        #expect(!DaemonLogHandler.isJournal(fd: fds[1], environment: "junk"))
    }

    @Test("sd_notify: READY, RELOADING, STOPPING and WATCHDOG are sent to NOTIFY_SOCKET")
    func notify() throws {
        let dir = TempDir()
        let path = dir.path + "/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        dir.write("lists/gambling/domains", "bet.example\n")
        let daemon = try DaemonProcess(
            lists: [dir.path + "/lists"],
            dir: dir,
            environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"]
        )
        func messages(until needle: String) -> [String] {
            var out: [String] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            for _ in 0..<50 {
                let n = recv(fd, &buf, buf.count, 0)
                if n <= 0 { break }
                out.append(String(decoding: buf[0..<n], as: UTF8.self))
                if out.last!.contains(needle) { break }
            }
            return out
        }
        #expect(messages(until: "READY=1").contains { $0.hasPrefix("READY=1") })
        #expect(messages(until: "WATCHDOG=1").contains("WATCHDOG=1"))
        daemon.signal(SIGHUP)
        let reload = messages(until: "READY=1")
        #expect(reload.contains { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") })
        daemon.signal(SIGTERM)
        #expect(messages(until: "STOPPING=1").contains("STOPPING=1"))
        #expect(daemon.waitExit().0 == 0)
    }

    @Test("with the shipped unit's watchdog (30 s), a stop does not wait for the watchdog's next beat")
    func stopNotHeldByWatchdog() throws {
        let dir = TempDir()
        dir.write("lists/gambling/domains", "bet.example\n")
        // A restart under systemd took 15 s: the watchdog task slept half the interval through
        // the shutdown. The stop waits only for the drain (at most 5 s when a sender stalls).
        let daemon = try DaemonProcess(
            lists: [dir.path + "/lists"],
            dir: dir,
            environment: ["WATCHDOG_USEC": "30000000", "NOTIFY_SOCKET": dir.path + "/nobody.sock"]
        )
        usleep(300_000)
        let start = Date()
        daemon.signal(SIGTERM)
        #expect(daemon.waitExit().0 == 0)
        #expect(Date().timeIntervalSince(start) < 8, "stopped after \(Date().timeIntervalSince(start)) s")
    }

    @Test("socket activation: esafetyd uses the sockets systemd passes")
    func socketActivation() throws {
        let activate = try requireExecutable("/usr/bin/systemd-socket-activate", package: "systemd")
        let dir = TempDir()
        dir.write("lists/gambling/domains", "bet.example\n")
        let ingest = dir.path + "/act.sock"
        let launcher = try Child(
            activate,
            [
                "-l", ingest, "--fdname=ingest", buildDirectory + "/esafetyd",
                "--lists", dir.path + "/lists", "--control-socket", dir.path + "/ctl.sock",
                "--incident-log", dir.path + "/incidents.jsonl",
            ],
            capture: true
        )
        defer { launcher.stop() }
        var connected: Int32 = -1
        for _ in 0..<100 {
            if let fd = try? connectUnix(ingest) {
                connected = fd
                break
            }
            usleep(50_000)
        }
        #expect(connected >= 0)
        writeAll(connected, Array("Nov 21 10:00:00 dnsmasq[1]: query[A] www.bet.example from 10.0.0.1\n".utf8))
        close(connected)
        var matched = 0
        for _ in 0..<100 {
            guard matched < 1 else { break }
            if let a = try? ControlClient.send("status", to: dir.path + "/ctl.sock", timeout: 2),
                let o = try? JSONSerialization.jsonObject(with: Data(a.utf8)) as? [String: Any]
            {
                matched = o["lines_matched"] as? Int ?? 0
            }
            if matched < 1 { usleep(50_000) }
        }
        #expect(matched == 1)
        launcher.stop(SIGTERM)
        // systemd owns the path of an activated socket: esafetyd must not remove it.
        #expect(FileManager.default.fileExists(atPath: ingest))
    }
}

@Suite("Incidents from the running daemon", .serialized)
struct DaemonIncidentTests {
    @Test(
        "matches become incidents; kill -9 mid-stream leaves a log that verifies; restart continues the chain; SIGUSR1 reopens"
    )
    func crashAndRotate() throws {
        let dir = TempDir()
        dir.write("lists/gambling/domains", "bet.example\n")
        dir.write("lists/iwf/category.toml", "severity = \"critical\"\nlocked = true\n")
        dir.write("lists/iwf/urls", "abuse.example/1\n")
        let log = dir.path + "/incidents.jsonl"
        var daemon = try DaemonProcess(lists: [dir.path + "/lists"], dir: dir)
        // Many people, so many incidents, streamed while the daemon is killed.
        let fd = try connectUnix(daemon.socket)
        var text = ""
        for i in 0..<4_000 {
            text +=
                "1700000000.\(i % 1000) 5 10.0.\(i / 200).\(i % 200) TCP_MISS/200 10 GET http://www.bet.example/\(i) - HIER_DIRECT/1.2.3.4 text/html\n"
        }
        let bytes = Array(text.utf8)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            writeAll(fd, bytes)
            done.signal()
        }
        // Kill while incidents are being written.
        for _ in 0..<500 {
            guard lines(log).count < 50 else { break }
            usleep(20_000)
        }
        daemon.signal(SIGKILL)
        _ = daemon.waitExit()
        done.wait()
        close(fd)
        let afterCrash = lines(log)
        #expect(!afterCrash.isEmpty)
        // kill -9 can stop a write of several pages part way: at most the last line is
        // partial, and verify names only that.
        let (failure, _) = HashChain.verifyText(path: log)
        #expect(
            failure == nil
                || failure!.contains(":\(afterCrash.count): the last line is incomplete: its write was cut short"),
            "\(failure ?? "")"
        )
        // What kill -9 can leave, made certain: the first bytes of a line, no newline.
        let fragment = try #require(afterCrash.first { $0.contains("\"event\":\"incident\"") })
        var text0 = try String(contentsOfFile: log, encoding: .utf8)
        if text0.hasSuffix("\n") { text0 += fragment.prefix(120) }
        try text0.write(toFile: log, atomically: false, encoding: .utf8)
        // Readers skip the partial line: every whole incident line is an incident.
        let whole = lines(log).dropLast().filter { $0.contains("\"event\":\"incident\"") }.count
        #expect(try IncidentStore.load(log).count == whole)
        // The coordinator acts before the daemon is back: the event goes after the last
        // whole line, not onto the partial one, and the log verifies.
        let someID = try #require(IncidentStore.load(log).first?.id)
        try IncidentLog.appendEvents(path: log, group: nil) { _ in
            [ActionRecord(.note, id: someID, time: "2026-11-21T12:00:00.000Z", by: "dsl", note: "after the crash")]
        }
        let (afterNote, _) = HashChain.verifyText(path: log)
        #expect(afterNote == nil, "\(afterNote ?? "")")
        #expect(lines(log).last?.contains("after the crash") == true)
        #expect(lines(log).allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) is [String: Any] })
        // Restart: the chain continues; a critical incident is on disk at once.
        daemon = try DaemonProcess(lists: [dir.path + "/lists"], dir: dir)
        let c = try connectUnix(daemon.socket)
        writeAll(
            c,
            Array(
                "1700000100.000 5 10.9.9.9 TCP_MISS/200 10 GET http://abuse.example/1/x pupil9 HIER_DIRECT/1.2.3.4 text/html\n"
                    .utf8
            )
        )
        close(c)
        var critical: String? = nil
        for _ in 0..<40 {
            guard critical == nil else { break }
            critical = lines(log).last { $0.contains("\"severity\":\"critical\"") }
            if critical == nil { usleep(50_000) }
        }
        #expect(critical?.contains("\"category\":\"iwf\"") == true)
        #expect(critical?.contains("\"user\":\"pupil9\"") == true)
        // Another writer killed mid-write while the daemon runs: the daemon's next record
        // does not join the partial line, and the chain holds.
        let other = open(log, O_WRONLY | O_APPEND)
        flock(other, LOCK_EX)
        let partial = Array(fragment.prefix(90).utf8)
        _ = partial.withUnsafeBytes { write(other, $0.baseAddress, $0.count) }
        flock(other, LOCK_UN)
        close(other)
        let c1 = try connectUnix(daemon.socket)
        writeAll(
            c1,
            Array(
                "1700000150.000 5 10.9.9.7 TCP_MISS/200 10 GET http://abuse.example/1/y pupil7 HIER_DIRECT/1.2.3.4 text/html\n"
                    .utf8
            )
        )
        close(c1)
        var seventh = false
        for _ in 0..<40 where !seventh {
            seventh = lines(log).last?.contains("\"user\":\"pupil7\"") == true
            if !seventh { usleep(50_000) }
        }
        #expect(seventh)
        let (afterOther, _) = HashChain.verifyText(path: log)
        #expect(afterOther == nil, "\(afterOther ?? "")")
        // Rotation: move the log away, SIGUSR1, and the next incident starts the new file.
        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        daemon.signal(SIGUSR1)
        #expect(poll { FileManager.default.fileExists(atPath: log) }, "reopened")
        let c2 = try connectUnix(daemon.socket)
        writeAll(
            c2,
            Array(
                "1700000200.000 5 10.9.9.8 TCP_MISS/200 10 GET http://abuse.example/1 pupil8 HIER_DIRECT/1.2.3.4 text/html\n"
                    .utf8
            )
        )
        close(c2)
        var rotated: [String] = []
        for _ in 0..<40 {
            guard rotated.isEmpty else { break }
            rotated = lines(log)
            if rotated.isEmpty { usleep(50_000) }
        }
        #expect(rotated.count == 1)
        #expect(rotated.first?.contains("\"prev\":\"") == true)
        #expect(daemon.stop().0 == 0)
        // esafety verify across the rotated files.
        let (status, output) = try Child.run(buildDirectory + "/esafety", ["verify", log])
        #expect(status == 0, "\(output)")
        #expect(output.contains("in 2 file(s) verified"))
        let mode = try FileManager.default.attributesOfItem(atPath: log)[.posixPermissions] as? Int
        #expect(mode == 0o640)
    }

    /// The fsyncs of the incident log in an strace output file (`-f -ttt -y`): their wall-clock times.
    static func logFsyncs(_ trace: String) -> [Double] {
        lines(trace).compactMap { line -> Double? in
            guard line.contains("fsync("), line.contains("incidents.jsonl>"), line.hasSuffix("= 0") else { return nil }
            return line.split(separator: " ").lazy.compactMap { Double($0) }.first { $0 > 1_000_000_000 }
        }
    }

    @Test("a high incident is fsync'd within a second of its line arriving; a medium one waits for the sync interval")
    func durabilityBySeverity() throws {
        let dir = TempDir()
        dir.write("lists/gambling/domains", "bet.example\n")
        dir.write("lists/selfharm/category.toml", "severity = \"high\"\n")
        dir.write("lists/selfharm/domains", "harm.example\n")
        // The longest interval: nothing else would fsync the log while the test looks.
        dir.write("esafetyd.yaml", "incidents:\n  sync_interval: 300\n")
        let log = dir.path + "/incidents.jsonl"
        let trace = dir.path + "/trace"
        // strace sees the daemon's fsyncs as the kernel does (only those are stopped for).
        let daemon = try DaemonProcess(
            lists: [dir.path + "/lists"],
            extra: ["--config", dir.path + "/esafetyd.yaml"],
            dir: dir,
            wrapper: [
                "/usr/bin/strace", "-f", "-qq", "-ttt", "-y", "--seccomp-bpf", "-e", "trace=fsync,fdatasync", "-o",
                trace,
            ]
        )
        let children = try String(
            contentsOfFile: "/proc/\(daemon.child.pid)/task/\(daemon.child.pid)/children",
            encoding: .utf8
        )
        let pid = try #require(children.split(separator: " ").first.flatMap { pid_t($0) })
        func send(_ line: String) throws {
            let fd = try connectUnix(daemon.socket)
            writeAll(fd, Array((line + "\n").utf8))
            close(fd)
        }
        func waitFor(_ text: String) -> Bool {
            for _ in 0..<100 {
                if lines(log).contains(where: { $0.contains(text) }) { return true }
                usleep(20_000)
            }
            return false
        }
        let mediumSent = Date().timeIntervalSince1970
        try send(
            "1795255200.000 5 10.0.0.1 TCP_MISS/200 10 GET http://www.bet.example/ pupil1 HIER_DIRECT/1.2.3.4 text/html"
        )
        #expect(waitFor("\"category\":\"gambling\""))
        usleep(1_500_000)
        let highSent = Date().timeIntervalSince1970
        try send(
            "1795255201.000 5 10.0.0.2 TCP_MISS/200 10 GET http://www.harm.example/ pupil2 HIER_DIRECT/1.2.3.4 text/html"
        )
        #expect(waitFor("\"severity\":\"high\""))
        usleep(1_200_000)
        let stopped = Date().timeIntervalSince1970
        kill(pid, SIGTERM)
        _ = daemon.waitExit()
        let fsyncs = Self.logFsyncs(trace)
        // The medium incident was written (above) but not fsync'd before the high one came.
        #expect(
            !fsyncs.contains { $0 >= mediumSent && $0 < highSent },
            "\(fsyncs) medium \(mediumSent) high \(highSent)"
        )
        // The high one was, within a second (the daemon promises a quarter).
        #expect(fsyncs.contains { $0 >= highSent && $0 <= highSent + 1 }, "\(fsyncs) high \(highSent)")
        // And the log was fsync'd again when the daemon stopped.
        #expect(fsyncs.contains { $0 >= stopped })
    }
}

@Suite("A full disk under the daemon", .serialized)
struct FullDiskTests {
    /// esafetyd with every file it writes limited to 1500 bytes (room for about two incident
    /// lines: then every write fails with EFBIG, as on a full disk), sent 20 incidents from 20
    /// clients. The daemon (which keeps its folder), the log's path and prlimit's.
    static func fullDisk() throws -> (DaemonProcess, String, String) {
        let prlimit = try requireExecutable("/usr/bin/prlimit", package: "util-linux")
        let dir = TempDir()
        dir.write("lists/gambling/domains", "bet.example\n")
        let daemon = try DaemonProcess(
            lists: [dir.path + "/lists"],
            dir: dir,
            wrapper: [prlimit, "--fsize=1500:unlimited"]
        )
        let fd = try connectUnix(daemon.socket)
        var text = ""
        for i in 0..<20 {
            text +=
                "1700000000.\(i) 5 10.0.0.\(i + 1) TCP_MISS/200 10 GET http://www.bet.example/\(i) - HIER_DIRECT/1.2.3.4 text/html\n"
        }
        writeAll(fd, Array(text.utf8))
        close(fd)
        return (daemon, dir.path + "/incidents.jsonl", prlimit)
    }

    @Test("when the incident log cannot grow, incidents wait, status says so, and all are written when space returns")
    func fileSizeLimit() throws {
        let (daemon, log, prlimit) = try Self.fullDisk()
        var health: [String: Any] = [:]
        for _ in 0..<60 {
            health = (try daemon.status())["incident_log"] as? [String: Any] ?? [:]
            if health["writing"] as? Bool == false && (health["queued"] as? Int ?? 0) > 0 { break }
            usleep(50_000)
        }
        #expect(health["writing"] as? Bool == false)
        #expect((health["queued"] as? Int ?? 0) > 0)
        #expect(!((health["last_error"] as? String) ?? "").isEmpty, "status says why: \(health)")
        #expect(lines(log).count < 20)
        // What fits is written, line by line (an all-or-nothing batch wrote nothing).
        #expect(lines(log).count >= 1)
        let (rc, out) = try Child.run(prlimit, ["--pid", "\(daemon.child.pid)", "--fsize=unlimited:unlimited"])
        #expect(rc == 0, "\(out)")
        for _ in 0..<80 {
            guard lines(log).count < 20 else { break }
            usleep(50_000)
        }
        #expect(lines(log).filter { $0.contains("\"event\":\"incident\"") }.count == 20)
        #expect(!lines(log).contains { $0.contains("\"event\":\"lost\"") })
        #expect(HashChain.verifyText(path: log).0 == nil)
        // Recovery clears the error status showed.
        let recovered = (try daemon.status())["incident_log"] as? [String: Any] ?? [:]
        #expect(recovered["writing"] as? Bool == true)
        #expect(recovered["last_error"] == nil || recovered["last_error"] is NSNull, "\(recovered)")
        let (code, logText) = daemon.stop()
        #expect(code == 0)
        #expect(logText.contains("INCIDENTS ARE NOT BEING WRITTEN"))
        #expect(logText.contains("incident log writable again"))
    }

    @Test("stopped while the disk is full: what cannot be written or saved is named, exactly, at critical")
    func stopWhileFull() throws {
        // Every file esafetyd writes is limited: the log and the spill files too.
        let (daemon, log, _) = try Self.fullDisk()
        #expect(
            poll {
                let h = (try? daemon.status())?["incident_log"] as? [String: Any]
                return h?["writing"] as? Bool == false && (h?["queued"] as? Int ?? 0) + lines(log).count >= 20
            }
        )
        let (code, said) = daemon.stop()
        #expect(code == 0)
        let written = lines(log).filter { $0.contains("\"event\":\"incident\"") }.count
        #expect(said.contains("INCIDENTS LOST AT STOP"), "\(said)")
        #expect(said.contains("incidents.lost=\(20 - written)"), "written \(written): \(said)")
    }
}
