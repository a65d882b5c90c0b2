import Foundation
import Logging
import Pipeline
import Synchronization
import SystemSupport
import TestSupport
import Testing

@testable import Classifier
@testable import Incidents
@testable import LogFormats

@Suite("Time windows and mapping files")
struct WindowTests {
    @Test(
        "windows by day and time, wrapping midnight",
        arguments: [
            // 2026-11-16 is a Monday. (day offset, "hh:mm", expected window)
            (0, "09:00", "school"), (0, "16:00", nil as String?), (5, "09:00", nil), (0, "22:00", "night"),
            (1, "05:00", "night"),
            (0, "05:00", "night"),
        ]
    )
    func windows(dayOffset: Int, time: String, expected: String?) {
        var school = Policy.TimeWindow(name: "school")
        school.days = [1, 2, 3, 4, 5]
        school.start = 8 * 60 + 30
        school.end = 15 * 60 + 30
        var night = Policy.TimeWindow(name: "night")
        night.start = 21 * 60 + 30
        night.end = 6 * 60 + 30
        var g = Policy.Group(name: "boarders")
        g.windows = [school, night]
        let parts = time.split(separator: ":").map { Int($0)! }
        let t = 1_794_787_200.0 + Double(dayOffset * 86400 + parts[0] * 3600 + parts[1] * 60)
        #expect(Policy().window(for: g, time: t, utcOffset: 0)?.name == expected)
    }

    @Test("a window raises severity and changes the route; mapping files fill device and user")
    func windowIncident() throws {
        var night = Policy.TimeWindow(name: "night")
        night.start = 21 * 60
        night.end = 7 * 60
        night.severityShift = 1
        night.routes = [.high: ["on-call DSL"]]
        var g = Policy.Group(name: "boarders")
        g.networks = [Policy.network("10.30.0.0/16")!]
        g.windows = [night]
        var policy = Policy()
        policy.groups = [g]
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = IncidentLog(path: path, syncInterval: 0.05, logger: Logger(label: "t"))
        try log.open()
        log.start()
        let devices = try MappingFile.parse("# DHCP\n10.30.0.5 laptop-17\n", file: "devices")
        let users = try MappingFile.parse("10.30.0.5 boarder.jones\n", file: "users")
        let sink = IncidentSink(
            log: log,
            policy: policy,
            suffixes: PublicSuffix(text: "com\n"),
            devices: devices,
            users: users,
            utcOffset: 0
        )
        // 2026-11-21 23:00 UTC.
        sink.accept(match("www.bet365.com", user: nil, client: "10.30.0.5", time: 1_795_302_000))
        log.stop()
        let r = json(lines(path)[0])
        #expect(r["severity"] as? String == "high")
        #expect(r["window"] as? String == "night")
        #expect(r["route"] as? [String] == ["on-call DSL"])
        #expect(r["device"] as? String == "laptop-17")
        #expect(r["user"] as? String == "boarder.jones")
    }

    @Test("mapping file errors name file and line")
    func mappingErrors() {
        #expect(throws: MappingFile.Failure.self) { try MappingFile.parse("10.0.0.1\n", file: "m") }
        let twice = #expect(throws: MappingFile.Failure.self) {
            try MappingFile.parse("10.0.0.1 a\n10.0.0.1 b\n", file: "m")
        }
        #expect(twice?.description == "m:2: 10.0.0.1 is listed twice")
    }
}
