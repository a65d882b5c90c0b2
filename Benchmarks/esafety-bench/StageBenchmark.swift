import Classifier
import Daemon
import Foundation
import Incidents
import LogFormats
import Logging
import Pipeline

/// Where a matched line's cost goes, in one process and without sockets, so that the VM's
/// scheduling does not blur it: the ingest thread's work per line with and without matches
/// (the difference is what a match costs the thread that reads the socket), then the
/// incident sink's and the log writer's CPU per match. Each figure is the fastest of three
/// alternating runs, measured with the thread's own CPU clock.
enum StageBenchmark {
    final class Collect: MatchSink, @unchecked Sendable {
        var keep = false
        var items: [MatchedRequest] = []
        var count = 0
        func accept(_ match: MatchedRequest) {
            count += 1
            if keep { items.append(match) }
        }
    }

    static func threadCPU() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    static func run(lists: CompiledLists, payloads: [(String, [UInt8])], dir: String) {
        print("stages, in one process (fastest of several runs, thread CPU):")
        let holder = GenerationHolder(Generation(number: 1, lists: lists, loadedAt: 0, loadSeconds: 0))
        let collect = Collect()
        // The matching lines of the 1% payload, and as many ordinary lines: what a match adds
        // to the ingest thread is the difference per line between the two.
        var matchedLines: [UInt8] = []
        var ordinaryLines: [UInt8] = []
        let probe = LinePipeline(source: "bench", format: nil, holder: holder, sink: collect)
        payloads[1].1.withUnsafeBytes { raw in
            var start = 0
            while let nl = raw[start...].firstIndex(of: 0x0A) {
                let line = UnsafeRawBufferPointer(rebasing: raw[start..<nl])
                let before = collect.count
                probe.process(line, arrival: 0)
                if collect.count > before {
                    matchedLines.append(contentsOf: line)
                    matchedLines.append(0x0A)
                }
                start = nl + 1
            }
        }
        let matchCount = collect.count
        payloads[0].1.withUnsafeBytes { raw in
            var start = 0
            var n = 0
            while n < matchCount, let nl = raw[start...].firstIndex(of: 0x0A) {
                ordinaryLines.append(contentsOf: raw[start...nl])
                start = nl + 1
                n += 1
            }
        }
        // Through the daemon's hand-over to the incident thread (which only counts here).
        func perLine(_ bytes: [UInt8], rounds: Int) -> Double {
            var best = Double.infinity
            for _ in 0..<rounds {
                let queue = QueuedSink(next: collect)
                queue.start()
                defer { queue.stop() }
                let pipeline = LinePipeline(source: "bench", format: nil, holder: holder, sink: queue)
                let before = threadCPU()
                bytes.withUnsafeBytes { raw in
                    var start = 0
                    while start < raw.count {
                        // The daemon's read size.
                        let end = min(raw.count, start + 256 * 1024)
                        start += pipeline.processLines(
                            UnsafeRawBufferPointer(rebasing: raw[start..<end]),
                            arrival: 0,
                            maxLine: 65_536
                        )
                    }
                }
                best = min(best, threadCPU() - before)
            }
            return best
        }
        var matchedBest = Double.infinity
        var ordinaryBest = Double.infinity
        for _ in 0..<10 {
            ordinaryBest = min(ordinaryBest, perLine(ordinaryLines, rounds: 1))
            matchedBest = min(matchedBest, perLine(matchedLines, rounds: 1))
        }
        let (ordinaryNs, matchedNs) = (ordinaryBest / Double(matchCount) * 1e9, matchedBest / Double(matchCount) * 1e9)
        print(
            "  ingest thread: \(fmt(ordinaryNs, 0)) ns per ordinary line, \(fmt(matchedNs, 0)) ns per matching line "
                + "(\(matchCount) of each): a match adds \(fmt(matchedNs - ordinaryNs, 0)) ns"
        )
        let all = perLine(payloads[1].1, rounds: 3)
        let lines = Double(payloads[1].1.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) })
        print("  ingest thread, whole 1% payload: \(fmt(all / lines * 1e9, 0)) ns/line")

        // The incident sink and the log writer on the matches of the 1% payload.
        collect.keep = true
        collect.items.removeAll()
        let pipeline = LinePipeline(source: "bench", format: nil, holder: holder, sink: collect)
        payloads[1].1.withUnsafeBytes { _ = pipeline.processLines($0, arrival: 0, maxLine: 65_536) }
        let matched = collect.items
        var sinkBest = Double.infinity
        var logBest = Double.infinity
        var records = 0
        for _ in 0..<3 {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let log = IncidentLog(path: dir + "/incidents.jsonl", logger: Logger(label: "bench"))
            try! log.open()
            log.start()
            let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix.load())
            let logBefore = IncidentBenchmark.threadCPU(getpid())["esafety-log", default: 0]
            let before = threadCPU()
            for m in matched { sink.accept(m) }
            sinkBest = min(sinkBest, threadCPU() - before)
            sink.closeAll()
            // The writer's time is read while its thread lives: once everything queued is written.
            while log.status.queued > 0 { usleep(1_000) }
            usleep(100_000)
            logBest = min(logBest, IncidentBenchmark.threadCPU(getpid())["esafety-log", default: logBefore] - logBefore)
            log.stop()
            records =
                ((try? String(contentsOfFile: dir + "/incidents.jsonl", encoding: .utf8)) ?? "").split(separator: "\n")
                .count
        }
        print(
            "  incident sink: \(fmt(sinkBest / Double(matched.count) * 1e6, 2)) us per match (\(matched.count) "
                + "matches, \(records) log lines)"
        )
        print("  log writer: \(fmt(logBest / Double(max(1, records)) * 1e6, 2)) us per log line")
    }
}
