import Classifier
import Foundation
import Glibc
import Incidents
import LogFormats
import Logging
import Pipeline
import ServiceLifecycle
import Synchronization
import SystemSupport

/// Persists what the daemon has seen, so `esafety report` can show monitoring health after
/// a restart, on a copy of the files, or on another machine: every `interval` seconds, one
/// JSON line per source with the lines received, parsed, matched and malformed since the
/// last line (zeros included: a silent proxy is the point), plus `start`, `stop` and
/// `reload` events. Appended to `counters.jsonl` in the state directory, mode 0640.
///
/// {"time":"…","source":"ingest:pid
/// 812","interval":60,"received":1200,"parsed":1198,"matched":3,"malformed":2,"too_long":0}
///     {"event":"reload","time":"…","generation":2,"ok":true,"seconds":0.7,"message":"…"}
final class CounterRecorder: @unchecked Sendable {
    let path: String
    let interval: Double
    let stats: IngestStats
    let logger: Logger
    let mode: mode_t
    private var previous: [String: SourceCounters] = [:]
    private var reloadsSeen = 0.0
    private let failing = Mutex(false)

    init(path: String, interval: Double, stats: IngestStats, logger: Logger, mode: mode_t = 0o640) {
        self.path = path
        self.interval = interval
        self.stats = stats
        self.logger = logger
        self.mode = mode
        reloadsSeen = Clock.now()
    }

    func event(_ record: CounterRecord) { append([record.text]) }

    /// One line per source: the counts since the last call.
    func record() {
        let now = Clock.now()
        let snapshot = stats.snapshot()
        var lines: [String] = []
        for r in snapshot.reloads where r.at > reloadsSeen {
            lines.append(
                CounterRecord.reload(
                    .init(
                        time: Clock.rfc3339(r.at),
                        generation: r.generation,
                        ok: r.ok,
                        seconds: (r.seconds * 1000).rounded() / 1000,
                        message: r.message
                    )
                ).text
            )
            reloadsSeen = r.at
        }
        for (source, total) in snapshot.sources.sorted(by: { $0.key < $1.key }) {
            let before = previous[source] ?? SourceCounters()
            let counts = CounterRecord.Counts(
                time: Clock.rfc3339(now),
                source: source,
                interval: interval,
                received: total.received - before.received,
                parsed: total.parsed - before.parsed,
                matched: total.matched - before.matched,
                malformed: total.malformed - before.malformed,
                tooLong: total.tooLong - before.tooLong
            )
            lines.append(CounterRecord.counts(counts).text)
        }
        previous = snapshot.sources
        append(lines)
    }

    private func append(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        var text = lines.joined(separator: "\n") + "\n"
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode)
        let ok = fd >= 0 && text.withUTF8 { write(fd, $0.baseAddress, $0.count) == $0.count }
        if fd >= 0 { close(fd) }
        let wasFailing = failing.withLock { f -> Bool in
            defer { f = !ok }
            return f
        }
        if !ok && !wasFailing {
            logger.error(
                "cannot write the monitoring counters; the report will show a gap",
                metadata: ["counters.file": "\(path)", "error": "\(Sockets.errnoText())"]
            )
        }
    }
}

struct CounterService: Service {
    let recorder: CounterRecorder
    func run() async throws {
        recorder.event(.start(time: Clock.rfc3339(Clock.now()), pid: Int(getpid())))
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown {
                try await Task.sleep(for: .milliseconds(Int(recorder.interval * 1000)))
            }
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            recorder.record()
        }
        // Other services stop first (ingest drains before this runs), so the last counts are in.
        recorder.record()
        recorder.event(.stop(time: Clock.rfc3339(Clock.now())))
    }
}
