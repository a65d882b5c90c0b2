import Daemon
import Foundation
import TestSupport

/// Issue 13's first finding, end to end: four stream clients (Squid, dnsmasq, BIND, unbound)
/// send a school's ordinary traffic (the whole Tranco top 100k, of which UT1 lists a third,
/// so about 40% of requests fall in some category, most of them only counted) into one
/// esafetyd on the UT1 lists, with three SIGHUPs during the run. The time runs until every
/// line is received and the incident path has handled every match (`matches_handled` equals
/// `lines_matched`), so a backlog in the incident thread is inside the figure.
enum MixBenchmark {
    static func run(ut1: String, work: String, hosts: [String], linesPerClient: Int) {
        signal(SIGPIPE, SIG_IGN)
        setvbuf(stdout, nil, _IOLBF, 0)
        print("\n## The incident path at line rate: 4 clients, UT1 lists, 3 SIGHUPs (issue 13)")
        let bin = (CommandLine.arguments[0] as NSString).deletingLastPathComponent
        let dir = (ProcessInfo.processInfo.environment["ESAFETY_BENCH_TMP"] ?? "/tmp") + "/esm-bench-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let formats = ["squid", "dnsmasq", "bind", "unbound"]
        var payloads: [[UInt8]] = []
        for (i, format) in formats.enumerated() {
            let path = work + "/mix-\(format).log"
            ReplayBenchmark.generate(
                format: format,
                lines: linesPerClient,
                hosts: Array(hosts[(i * 7919) % hosts.count..<hosts.count] + hosts),
                to: path,
                clients: 2_000
            )
            payloads.append(Array(FileManager.default.contents(atPath: path)!))
        }
        let sent = payloads.reduce(0) { $0 + $1.reduce(0) { $1 == 0x0A ? $0 + 1 : $0 } }
        let rounds = max(1, Int(ProcessInfo.processInfo.environment["ESAFETY_BENCH_ROUNDS"] ?? "") ?? 3)
        print(
            "input: \(sent) lines, \(linesPerClient) per client (\(formats.joined(separator: ", "))), hosts from the "
                + "whole Tranco top 100k with 1% UT1 entries, 2,000 client addresses and 900 Squid users"
        )
        // ESAFETY_BENCH_SNAPSHOT=1: the lists compiled once (`esafety compile`), so each
        // reload reads a snapshot instead of parsing UT1's text.
        var snapshot: String? = nil
        if ProcessInfo.processInfo.environment["ESAFETY_BENCH_SNAPSHOT"] == "1" {
            let path = work + "/mix-ut1.snapshot"
            let compile = Process()
            compile.executableURL = URL(fileURLWithPath: bin + "/esafety")
            compile.arguments = ["compile", "--lists", ut1, "--out", path]
            compile.standardError = FileHandle.nullDevice
            compile.standardOutput = FileHandle.nullDevice
            try! compile.run()
            compile.waitUntilExit()
            snapshot = path
            print("lists: a snapshot of UT1 compiled by `esafety compile`; each SIGHUP reloads it")
        } else {
            print("lists: UT1's text folders; each SIGHUP parses and compiles them again")
        }
        // ESAFETY_BENCH_DAEMONS=DIR:DIR...: each round runs the esafetyd of each folder in turn,
        // on the same input (an A/B without generating it again; alternated, so a slow spell of
        // the machine does not fall on one build's rounds only). With ESAFETY_BENCH_TOGETHER=1
        // they run at once, sharing the cores: on a VM whose speed changes by half from one
        // minute to the next, the CPU each spends on the same work is then compared under the
        // same conditions (the time to the end is not the figure then).
        let daemons =
            ProcessInfo.processInfo.environment["ESAFETY_BENCH_DAEMONS"].map {
                $0.split(separator: ":").map(String.init)
            } ?? [bin]
        func runRound(_ round: Int, _ bin: String, label: String, dir: String) {
            let daemon = IncidentBenchmark.startDaemon(bin, dir, lists: [ut1], snapshot: snapshot)
            let control = dir + "/ctl.sock"
            let pid = daemon.processIdentifier
            let threadsBefore = IncidentBenchmark.threadCPU(pid)
            let processBefore = processCPUSeconds(pid)
            let start = Date()
            let clients = payloads.map { payload in
                let t = Thread {
                    let fd = IncidentBenchmark.connect(dir + "/in.sock")
                    IncidentBenchmark.send(fd, payload)
                    close(fd)
                }
                t.start()
                return t
            }
            _ = clients
            // Three reloads spread over the run (the lists rebuilt from text each time).
            var hups = 0
            var status: StatusReport? = nil
            while true {
                // Every 100 ms until nine tenths of the lines are in, then every 10 ms: the end is
                // found within 10 ms (0.1% of a 10 s run), and the answers cost esafetyd little
                // (a status is a connection, a thread and a JSON report: every 2 ms they took a
                // tenth of esafetyd's CPU, every 20 ms still 0.8 CPU s of a run).
                usleep((status?.linesReceived ?? 0) < sent / 10 * 9 ? 100_000 : 10_000)
                guard let answer = try? ControlClient.send("status", to: control, timeout: 10),
                    let s = try? StatusReport(json: answer)
                else {
                    if kill(pid, 0) != 0 || !daemon.isRunning {
                        print(
                            "esafetyd exited: "
                                + ((try? String(contentsOfFile: dir + "/esafetyd.log", encoding: .utf8)) ?? "")
                                .split(separator: "\n").suffix(5).joined(separator: "\n")
                        )
                        return
                    }
                    continue
                }
                status = s
                let handled = s.incidentLog?.matchesHandled ?? 0
                if s.linesReceived >= sent && handled >= s.linesMatched { break }
                if hups < 3, s.linesReceived >= sent * (hups + 1) / 4 {
                    kill(pid, SIGHUP)
                    hups += 1
                }
                if Date().timeIntervalSince(start) > 900 { break }
            }
            let seconds = Date().timeIntervalSince(start)
            let byThread = IncidentBenchmark.threadCPU(pid)
            let process = processCPUSeconds(pid) - processBefore
            let sink = (byThread["esafety-sink"] ?? 0) - (threadsBefore["esafety-sink"] ?? 0)
            let rss = SocketBenchmark.peakRSS(pid)
            kill(pid, SIGTERM)
            daemon.waitUntilExit()
            let logLines = ((try? String(contentsOfFile: dir + "/incidents.jsonl", encoding: .utf8)) ?? "")
                .split(separator: "\n")
            let incidents = logLines.filter { $0.hasPrefix("{\"event\":\"incident\"") }.count
            let s = status!
            let result =
                "round \(round)\(label): \(s.linesReceived) of \(sent) lines in \(fmt(seconds, 2)) s = "
                + "\(mega(Double(sent) / seconds)) lines/s; \(s.linesMatched) matched "
                + "(\(fmt(Double(s.linesMatched) / Double(sent) * 100, 1))%), handled "
                + "\(s.incidentLog?.matchesHandled ?? 0); \(incidents) incidents, \(logLines.count) log lines; "
                + "lost \(s.incidentLog?.lost ?? -1); generation \(s.generation) after \(hups) SIGHUPs; "
                + "incident thread \(fmt(sink / Double(max(1, s.linesMatched)) * 1e9, 0)) ns per match; "
                + "peak RSS \(rss) MiB"
            let running = byThread.map { $0.value - threadsBefore[$0.key, default: 0] }.reduce(0, +)
            print(
                result + "\n  CPU by thread: " + IncidentBenchmark.describe(byThread, since: threadsBefore)
                    + "; the process \(fmt(process, 2)) s (threads that ended, as control clients': "
                    + "\(fmt(max(0, process - running), 2)) s)"
            )
        }

        let together = ProcessInfo.processInfo.environment["ESAFETY_BENCH_TOGETHER"] == "1"
        for round in 1...rounds {
            let runs = daemons.enumerated().map { i, daemonBin in
                let label = daemons.count > 1 ? " [\(daemonBin)]" : ""
                let runDir = daemons.count > 1 ? dir + "-\(i)" : dir
                return { runRound(round, daemonBin, label: label, dir: runDir) }
            }
            if together {
                let done = DispatchGroup()
                for run in runs { DispatchQueue.global().async(group: done) { run() } }
                done.wait()
            } else {
                for run in runs { run() }
            }
        }
    }
}
