import Classifier
import SystemSupport

extension StatusReport {
    /// `esafety status` for a person at a terminal; everything from the daemon escaped.
    public var text: String {
        func e(_ s: String) -> String { Terminal.escape(s) }
        func left(_ s: String, _ n: Int) -> String {
            s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
        }
        func right(_ s: String, _ n: Int) -> String {
            s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s
        }
        var out = ""
        // Whatever the answer holds (a fuzzer found 5.8e118): no Double-to-Int trap.
        let uptime = uptimeSeconds.isFinite ? Int(max(0, min(uptimeSeconds, 1e15))) : 0
        out +=
            "esafetyd up \(uptime / 86400)d \(uptime % 86400 / 3600)h \(uptime % 3600 / 60)m; "
            + "lists generation \(generation) (\(e(lists)), \(entriesLoaded) entries, loaded "
            + "\(e(generationLoadedAt)))\n"
        // Every line received is parsed, ignored (not a request: replies, forwarded, leases,
        // authentication challenges, blank lines), a parse error or too long: the figures add up.
        out +=
            "lines: \(linesReceived) received = \(linesParsed) parsed + \(linesIgnored) ignored + "
            + "\(parseErrors) parse errors + \(linesTooLong) too long; \(linesMatched) matched; "
            + "\(linesPerSecond) lines/s now\n"
        if let r = lastReload {
            out += "last reload: \(e(r.at)) \(r.ok ? "ok" : "REFUSED"): \(e(r.message))\n"
        }
        out +=
            "\n" + left("source", 28) + right("received", 12) + right("parsed", 12) + right("ignored", 10)
            + right("errors", 9) + right("too long", 10) + right("matched", 10) + "\n"
        for s in sources {
            out +=
                left(e(s.source), 28) + right(String(s.received), 12) + right(String(s.parsed), 12)
                + right(String(s.ignored), 10) + right(String(s.parseErrors), 9) + right(String(s.tooLong), 10)
                + right(String(s.matched), 10) + "\n"
            if !s.matchedByCategory.isEmpty {
                // Most matched first; a source with many categories shows its top eight.
                let top = s.matchedByCategory.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                out +=
                    "    " + top.prefix(8).map { "\(e($0.key)) \($0.value)" }.joined(separator: ", ")
                    + (top.count > 8 ? ", \(top.count - 8) more" : "") + "\n"
            }
            for sample in s.errorSamples { out += "    e.g. " + e(sample) + "\n" }
        }
        out += "\nslow clients: " + (slowClients.isEmpty ? "none" : slowClients.map(e).joined(separator: "; ")) + "\n"
        out +=
            "connections: \(connections.count) open, \(connectionsClosed) closed"
            + (connectionsRefused > 0 ? ", \(connectionsRefused) REFUSED (max_connections or out of descriptors)" : "")
            + (controlRefused > 0 ? "; control clients refused: \(controlRefused)" : "") + "\n"
        if let l = incidentLog {
            out +=
                "incident log: " + (l.writing ? "writing" : "NOT WRITING (incidents are queued; see esafetyd's log)")
                + ", \(l.written) written, \(l.queued) queued, \(l.lost) lost"
                + (l.lastError.map { "; last error: " + e($0) } ?? "") + "\n"
            if let t = l.tampering { out += "INCIDENT LOG TAMPERED WITH: " + e(t) + " (see esafety verify)\n" }
            if let h = l.chainHead { out += "incident log chain head: " + e(h) + "\n" }
            out +=
                "people kept: \(l.people)"
                + (l.peopleEvicted > 0 ? ", \(l.peopleEvicted) forgotten to stay under incidents.max_people" : "")
                + "\n"
            if l.timesAhead > 0 {
                out +=
                    "lines dated more than a day ahead: \(l.timesAhead) (kept in their records; the clock drove "
                    + "the windows)\n"
            }
        }
        if let a = alerts {
            if a.commands == 0 {
                out += "alerts: none configured\n"
            } else {
                let sent =
                    a.spool.map { "\(a.sent) handed to the delivery spool \(e($0)) (esafety-alert.service sends them)" }
                    ?? "\(a.sent) sent"
                out +=
                    "alerts: \(sent), \(a.failed) FAILED, \(a.retried) retried, \(a.rateLimited) rate-limited, "
                    + "\(a.queued) waiting"
                if let err = a.lastError { out += "; last error: " + e(err) }
                out += "\n"
            }
        }
        return out
    }
}
