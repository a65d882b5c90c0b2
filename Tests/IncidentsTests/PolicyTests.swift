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

@Suite("Incident policy: severities and groups")
struct PolicyTests {
    let logger = Logger(label: "test")

    @Test(
        "policy table",
        arguments: [
            // (group shift, category severity, locked, repeated) -> severity
            (0, "medium", false, false, "medium"),
            (1, "medium", false, false, "high"),
            (1, "high", false, false, "critical"),
            (-1, "high", false, false, "medium"),
            (-4, "medium", true, false, "critical"),
            (0, "low", false, true, "medium"),
            (2, "info", false, true, "info"),
        ]
    )
    func severity(shift: Int, category: String, locked: Bool, repeated: Bool, expected: String) {
        var g = Policy.Group(name: "g")
        g.severityShift = shift
        #expect(
            Policy().severity(category: Severity(name: category)!, locked: locked, group: g, repeated: repeated)
                .description == expected
        )
    }

    @Test("groups by network and user; first match wins; info is counted, not an incident")
    func groups() throws {
        var policy = Policy()
        var ks2 = Policy.Group(name: "ks2")
        ks2.networks = [Policy.network("10.2.0.0/16")!]
        ks2.severityShift = 1
        var staff = Policy.Group(name: "staff")
        staff.users = ["t.*"]
        staff.routes = [.medium: ["headteacher"]]
        policy.groups = [staff, ks2]
        #expect(policy.group(client: "10.2.3.4", user: nil).name == "ks2")
        #expect(policy.group(client: "10.2.3.4", user: "t.smith").name == "staff")
        #expect(policy.group(client: "10.3.3.4", user: "pupil").name == "default")
        let records = try sinkRecords(
            [
                match("www.bet365.com", user: nil, client: "10.2.3.4", time: 1000),
                match("www.bet365.com", user: "t.smith", client: "10.2.3.5", time: 1000),
                match("tiktok.com", time: 1000, category: "social-media", severity: "info"),
                match("abuse.example", time: 1000, category: "iwf", severity: "critical", locked: true),
            ],
            policy: policy
        ).filter { $0["event"] as? String == "incident" }
        #expect(records.count == 3)
        #expect(records[0]["severity"] as? String == "high")
        #expect(records[0]["group"] as? String == "ks2")
        #expect(records[1]["route"] as? [String] == ["headteacher"])
        #expect(records[2]["severity"] as? String == "critical")
        #expect(records[2]["route"] as? [String] == ["DSL", "deputy DSL"])
    }

    @Test("a person who moves to a client in another group is in that group from their next request")
    func groupFollowsTheClient() throws {
        var policy = Policy()
        var ks2 = Policy.Group(name: "ks2")
        ks2.networks = [Policy.network("10.2.0.0/16")!]
        var ks4 = Policy.Group(name: "ks4")
        ks4.networks = [Policy.network("10.4.0.0/16")!]
        policy.groups = [ks2, ks4]
        // The same user (one person) at a KS2 machine, a KS4 one, one in no group, then KS2 again.
        let clients = ["10.2.0.9", "10.4.0.9", "10.9.0.9", "10.2.0.10"]
        let records = try sinkRecords(
            clients.enumerated().map { i, client in
                match("site\(i).com", user: "pupil1", client: client, time: 1000 + Double(i))
            },
            policy: policy
        ).filter { $0["event"] as? String == "incident" }
        #expect(records.compactMap { $0["group"] as? String } == ["ks2", "ks4", "default", "ks2"])
    }

    @Test("after each reload, a person's group comes from the policy in force")
    func groupsAfterReload() throws {
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: logger)
        func policy(_ name: String) -> Policy {
            var p = Policy()
            var g = Policy.Group(name: name)
            g.networks = [Policy.network("10.0.0.0/8")!]
            p.groups = [g]
            return p
        }
        let sink = IncidentSink(log: log, policy: policy("g0"), suffixes: PublicSuffix(text: "com\n"))
        // Two reloads between this person's requests, many times: a policy freed by one
        // reload can leave its memory to the next.
        let between = policy("between")
        let policies = (0..<40).map { policy("g\($0)") }
        for i in 0..<40 {
            if i > 0 {
                sink.update(policy: between)
                sink.update(policy: policies[i])
            }
            sink.accept(match("site\(i).com", client: "10.1.2.3", time: 1000 + Double(i)))
        }
        sink.closeAll()
        log.stop()
        let groups = lines(path).map(json).filter { $0["event"] as? String == "incident" }.compactMap {
            $0["group"] as? String
        }
        #expect(groups == (0..<40).map { "g\($0)" })
    }

    @Test("a group's categories: only those raise incidents (locked lists always do); the rest are counted")
    func groupCategories() throws {
        var policy = Policy()
        var staff = Policy.Group(name: "staff")
        staff.users = ["t.*"]
        staff.categories = ["self-harm"]
        policy.groups = [staff]
        let both = MatchedRequest(
            time: 1000,
            client: "10.0.0.1",
            user: "t.smith",
            host: "mixed.com",
            url: nil,
            method: "GET",
            action: .allowed,
            format: .squid,
            source: "ingest:squid",
            categories: [
                MatchDetail(
                    name: "gambling",
                    severity: .high,
                    locked: false,
                    kind: .domain,
                    file: "f",
                    line: 1,
                    rule: "mixed.com"
                ),
                MatchDetail(
                    name: "self-harm",
                    severity: .medium,
                    locked: false,
                    kind: .domain,
                    file: "g",
                    line: 2,
                    rule: "mixed.com"
                ),
            ],
            generation: 1
        )
        let records = try sinkRecords(
            [
                match("www.bet365.com", user: "t.smith", time: 1000),  // not for staff
                match(
                    "abuse.example",
                    user: "t.smith",
                    time: 1001,
                    category: "iwf",
                    severity: "critical",
                    locked: true
                ),
                both,  // raised as self-harm
                match("www.bet365.com", user: "pupil1", time: 1002),  // default group: all
            ],
            policy: policy
        ).filter { $0["event"] as? String == "incident" }
        #expect(records.map { $0["category"] as? String } == ["iwf", "self-harm", "gambling"])
        #expect(records.map { $0["group"] as? String } == ["staff", "staff", "default"])
    }

    @Test(
        "a match is passed over as counted-only exactly when no shift of it (group, window, repetition) reaches the minimum"
    )
    func mayRaiseAgreesWithSeverity() {
        let policy = Policy()
        var checked = 0
        for groupShift in -2...2 {
            for windowShift in [-1, 0, 1, 2] {
                for minimum in Severity.allCases {
                    var group = Policy.Group(name: "g")
                    (group.severityShift, group.minimumSeverity) = (groupShift, minimum)
                    var window = Policy.TimeWindow(name: "night")
                    window.severityShift = windowShift
                    group.windows = [window]
                    for category in Severity.allCases {
                        for locked in [false, true] {
                            // Every way the sink can come to a severity for this match.
                            let reachable = [nil, window].contains { w in
                                [false, true].contains { repeated in
                                    policy.severity(
                                        category: category,
                                        locked: locked,
                                        group: group,
                                        repeated: repeated,
                                        window: w
                                    ) >= minimum || locked
                                }
                            }
                            #expect(
                                policy.mayRaise(category: category, locked: locked, group: group) == reachable,
                                "shift \(groupShift), window \(windowShift), minimum \(minimum), \(category), locked \(locked)"
                            )
                            checked += 1
                        }
                    }
                }
            }
        }
        #expect(checked == 5 * 4 * 5 * 5 * 2)
    }
}
