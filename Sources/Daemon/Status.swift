import Classifier
import LogFormats
import Synchronization

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

    static func json(stats: IngestStats, holder: GenerationHolder, rate: Double,
                     sections: [(key: String, json: @Sendable () -> String)] = []) -> String {
        let snap = stats.snapshot()
        var total = SourceCounters()
        for c in snap.sources.values { total.add(c) }
        let g = holder.current
        let t = now()
        var j = JSONText()
        j.beginObject()
        j.field("uptime_seconds", .double((t - stats.startedAt).rounded()))
        j.field("lines_received", .int(total.received))
        j.field("lines_parsed", .int(total.parsed))
        j.field("lines_matched", .int(total.matched))
        j.field("lines_ignored", .int(total.ignored))
        j.field("parse_errors", .int(total.malformed))
        j.field("lines_too_long", .int(total.tooLong))
        j.field("match_limit_hits", .int(total.matchLimitHits))
        j.field("lines_per_second", .double((rate * 10).rounded() / 10))
        j.field("lines_per_second_average", .double(((Double(total.received) / max(1, t - stats.startedAt)) * 10).rounded() / 10))
        j.field("generation", .int(g.number))
        j.field("generation_loaded_at", .string(LogTime.rfc3339(g.loadedAt)))
        j.field("generation_load_seconds", .double((g.loadSeconds * 1000).rounded() / 1000))
        j.field("lists", .string(g.lists.sources.joined(separator: ", ")))
        j.field("categories_loaded", .int(g.lists.categories.count))
        j.field("entries_loaded", .int(g.lists.counts.reduce(0) { $0 + $1.total }))
        j.key("last_reload")
        if let r = snap.lastReload { reload(r, &j) } else { j.value(.null) }
        j.key("sources")
        j.beginArray()
        for (name, c) in snap.sources.sorted(by: { $0.key < $1.key }) {
            j.beginObject()
            j.field("source", .string(name))
            j.field("received", .int(c.received))
            j.field("parsed", .int(c.parsed))
            j.field("matched", .int(c.matched))
            j.field("ignored", .int(c.ignored))
            j.field("parse_errors", .int(c.malformed))
            j.field("too_long", .int(c.tooLong))
            j.key("formats")
            j.beginObject()
            for f in LogFormat.allCases {
                let fc = c.formats[Int(f.rawValue)]
                if fc == FormatCounters() { continue }
                j.key(f.description)
                j.beginObject()
                j.field("parsed", .int(fc.parsed)); j.field("matched", .int(fc.matched))
                j.field("ignored", .int(fc.ignored)); j.field("parse_errors", .int(fc.malformed))
                j.endObject()
            }
            j.endObject()
            j.key("error_samples")
            j.beginArray()
            for s in c.samples { j.value(.string(s)) }
            j.endArray()
            // Which source brings which categories (the proxy, the resolver...).
            j.key("matched_by_category")
            j.beginObject()
            for (k, v) in c.categories.sorted(by: { $0.key < $1.key }) { j.field(k, .int(v)) }
            j.endObject()
            j.endObject()
        }
        j.endArray()
        j.key("connections")
        j.beginArray()
        for c in snap.connections {
            j.beginObject()
            j.field("id", .int(c.id)); j.field("socket", .string(c.socket)); j.field("peer", .string(c.peer))
            j.field("connected_at", .string(LogTime.rfc3339(c.connectedAt)))
            j.field("lines", .int(c.lines)); j.field("bytes", .int(c.bytes)); j.field("queued_bytes", .int(c.queued))
            j.field("slow", .bool(c.queued > 0 && c.fullReads >= 4))
            j.endObject()
        }
        j.endArray()
        j.key("slow_clients")
        j.beginArray()
        for c in snap.connections where c.queued > 0 && c.fullReads >= 4 { j.value(.string("\(c.socket) \(c.peer) (\(c.queued) bytes waiting)")) }
        j.endArray()
        j.field("connections_closed", .int(snap.closed))
        j.key("matched_by_category")
        j.beginObject()
        for (k, v) in snap.categories.sorted(by: { $0.key < $1.key }) { j.field(k, .int(v)) }
        j.endObject()
        j.key("reloads")
        j.beginArray()
        for r in snap.reloads { reload(r, &j) }
        j.endArray()
        for s in sections { j.field(s.key, .raw(s.json())) }
        j.endObject()
        return j.text
    }

    static func reload(_ r: IngestStats.Reload, _ j: inout JSONText) {
        j.beginObject()
        j.field("at", .string(LogTime.rfc3339(r.at)))
        j.field("ok", .bool(r.ok))
        j.field("generation", .int(r.generation))
        j.field("seconds", .double((r.seconds * 1000).rounded() / 1000))
        j.field("message", .string(r.message))
        j.endObject()
    }
}
