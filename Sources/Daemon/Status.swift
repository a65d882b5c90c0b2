import Classifier
import LogFormats
import Pipeline
import Synchronization
import SystemSupport

/// The daemon's status as JSON, for `esafety status`.
public enum Status {
    /// Lines/s over the last sampling interval, kept by the control server's sampler.
    final class RateSampler: Sendable {
        private let state = Mutex<(time: Double, received: Int, rate: Double)>((0, 0, 0))
        func sample(time: Double, received: Int) {
            state.withLock { s in
                if s.time > 0, time > s.time { s.rate = Double(received - s.received) / (time - s.time) }
                s.time = time
                s.received = received
            }
        }
        var rate: Double { state.withLock { $0.rate } }
    }

    /// The status as it stands, with the incident log's and the alerts' health when the
    /// daemon has them.
    static func report(
        stats: IngestStats,
        holder: GenerationHolder,
        rate: Double,
        incidentLog: StatusReport.IncidentLogHealth? = nil,
        controlRefused: Int = 0,
        alerts: StatusReport.AlertHealth? = nil
    ) -> StatusReport {
        let snap = stats.snapshot()
        var total = SourceCounters()
        for c in snap.sources.values { total.add(c) }
        let g = holder.current
        let t = Clock.now()
        let sources = snap.sources.sorted(by: { $0.key < $1.key }).map { name, c in
            var formats: [String: StatusReport.FormatCounts] = [:]
            for f in LogFormat.allCases {
                let fc = c.formats[Int(f.rawValue)]
                if fc == FormatCounters() { continue }
                formats[f.description] = .init(
                    parsed: fc.parsed,
                    matched: fc.matched,
                    ignored: fc.ignored,
                    parseErrors: fc.malformed
                )
            }
            // Which source brings which categories (the proxy, the resolver...).
            return StatusReport.Source(
                source: name,
                received: c.received,
                parsed: c.parsed,
                matched: c.matched,
                ignored: c.ignored,
                parseErrors: c.malformed,
                tooLong: c.tooLong,
                formats: formats,
                errorSamples: c.samples,
                matchedByCategory: c.categories
            )
        }
        let connections = snap.connections.map { c in
            StatusReport.Connection(
                id: c.id,
                socket: c.socket,
                peer: c.peer,
                connectedAt: Clock.rfc3339(c.connectedAt),
                lines: c.lines,
                bytes: c.bytes,
                queuedBytes: c.queued,
                slow: c.queued > 0 && c.fullReads >= 4
            )
        }
        let slow = snap.connections.filter { $0.queued > 0 && $0.fullReads >= 4 }
            .map { "\($0.socket) \($0.peer) (\($0.queued) bytes waiting)" }
        let uptime: Double = (t - stats.startedAt).rounded()
        let perSecond: Double = (rate * 10).rounded() / 10
        let average: Double = ((Double(total.received) / max(1, t - stats.startedAt)) * 10).rounded() / 10
        let loadSeconds: Double = (g.loadSeconds * 1000).rounded() / 1000
        let entries: Int = g.lists.counts.reduce(0) { $0 + $1.total }
        let lastReload: StatusReport.Reload? = snap.lastReload.map(StatusReport.Reload.init)
        let reloads: [StatusReport.Reload] = snap.reloads.map(StatusReport.Reload.init)
        return StatusReport(
            uptimeSeconds: uptime,
            linesReceived: total.received,
            linesParsed: total.parsed,
            linesMatched: total.matched,
            linesIgnored: total.ignored,
            parseErrors: total.malformed,
            linesTooLong: total.tooLong,
            matchLimitHits: total.matchLimitHits,
            linesPerSecond: perSecond,
            linesPerSecondAverage: average,
            generation: g.number,
            generationLoadedAt: Clock.rfc3339(g.loadedAt),
            generationLoadSeconds: loadSeconds,
            lists: g.lists.sources.joined(separator: ", "),
            categoriesLoaded: g.lists.categories.count,
            entriesLoaded: entries,
            lastReload: lastReload,
            sources: sources,
            connections: connections,
            slowClients: slow,
            connectionsClosed: snap.closed,
            connectionsRefused: stats.refusedConnections.load(ordering: .relaxed),
            controlRefused: controlRefused,
            matchedByCategory: snap.categories,
            reloads: reloads,
            incidentLog: incidentLog,
            alerts: alerts
        )
    }
}
