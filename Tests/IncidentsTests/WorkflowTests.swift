import Foundation
import LogFormats
import Synchronization
import SystemSupport
import TestSupport
import Testing

@testable import Incidents

@Suite("The coordinator's workflow")
struct WorkflowTests {
    typealias S = IncidentView.State
    typealias A = Workflow.Action

    /// The whole table: every state against every action; nil means refused.
    static let table: [S: [A: S?]] = [
        .new: [
            .ack: .acknowledged, .note: .new, .assign: .new, .escalate: .escalated, .resolve: .resolved,
            .falsePositive: .falsePositive, .reopen: nil,
        ],
        .acknowledged: [
            .ack: nil, .note: .acknowledged, .assign: .acknowledged, .escalate: .escalated, .resolve: .resolved,
            .falsePositive: .falsePositive, .reopen: nil,
        ],
        .escalated: [
            .ack: nil, .note: .escalated, .assign: .escalated, .escalate: .escalated, .resolve: .resolved,
            .falsePositive: .falsePositive, .reopen: nil,
        ],
        .resolved: [
            .ack: nil, .note: .resolved, .assign: nil, .escalate: nil, .resolve: nil, .falsePositive: nil,
            .reopen: .acknowledged,
        ],
        .falsePositive: [
            .ack: nil, .note: .falsePositive, .assign: nil, .escalate: nil, .resolve: nil, .falsePositive: nil,
            .reopen: .acknowledged,
        ],
    ]

    @Test(
        "every state and action: the next state, or a refusal that says why",
        arguments: [S.new, .acknowledged, .escalated, .resolved, .falsePositive]
    )
    func transitions(from state: S) {
        for action in A.allCases {
            let expected = Self.table[state]![action]!
            switch Workflow.next(state, action) {
            case .success(let next):
                #expect(next == expected, "\(state) + \(action)")
            case .failure(let refusal):
                #expect(expected == nil, "\(state) + \(action) refused: \(refusal)")
                #expect(refusal.description.contains(state.rawValue), "the refusal names the state: \(refusal)")
            }
        }
    }

    static func log(_ events: [String]) -> String {
        var text =
            "{\"event\":\"incident\",\"id\":\"inc-1\",\"time\":\"2026-11-21T10:00:00.000Z\",\"severity\":\"high\",\"category\":\"selfharm\",\"group\":\"ks3\",\"client\":\"10.0.0.1\",\"user\":\"p1\",\"host\":\"x.example\",\"url\":null,\"rule\":{\"kind\":\"domain\",\"locked\":false},\"hits\":1,\"due\":\"2026-11-22T10:00:00.000Z\"}\n"
        for (i, e) in events.enumerated() {
            text +=
                "{\"event\":\"\(e)\",\"id\":\"inc-1\",\"time\":\"2026-11-21T11:0\(i):00.000Z\",\"by\":\"dsl\",\"to\":\"DSL\",\"outcome\":\"parents-informed\"}\n"
        }
        return text
    }

    @Test("folding events: state, acknowledgement and closing times, escalations and outcome")
    func fold() throws {
        let v = try #require(IncidentStore.fold(Self.log(["note", "ack", "escalate", "resolve"])).first)
        #expect(v.state == .resolved)
        #expect(v.acknowledgedAt == "2026-11-21T11:01:00.000Z")
        #expect(v.closedAt == "2026-11-21T11:03:00.000Z")
        #expect(v.escalatedTo == ["DSL"])
        #expect(v.outcome == "parents-informed")
        #expect(v.events.count == 4)
        // An event that does not fit the table changes nothing.
        let w = try #require(IncidentStore.fold(Self.log(["resolve", "ack", "escalate"])).first)
        #expect(w.state == .resolved)
        let r = try #require(IncidentStore.fold(Self.log(["false-positive", "reopen"])).first)
        #expect(r.state == .acknowledged)
        #expect(r.closedAt == nil)
    }

    @Test("overdue: past due and still new; acknowledging stops it")
    func overdue() throws {
        let v = try #require(IncidentStore.fold(Self.log([])).first)
        #expect(v.overdue(now: "2026-11-22T10:00:01.000Z"))
        #expect(!v.overdue(now: "2026-11-22T09:59:59.000Z"))
        let a = try #require(IncidentStore.fold(Self.log(["ack"])).first)
        #expect(!a.overdue(now: "2026-11-23T00:00:00.000Z"))
    }

    @Test("roles by key or name; referrals marked")
    func roles() {
        #expect(Workflow.role("Deputy DSL")?.key == "deputy-dsl")
        #expect(Workflow.role("deputy-dsl")?.name == "deputy DSL")
        #expect(Workflow.role("police")?.referral == true)
        #expect(Workflow.role("social care")?.referral == true)
        #expect(Workflow.role("dsl")?.referral == false)
        #expect(Workflow.role("janitor") == nil)
    }

    @Test("the allowlist line for a false positive: the host, or the URL for a URL rule")
    func allowlist() throws {
        let v = try #require(IncidentStore.fold(Self.log([])).first)
        #expect(Workflow.allowlistLine(for: v)?.file == "allowlist/domains")
        #expect(Workflow.allowlistLine(for: v)?.line == "x.example")
        let u = try #require(
            IncidentStore.fold(
                "{\"event\":\"incident\",\"id\":\"inc-2\",\"host\":\"a.example\",\"url\":\"https://a.example/p/q?x=1\",\"rule\":{\"kind\":\"url\"}}\n"
            ).first
        )
        #expect(Workflow.allowlistLine(for: u)?.file == "allowlist/urls")
        #expect(Workflow.allowlistLine(for: u)?.line == "a.example/p/q")
    }

    @Test("another writer's lines: the log writer continues the chain from them")
    func sharedChain() throws {
        let path = tempPath()
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = IncidentLog(path: path, syncInterval: 0.05, commitDelay: 0, logger: .init(label: "test"))
        try log.open()
        let foreign = Mutex<[String]>([])
        log.foreignLine = { line in foreign.withLock { $0.append(String(line)) } }
        log.start()
        log.append("{\"event\":\"incident\",\"id\":\"inc-1\",\"time\":\"2026-11-21T10:00:00.000Z\"}", urgent: true)
        for _ in 0..<100 {
            guard lines(path).count < 1 else { break }
            usleep(10_000)
        }
        // The coordinator's tool appends under the lock...
        try IncidentLog.appendEvents(path: path, group: nil) {
            (views: [IncidentView]) throws(Workflow.Refusal) -> [ActionRecord] in
            #expect(views.map(\.id) == ["inc-1"])
            return [ActionRecord(.ack, id: "inc-1", time: Clock.rfc3339(1_795_255_300), by: "dsl")]
        }
        // The daemon's writer notices the tool's line (for overdue alerts)...
        for _ in 0..<100 {
            guard foreign.withLock({ $0.isEmpty }) else { break }
            usleep(10_000)
        }
        #expect(foreign.withLock { $0.count } == 1)
        #expect(foreign.withLock { $0.first?.contains("\"event\":\"ack\"") } == true)
        // ...and its next line chains from the tool's.
        log.append("{\"event\":\"incident\",\"id\":\"inc-2\",\"time\":\"2026-11-21T10:05:00.000Z\"}", urgent: true)
        for _ in 0..<100 {
            guard lines(path).count < 3 else { break }
            usleep(10_000)
        }
        log.stop()
        #expect(lines(path).count == 3)
        let (failure, checked) = HashChain.verifyText(path: path)
        #expect(failure == nil)
        #expect(checked == 3)
        // A refusal writes nothing.
        #expect(throws: IncidentLog.ActFailure.self) {
            try IncidentLog.appendEvents(path: path, group: nil) {
                (_: [IncidentView]) throws(Workflow.Refusal) -> [ActionRecord] in
                throw Workflow.Refusal(description: "no")
            }
        }
        #expect(lines(path).count == 3)
    }
}
