import Foundation
import TestSupport
import Testing

@testable import Daemon

@Suite("The control protocol's status")
struct StatusReportTests {
    static let answer = """
        {"uptime_seconds":UPTIME,"lines_received":2,"lines_parsed":1,"lines_matched":1,"lines_ignored":0,\
        "parse_errors":1,"lines_too_long":0,"match_limit_hits":0,"lines_per_second":0,"lines_per_second_average":4,\
        "generation":1,"generation_loaded_at":"2026-11-21T10:00:00.000Z","generation_load_seconds":0.01,\
        "lists":"Blocklists","categories_loaded":24,"entries_loaded":300,"last_reload":null,"sources":[],\
        "connections":[],"slow_clients":[],"connections_closed":0,"connections_refused":0,"control_refused":0,\
        "matched_by_category":{},"reloads":[]}
        """

    @Test(
        "any answer decodes to text without trapping (the fuzzer's uptime of 5.8e118 crashed esafety status)",
        arguments: ["5" + String(repeating: "7", count: 118), "-3", "1e308", "0.5"]
    )
    func hostileNumbers(uptime: String) throws {
        let status = try StatusReport(json: Self.answer.replacingOccurrences(of: "UPTIME", with: uptime))
        #expect(status.text.hasPrefix("esafetyd up "))
    }

    @Test("what esafetyd encodes, the tool decodes: one typed value at both ends")
    func roundTrip() throws {
        let status = try StatusReport(json: Self.answer.replacingOccurrences(of: "UPTIME", with: "90061"))
        #expect(try StatusReport(json: status.json) == status)
        #expect(status.text.hasPrefix("esafetyd up 1d 1h 1m"))
    }
}
