import Classifier
import Daemon
import Foundation
import LogFormats
import Synchronization
import TestSupport

/// Issue 4's targets: ingest throughput with incidents being written (1% of lines match)
/// against none matching, and the time from a critical line arriving to its fsync'd
/// incident line, while esafetyd ingests about 500k lines/s.
enum IncidentBenchmark {
    static func startDaemon(_ bin: String, _ dir: String, lists: [String], snapshot: String? = nil) -> Process {
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: bin + "/esafetyd")
        daemon.arguments =
            (snapshot.map { ["--snapshot", $0] } ?? lists.flatMap { ["--lists", $0] }) + [
                "--socket", dir + "/in.sock", "--datagram-socket", dir + "/in.dgram",
                "--control-socket", dir + "/ctl.sock", "--incident-log", dir + "/incidents.jsonl",
                "--workers", "2", "--log-level", "warning",
            ]
        _ = FileManager.default.createFile(atPath: dir + "/esafetyd.log", contents: nil)
        daemon.standardError = FileHandle(forWritingAtPath: dir + "/esafetyd.log") ?? FileHandle.nullDevice
        try! daemon.run()
        while SocketBenchmark.statusValue(dir + "/ctl.sock", \.generation) < 1 { usleep(50_000) }
        return daemon
    }

    /// CPU time of a process so far (the scheduler's exact run time, summed over threads).
    /// A distribution-free interval for the median of `v`: [x(k), x(n+1-k)] of the sorted
    /// values covers the median with probability 1 - 2 P(Binomial(n, 1/2) < k); the
    /// narrowest such interval with at least 90% is chosen. Nil below six values.
    static func medianInterval(_ v: [Double]) -> (low: Double, high: Double, confidence: Double)? {
        let n = v.count
        guard n >= 6 else { return nil }
        let x = v.sorted()
        func choose(_ j: Int) -> Double { (0..<j).reduce(1.0) { $0 * Double(n - $1) / Double($1 + 1) } }
        var best: (low: Double, high: Double, confidence: Double)? = nil
        for k in 1...(n + 1) / 2 {
            let below = (0..<k).reduce(0.0) { $0 + choose($1) } / pow(2, Double(n))  // P(B < k)
            if 1 - 2 * below >= 0.9 { best = (x[k - 1], x[n - k], 1 - 2 * below) }
        }
        return best
    }

    static func cpuSeconds(_ pid: Int32) -> Double { threadCPU(pid).values.reduce(0, +) }

    /// Each thread's name and CPU seconds so far, from /proc/PID/task/TID/schedstat.
    static func threadCPU(_ pid: Int32) -> [String: Double] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { tid -> (String, Double)? in
            guard let name = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/schedstat", encoding: .utf8),
                let ns = stat.split(separator: " ").first.flatMap({ Double($0) })
            else { return nil }
            return (name.trimmingCharacters(in: .whitespacesAndNewlines), ns / 1e9)
        }.reduce(into: [:]) { $0[$1.0, default: 0] += $1.1 }
    }

    static func describe(_ after: [String: Double], since before: [String: Double]) -> String {
        after.map { ($0.key, $0.value - before[$0.key, default: 0]) }.filter { $0.1 >= 0.01 }.sorted { $0.1 > $1.1 }
            .map { "\($0.0) \(fmt($0.1, 2))" }.joined(separator: ", ")
    }

    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) {
        var off = 0
        bytes.withUnsafeBytes { raw in
            while off < raw.count {
                let w = write(fd, raw.baseAddress! + off, raw.count - off)
                if w <= 0 { return }
                off += w
            }
        }
    }

    static func lines(hosts: [String], count: Int, seed: UInt64) -> [UInt8] {
        var r = SplitMix(s: seed)
        var text = ""
        text.reserveCapacity(count * 120)
        for i in 0..<count {
            let host = hosts[i % hosts.count]
            text +=
                "1795255200.\(i % 1000) 5 10.\(r.below(4)).\(r.below(256)).\(1 + r.below(250)) TCP_MISS/200 900 GET "
                + "http://\(host)/p\(r.below(50)) pupil\(r.below(900)) HIER_DIRECT/93.184.216.34 text/html\n"
        }
        return Array(text.utf8)
    }

    static func run(
        ut1: String,
        lists: CompiledLists,
        bundled: String,
        work: String,
        ordinary: [String],
        listed: [String],
        stagesOnly: Bool = false
    ) {
        print("\n## Incidents (issue 4): throughput with incidents, and critical-incident latency")
        let bin = (CommandLine.arguments[0] as NSString).deletingLastPathComponent
        let dir = (ProcessInfo.processInfo.environment["ESAFETY_BENCH_TMP"] ?? "/tmp") + "/esi-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let n = 5_000_000
        // Same lines, same lists; only the share of listed hosts differs.
        var r = SplitMix(s: 3)
        let mixed = (0..<200_000).map { i -> String in
            r.below(100) == 0 ? "www." + listed[r.below(listed.count)] : ordinary[i % ordinary.count]
        }
        // Both payloads are built first; the two cases then alternate, eleven rounds each, so
        // drift in the machine (a shared VM) falls on both alike; the medians are compared,
        // and so is each round's pair (run back to back). The order within a pair swaps
        // every round (AB BA AB ...), so a drift within a pair does not always favour one case.
        let payloads = [
            ("no matches", lines(hosts: ordinary, count: n, seed: 9)),
            ("1% matching", lines(hosts: mixed, count: n, seed: 9)),
        ]
        var results: [String: [Double]] = [:]
        if let dump = ProcessInfo.processInfo.environment["ESAFETY_BENCH_DUMP"] {
            for (i, (_, p)) in payloads.enumerated() {
                _ = FileManager.default.createFile(atPath: "\(dump)/payload\(i)", contents: Data(p))
            }
        }
        if stagesOnly {
            StageBenchmark.run(lists: lists, payloads: payloads, dir: dir + "-stages")
            return
        }
        // Eleven rounds by default: a single round moves by up to 10% on this VM with the
        // same input, and the median of more rounds moves less.
        let throughputRounds = max(1, Int(ProcessInfo.processInfo.environment["ESAFETY_BENCH_ROUNDS"] ?? "") ?? 11)
        for round in 1...throughputRounds {
            for (name, payload) in round % 2 == 1 ? payloads : payloads.reversed() {
                let daemon = startDaemon(bin, dir, lists: [ut1])
                let fd = connect(dir + "/in.sock")
                let cpuBefore = cpuSeconds(daemon.processIdentifier)
                let threadsBefore = threadCPU(daemon.processIdentifier)
                let start = Date()
                send(fd, payload)
                close(fd)
                while SocketBenchmark.statusValue(dir + "/ctl.sock", \.linesReceived) < n { usleep(5_000) }
                let seconds = Date().timeIntervalSince(start)
                let cpu = cpuSeconds(daemon.processIdentifier) - cpuBefore
                let matched = SocketBenchmark.statusValue(dir + "/ctl.sock", \.linesMatched)
                let byThread = describe(threadCPU(daemon.processIdentifier), since: threadsBefore)
                kill(daemon.processIdentifier, SIGTERM)
                daemon.waitUntilExit()
                let incidents = ((try? String(contentsOfFile: dir + "/incidents.jsonl", encoding: .utf8)) ?? "").split(
                    separator: "\n"
                ).count
                results[name, default: []].append(Double(n) / seconds)
                print(
                    "round \(round), \(name): \(n) Squid lines in \(fmt(seconds, 2)) s = "
                        + "\(mega(Double(n) / seconds)) lines/s; daemon CPU \(fmt(cpu / Double(n) * 1e9, 0)) ns/line "
                        + "(\(byThread)); \(matched) matched, \(incidents) incident-log lines"
                )
            }
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        if let a = results["no matches"], let b = results["1% matching"] {
            print(
                "median: no matches \(mega(median(a))) lines/s, 1% matching \(mega(median(b))) lines/s: "
                    + "\(fmt(median(b) / median(a) * 100, 1))% of the no-match figure (target at least 90%)"
            )
            let pairs = zip(a, b).map { $1 / $0 * 100 }
            print(
                "each round's 1% / no-match: " + pairs.map { fmt($0, 1) + "%" }.joined(separator: " ")
                    + "; median \(fmt(median(pairs), 1))%"
            )
            if let ci = medianInterval(pairs) {
                print(
                    "the pairs' median lies in \(fmt(ci.low, 1))%...\(fmt(ci.high, 1))% with "
                        + "\(fmt(ci.confidence * 100, 1))% confidence (order statistics, no assumption about the noise)"
                )
            }
        }

        // Latency: ~500k lines/s of ordinary lines, with a critical line (the IWF canary URL,
        // a new person each time) every 10,000 lines; a watcher tails the incident log.
        let daemon = startDaemon(bin, dir, lists: [ut1, bundled])
        let fd = connect(dir + "/in.sock")
        let background = lines(hosts: ordinary, count: 10_000, seed: 4)
        let rounds = 400
        // Send times and measured latencies, shared with the watcher thread.
        let shared = Mutex<(sent: [Double], latencies: [Double])>((Array(repeating: 0, count: rounds), []))
        let log = dir + "/incidents.jsonl"
        let watcher = Thread {
            var offset: UInt64 = 0
            var seen = 0
            let deadline = Date().addingTimeInterval(120)
            while seen < rounds && Date() < deadline {
                guard let h = FileHandle(forReadingAtPath: log) else {
                    usleep(200)
                    continue
                }
                h.seek(toFileOffset: offset)
                let data = h.readDataToEndOfFile()
                try? h.close()
                if data.isEmpty {
                    usleep(200)
                    continue
                }
                // Only whole lines.
                guard let lastNewline = data.lastIndex(of: 0x0A) else {
                    usleep(200)
                    continue
                }
                let chunk = data[data.startIndex...lastNewline]
                offset += UInt64(chunk.count)
                let now = Date().timeIntervalSince1970
                for line in String(decoding: chunk, as: UTF8.self).split(separator: "\n")
                where line.contains("esafety-canary?n=") {
                    guard let r = line.range(of: "esafety-canary?n="),
                        let k = Int(line[r.upperBound...].prefix { $0.isNumber })
                    else { continue }
                    shared.withLock { $0.latencies.append((now - $0.sent[k]) * 1000) }
                    seen += 1
                }
            }
        }
        watcher.start()
        let start = Date()
        for k in 0..<rounds {
            // 10,000 lines every 20 ms = 500k lines/s.
            let roundStart = Date()
            send(fd, background)
            let critical =
                "1795255200.000 5 10.200.\(k / 250).\(k % 250 + 1) TCP_MISS/200 900 GET "
                + "http://iwf.canary.esafety.invalid/esafety-canary?n=\(k) person\(k) HIER_DIRECT/93.184.216.34 "
                + "text/html\n"
            shared.withLock { $0.sent[k] = Date().timeIntervalSince1970 }
            send(fd, Array(critical.utf8))
            let spent = Date().timeIntervalSince(roundStart)
            if spent < 0.02 { usleep(UInt32((0.02 - spent) * 1e6)) }
        }
        let seconds = Date().timeIntervalSince(start)
        close(fd)
        while !watcher.isFinished { usleep(10_000) }
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        let sorted = shared.withLock { $0.latencies }.sorted()
        func pct(_ p: Double) -> Double {
            sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        print(
            "critical incidents: \(sorted.count) of \(rounds) seen; ingest rate "
                + "\(mega(Double(rounds * 10_001) / seconds)) lines/s"
        )
        print(
            "line arriving -> fsync'd incident line visible: p50 \(fmt(pct(0.5), 2)) ms, p99 \(fmt(pct(0.99), 2)) "
                + "ms, max \(fmt(sorted.last ?? .nan, 2)) ms (target p99 at most 50 ms)"
        )
    }
}
