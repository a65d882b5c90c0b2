import Foundation
import Glibc
import TestSupport
import Testing

@testable import Daemon
@testable import IncidentIndex

/// Bounded resources, and a control plane that always answers.
@Suite("Resources and the control socket", .serialized)
struct ResourceTests {
    /// Resident memory of a process, in KiB.
    static func rssKiB(_ pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    @Test("idle control clients do not hold up status (six made it take 30 s)")
    func idleControlClients() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [IngestTests.makeLists(dir)], dir: dir)
        let idle = try (0..<6).map { _ in try connectUnix(daemon.control) }
        defer { for fd in idle { close(fd) } }
        let started = Date()
        let status = try daemon.status()
        #expect(status["generation"] as? Int == 1)
        #expect(Date().timeIntervalSince(started) < 2, "status took \(Date().timeIntervalSince(started)) s")
        #expect(daemon.stop().0 == 0)
    }

    @Test("the control socket checks who is asking, whatever the socket's mode")
    func peerCredentials() throws {
        let runuser = try requireExecutable("/usr/sbin/runuser", package: "util-linux")
        let socat = try requireExecutable("/usr/bin/socat", package: "socat")
        guard getuid() == 0 else { return }  // needs another account to ask from
        let dir = TempDir()
        #expect(chmod(dir.path, 0o755) == 0)
        let daemon = try DaemonProcess(lists: [IngestTests.makeLists(dir)], dir: dir)
        // A socket anyone may connect to: only the credentials check stands in the way.
        #expect(chmod(daemon.control, 0o666) == 0)
        let (_, answer) = try Child.run(
            runuser,
            ["-u", "nobody", "--", "/bin/sh", "-c", "echo status | \(socat) -t 5 - UNIX-CONNECT:\(daemon.control)"]
        )
        #expect(answer.contains("permission denied"), "\(answer)")
        #expect(!answer.contains("lines_received"), "\(answer)")
        let status = try daemon.status()
        #expect(status["control_refused"] as? Int == 1)
        #expect(daemon.stop().0 == 0)
    }

    @Test("out of file descriptors: connections are refused and counted, the acceptor does not spin, status answers")
    func descriptorLimit() throws {
        let prlimit = try requireExecutable("/usr/bin/prlimit", package: "util-linux")
        let dir = TempDir()
        let daemon = try DaemonProcess(
            lists: [IngestTests.makeLists(dir)],
            dir: dir,
            wrapper: [prlimit, "--nofile=256:256", "--"]
        )
        var clients: [Int32] = []
        defer { for fd in clients { close(fd) } }
        for _ in 0..<400 {
            if let fd = try? connectUnix(daemon.socket) { clients.append(fd) }
        }
        // Every connection is taken or turned away; none waits for ever.
        #expect(
            poll(timeout: 10) {
                let s = try? daemon.status()
                return (s?["connections"] as? [Any])?.count ?? 0 > 0 && (s?["connections_refused"] as? Int ?? 0) > 0
            }
        )
        let cpuBefore = processCPUSeconds(daemon.child.pid)
        usleep(1_000_000)
        let cpu = processCPUSeconds(daemon.child.pid) - cpuBefore
        #expect(cpu < 0.5, "esafetyd used \(cpu) s of CPU in 1 s with its descriptors used up")
        let started = Date()
        let status = try daemon.status()
        #expect(Date().timeIntervalSince(started) < 2)
        let open = (status["connections"] as? [Any])?.count ?? 0
        #expect(open <= 256 - 64, "\(open) open")
        // Lines still flow on an accepted connection.
        writeAll(clients[0], Array("Nov 21 10:00:00 dnsmasq[1]: query[A] bet.example from 10.0.0.1\n".utf8))
        #expect(poll { (try? daemon.status())?["lines_matched"] as? Int == 1 })
        for fd in clients { close(fd) }
        clients.removeAll()
        #expect(daemon.stop().0 == 0)
    }

    @Test("connections that sent a burst and went quiet give their big buffers back")
    func idleConnectionMemory() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [IngestTests.makeLists(dir)], dir: dir)
        let before = Self.rssKiB(daemon.child.pid)
        var clients: [Int32] = []
        defer { for fd in clients { close(fd) } }
        for _ in 0..<400 {
            let fd = try connectUnix(daemon.socket)
            // A burst (an over-long line, skipped and counted) and one ordinary line.
            writeAll(
                fd,
                [UInt8](repeating: 0x78, count: 200_000)
                    + Array("\nNov 21 10:00:00 dnsmasq[1]: query[A] x.example from 10.0.0.1\n".utf8)
            )
            clients.append(fd)
        }
        #expect(poll(timeout: 30) { (try? daemon.status())?["lines_received"] as? Int == 800 })
        let grown = Self.rssKiB(daemon.child.pid) - before
        // 400 buffers of 256 KB, each filled by its burst, would be 100 MB.
        #expect(grown < 30 * 1024, "RSS grew \(grown) KiB for 400 quiet connections")
        for fd in clients { close(fd) }
        clients.removeAll()
        #expect(daemon.stop().0 == 0)
    }

    @Test("the index's thread runs at the lowest priority (nice 19); ingest and the incident thread at the service's")
    func indexAtTheLowestPriority() throws {
        let dir = TempDir()
        let daemon = try DaemonProcess(lists: [IngestTests.makeLists(dir)], dir: dir)
        defer { _ = daemon.stop() }
        // Each thread's name and nice value, from /proc (field 19 of its stat line).
        func threads() -> [String: Int] {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.child.pid)/task")) ?? []
            var nice: [String: Int] = [:]
            for t in tasks {
                guard
                    let text = try? String(contentsOfFile: "/proc/\(daemon.child.pid)/task/\(t)/stat", encoding: .utf8),
                    let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")")
                else { continue }
                let name = String(text[text.index(after: open)..<close])
                let fields = text[text.index(after: close)...].split(separator: " ")
                nice[name] = Int(fields[16])
            }
            return nice
        }
        let deadline = Date().addingTimeInterval(20)
        var seen = threads()
        while seen["esafety-index"] == nil && Date() < deadline {
            usleep(50_000)
            seen = threads()
        }
        #expect(seen["esafety-index"] == 19, "\(seen)")
        #expect(seen["esafety-sink"] == 0, "\(seen)")
        #expect(seen.filter { $0.key.hasPrefix("esafety-ingest") }.values.allSatisfy { $0 == 0 }, "\(seen)")
        #expect(seen.keys.contains { $0.hasPrefix("esafety-ingest") }, "\(seen)")
    }

    @Test(
        "on one CPU, a reload and a stop are answered while the index reads a big log at start; the next start goes on"
    )
    func indexOffTheAsyncPool() throws {
        // A school's existing log of 40,000 incidents and no index yet: esafetyd builds it
        // (seconds). On one CPU Swift's async pool has one thread, and the index's SQLite work
        // used to hold it: esafetyd did not answer until the whole log was read (and a SIGHUP
        // waited 64 s at a million incidents), nor would systemd's watchdog have been fed.
        let dir = TempDir()
        let log = dir.path + "/incidents.jsonl"
        let (code, out) = try Child.run(buildDirectory + "/esafety-bench", ["--history", "40000", log])
        #expect(code == 0, "\(out)")
        let daemon = try DaemonProcess(
            lists: [IngestTests.makeLists(dir)],
            dir: dir,
            wrapper: ["/usr/bin/taskset", "-c", "0"]
        )
        // Lines are taken in meanwhile (before, esafetyd did not even answer until the index
        // was built: its control and ingest services start on that pool).
        let fd = try connectUnix(daemon.socket)
        writeAll(fd, Array("Nov 21 10:00:00 dnsmasq[1]: query[A] www.example.org from 10.0.0.5\n".utf8))
        close(fd)
        #expect(try daemon.waitForLines(1, timeout: 20)["lines_received"] as? Int == 1)
        daemon.signal(SIGHUP)
        let deadline = Date().addingTimeInterval(30)
        var generation = 1
        while generation != 2 && Date() < deadline {
            usleep(50_000)
            generation = (try? daemon.status())?["generation"] as? Int ?? 1
        }
        #expect(generation == 2, "the reload was not applied")
        #expect(IncidentIndex.reading(logPath: log) == nil, "applied while the index is still being read")
        // A stop during the read: answered within a step (20,000 lines), not at its end.
        let stopping = Date()
        let (status, output) = daemon.stop()
        #expect(status == 0, "\(output)")
        #expect(Date().timeIntervalSince(stopping) < 15, "stop took \(Date().timeIntervalSince(stopping)) s")
        // What was read is kept, and `esafety index status` says how far (it only reads).
        let (behind, said) = try Child.run(buildDirectory + "/esafety", ["index", "status", "--log", log])
        #expect(behind == 1 && said.contains("behind the log"), "\(said)")
        let percent = said.split(separator: ",").dropFirst().first.flatMap {
            Double(String($0.split(separator: "%")[0]).trimmingCharacters(in: .whitespaces))
        }
        #expect(percent.map { $0 > 0 && $0 < 100 } == true, "\(said)")
        // Started again, it goes on; killed (-9) in the middle of a step, what was committed
        // stays (SQLite rolls the cut transaction back when the index is next opened).
        func readShare() throws -> Double? {
            let (_, text) = try Child.run(buildDirectory + "/esafety", ["index", "status", "--log", log])
            return text.split(separator: ",").dropFirst().first.flatMap {
                Double(String($0.split(separator: "%")[0]).trimmingCharacters(in: .whitespaces))
            }
        }
        let again = try DaemonProcess(
            lists: [IngestTests.makeLists(dir)],
            dir: dir,
            wrapper: ["/usr/bin/taskset", "-c", "0"]
        )
        let until = Date().addingTimeInterval(20)
        var share = try readShare() ?? 0
        while share <= (percent ?? 0) && Date() < until {
            usleep(100_000)
            share = try readShare() ?? 0
        }
        #expect(share > (percent ?? 0), "the second start went on: \(share)% after \(percent ?? 0)%")
        again.signal(SIGKILL)
        _ = again.waitExit()
        // The next start goes on from where the index stopped (the cursor agrees with the
        // log), it is not read again from the beginning.
        let index = try IncidentIndex(logPath: log)
        #expect(try index.isCurrent() == false, "the stop came before the end")
        let next = try index.update(step: 1, shouldStop: { true })
        #expect(next.rebuilt == false && next.lines == 1)
        try index.update()
        #expect(try index.isCurrent())
        #expect(try index.counts().values.flatMap(\.values).reduce(0, +) == 40_000)
        let (current, now) = try Child.run(buildDirectory + "/esafety", ["index", "status", "--log", log])
        #expect(current == 0 && now.contains(": current"), "\(now)")
    }
}
