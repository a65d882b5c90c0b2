import Classifier
import Foundation
import Incidents
import Logging
import Pipeline

/// What each person costs the incident sink in memory, and what the cap (`max_people`) holds:
/// distinct people with one categorised request each (an incident, its window, repetition
/// and context state), resident memory before and after. No lists needed.
enum PeopleBenchmark {
    static func run(people: Int, rss: () -> Int) {
        let dir = NSTemporaryDirectory() + "esafety-bench-people-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = IncidentLog(path: dir + "/incidents.jsonl", syncInterval: 5, logger: Logger(label: "bench"))
        try! log.open()
        log.start()
        for (cap, label) in [(people * 2, "no cap reached"), (people / 10, "capped at a tenth")] {
            let sink = IncidentSink(
                log: log,
                policy: Policy(),
                suffixes: PublicSuffix(text: "com\n"),
                utcOffset: 0,
                maxPeople: cap
            )
            let before = rss()
            let started = Date()
            for i in 0..<people {
                let detail = MatchDetail(
                    name: "gambling",
                    severity: .medium,
                    locked: false,
                    kind: .domain,
                    file: "Blocklists/gambling/domains",
                    line: 3,
                    rule: "bet.example"
                )
                sink.accept(
                    MatchedRequest(
                        time: 1_795_255_200 + Double(i) / 1000,
                        client: "10.\(i >> 16 & 255).\(i >> 8 & 255).\(i & 255)",
                        user: "pupil\(i)",
                        host: "www.bet.example",
                        url: "http://www.bet.example/page?q=\(i)",
                        method: "GET",
                        action: .allowed,
                        format: .squid,
                        source: "bench",
                        categories: [detail],
                        generation: 1
                    )
                )
            }
            let seconds = Date().timeIntervalSince(started)
            let kept = sink.peopleKept
            let grown = rss() - before
            print(
                "\(label): \(people) people, \(kept) kept, \(sink.evictions.load(ordering: .relaxed)) forgotten; "
                    + "RSS +\(grown / 1024) MiB, \(kept > 0 ? grown * 1024 / kept : 0) bytes per person kept; "
                    + "\(Int(Double(people) / seconds)) people/s"
            )
            sink.closeAll()
        }
        log.stop()
    }
}
