import Classifier
import Foundation
import Incidents
import SystemSupport

/// `esafety-bench --only history N FILE`: a hash-chained incident log of N incidents over a
/// school year, for the index benchmark (Benchmarks/index.sh). Each incident is a real
/// `IncidentRecord` line for one of 2,000 pupils in 8 groups, 12 categories, a site of
/// 20,000, with a `hits` event; 60% are acknowledged, 40% of those resolved, 2% carry a note,
/// the rest stay open. Lines are sealed onto the chain as esafetyd seals them.
enum HistoryGenerator {
    static func run(count: Int, path: String) {
        let out =
            FileHandle(forWritingAtPath: path)
            ?? {
                _ = FileManager.default.createFile(atPath: path, contents: nil)
                return FileHandle(forWritingAtPath: path)!
            }()
        out.truncateFile(atOffset: 0)
        var previous = String(repeating: "0", count: 64)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 22)
        var rng = SystemRandomNumberGenerator()
        let categories = [
            "self-harm", "suicide", "pornography", "gambling", "violence", "weapons", "drugs", "hate", "bypass",
            "dating", "games", "social-media",
        ]
        let severities: [Severity] = [.critical, .high, .high, .medium, .medium, .medium, .low, .low]
        let start = 1_767_225_600.0  // 2026-01-01
        let span = 300.0 * 86400
        for i in 0..<count {
            let t = start + span * Double(i) / Double(count)
            let pupil = Int.random(in: 0..<2000, using: &rng)
            let category = categories[Int.random(in: 0..<categories.count, using: &rng)]
            let severity = severities[Int.random(in: 0..<severities.count, using: &rng)]
            let site = "site\(Int.random(in: 0..<20_000, using: &rng)).example"
            let id = String(format: "inc-%012llx-%06x-%06x", UInt64(t * 1000), i & 0xFFFFFF, 4242)
            let time = RecordTime(seconds: t)
            var r = IncidentRecord(
                id: id,
                time: time,
                severity: severity,
                category: category,
                group: "year\(7 + pupil % 6)",
                client: "10.\(pupil / 250).\(pupil % 250).7",
                user: "pupil\(pupil)",
                device: nil,
                mac: nil,
                host: "www." + site,
                url: "https://www.google.com/search?q=\(category)+\(i % 97)",
                searchTerm: "\(category) \(i % 97)",
                action: i % 3 == 0 ? "blocked" : "allowed",
                source: IncidentRecord.Source(format: "squid", peer: "ingest:squid"),
                rule: IncidentRecord.Rule(
                    kind: .domain,
                    file: "Blocklists/\(category)/domains",
                    line: 3,
                    rule: site,
                    generation: 1,
                    locked: false
                ),
                repeated: false,
                window: nil,
                route: ["DSL"],
                firstSeen: time,
                lastSeen: time,
                due: RecordTime(seconds: t + 86400)
            )
            r.blockedBy = i % 3 == 0 ? "squid" : nil
            var j = JSONText(capacity: 1024)
            r.write(to: &j)
            previous = HashChain.seal(
                String(decoding: j.bytes, as: UTF8.self),
                previous: previous,
                appendingTo: &buffer
            )
            let hits = LogRecord.hits(
                HitsRecord(
                    id: id,
                    hits: 2 + i % 5,
                    firstSeen: time,
                    lastSeen: RecordTime(seconds: t + 30),
                    sampleURLs: ["https://www.\(site)/a"]
                )
            ).text
            previous = HashChain.seal(hits, previous: previous, appendingTo: &buffer)
            let roll = i % 100
            if roll < 60 {
                let ack = ActionRecord(.ack, id: id, time: Clock.rfc3339(t + 600), by: "dsl")
                previous = HashChain.seal(LogRecord.action(ack).text, previous: previous, appendingTo: &buffer)
            }
            if roll < 24 {
                let done = ActionRecord(
                    .resolve,
                    id: id,
                    time: Clock.rfc3339(t + 3600),
                    by: "dsl",
                    outcome: "pupil-spoken-to",
                    actionTaken: "spoke to the pupil"
                )
                previous = HashChain.seal(LogRecord.action(done).text, previous: previous, appendingTo: &buffer)
            }
            if roll >= 98 {
                let note = ActionRecord(.note, id: id, time: Clock.rfc3339(t + 900), by: "dsl", note: "call home")
                previous = HashChain.seal(LogRecord.action(note).text, previous: previous, appendingTo: &buffer)
            }
            if buffer.count > 1 << 22 {
                out.write(Data(buffer))
                buffer.removeAll(keepingCapacity: true)
            }
        }
        out.write(Data(buffer))
        out.closeFile()
    }
}
