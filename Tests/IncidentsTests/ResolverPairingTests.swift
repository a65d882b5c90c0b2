import Foundation
import Logging
import SystemSupport
import TestSupport
import Testing

@testable import Classifier
@testable import Incidents
@testable import LogFormats
@testable import Pipeline

/// A resolver logs a blocked lookup twice: the query, then its block line. The DSL must see
/// one request, blocked, and the counters must count one request.
@Suite("A resolver's query and block lines are one request")
struct ResolverPairingTests {
    /// Runs `lines` through a pipeline into a real incident sink and log: the incidents as
    /// the tool shows them, and the pipeline's counters.
    func run(_ lines: [String]) throws -> (views: [IncidentView], counters: SourceCounters) {
        let lists = try TempLists(["adult/domains": "blocked.example.com\n", "ads/domains": ""]).load()
        let holder = GenerationHolder(Generation(number: 1, lists: lists, loadedAt: 0, loadSeconds: 0))
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: Logger(label: "test"))
        let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\n"))
        let pipeline = LinePipeline(
            source: "test",
            format: nil,
            holder: holder,
            sink: sink,
            time: LogTime(now: 1_796_145_600, localOffset: 0)
        )
        var bytes = Array(lines.map { $0 + "\n" }.joined().utf8)
        _ = bytes.withUnsafeMutableBytes {
            pipeline.processLines(UnsafeRawBufferPointer($0), arrival: 1_796_145_546, maxLine: 65536)
        }
        sink.closeAll()
        log.stop()
        return (IncidentStore.fold(TestSupport.lines(path).joined(separator: "\n")), pipeline.takeCounters())
    }

    @Test("unbound: the query and its rpz line make one incident, blocked by rpz")
    func unbound() throws {
        let (views, c) = try run([
            "[1796145546] unbound[15417:0] info: 10.0.0.7 blocked.example.com. A IN",
            "[1796145546] unbound[15417:0] info: rpz: applied [school] blocked.example.com. rpz-nxdomain 10.0.0.7@58104 blocked.example.com. A IN",
        ])
        #expect(views.count == 1)
        #expect(views.first?.record.action == "blocked")
        #expect(views.first?.record.blockedBy == "rpz")
        #expect(c.parsed == 1, "the block line is not a second request")
        #expect(c.received == c.parsed + c.ignored + c.malformed)
    }

    @Test("dnsmasq: `config NAME is NXDOMAIN` (no client named) answers the query before it")
    func dnsmasq() throws {
        let (views, c) = try run([
            "Dec  1 17:18:47 dnsmasq[15266]: query[A] blocked.example.com from 10.0.0.7",
            "Dec  1 17:18:47 dnsmasq[15266]: config blocked.example.com is NXDOMAIN",
        ])
        #expect(views.map(\.record.action) == ["blocked"])
        #expect(views.first?.record.blockedBy == "dnsmasq")
        #expect(views.first?.record.client == "10.0.0.7")
        #expect(c.parsed == 1)
    }

    @Test("BIND logging only its rpz category: the block line is the request")
    func blockOnly() throws {
        let (views, c) = try run([
            "01-Dec-2026 17:19:06.827 rpz: info: client @0x7fdd00d5f098 10.0.0.7#39199 (blocked.example.com): rpz QNAME NXDOMAIN rewrite blocked.example.com/A/IN via blocked.example.com.rpz.local"
        ])
        #expect(views.map(\.record.action) == ["blocked"])
        #expect(views.first?.record.blockedBy == "rpz")
        #expect(c.parsed == 1)
    }

    @Test("the block line first, then its query: still one request")
    func blockFirst() throws {
        let (views, c) = try run([
            "01-Dec-2026 17:19:06.827 client @0x7f 10.0.0.7#39199 (blocked.example.com): rpz QNAME NXDOMAIN rewrite blocked.example.com/A/IN via blocked.example.com.rpz.local",
            "01-Dec-2026 17:19:06.827 client @0x7f 10.0.0.7#39199 (blocked.example.com): query: blocked.example.com IN A +E(0)K (127.0.0.1)",
        ])
        #expect(views.count == 1)
        #expect(views.first?.record.action == "blocked")
        #expect(c.parsed == 1)
        #expect(c.ignored == 1)
    }

    @Test("a block line for another pupil does not mark this pupil's request blocked")
    func otherClient() throws {
        let (views, c) = try run([
            "[1796145546] unbound[1:0] info: 10.0.0.7 blocked.example.com. A IN",
            "[1796145546] unbound[1:0] info: rpz: applied [school] blocked.example.com. rpz-nxdomain 10.0.0.9@58104 blocked.example.com. A IN",
        ])
        let byClient = Dictionary(uniqueKeysWithValues: views.map { ($0.record.client, $0.record.action) })
        #expect(byClient == ["10.0.0.7": "unknown", "10.0.0.9": "blocked"])
        #expect(c.parsed == 2)
    }

    @Test("an earlier visit that was answered keeps the incident from being called blocked by a later block")
    func laterBlockDoesNotRewriteAnsweredVisit() throws {
        let (views, c) = try run([
            "[1796145500] unbound[1:0] info: 10.0.0.7 blocked.example.com. A IN",
            "[1796145530] unbound[1:0] info: 10.0.0.7 blocked.example.com. A IN",
            "[1796145530] unbound[1:0] info: rpz: applied [school] blocked.example.com. rpz-nxdomain 10.0.0.7@58104 blocked.example.com. A IN",
        ])
        #expect(views.count == 1)
        #expect(views.first?.hits == 2)
        #expect(views.first?.record.action == "unknown", "the first lookup had no block line")
        #expect(c.parsed == 2)
    }

    @Test("a block line that names no client never takes another pupil's lookup as its own")
    func clientlessBlockTakesNoOnesQuery() throws {
        let (views, c) = try run([
            // Pi-hole's block line alone (its query line was not logged), then another pupil's lookup.
            "Dec  1 17:18:47 pihole-FTL[990]: gravity blocked blocked.example.com is 0.0.0.0",
            "Dec  1 17:18:48 pihole-FTL[990]: query[A] blocked.example.com from 10.0.0.9",
        ])
        #expect(c.parsed == 2, "two requests")
        #expect(views.contains { $0.record.client == "10.0.0.9" }, "the second pupil's lookup is an incident")
    }

    @Test("a blocked lookup of a name in no category: one request counted, no incident")
    func unlisted() throws {
        let (views, c) = try run([
            "Dec  1 17:18:47 pihole-FTL[990]: query[A] ads.tracker.example from 10.0.0.7",
            "Dec  1 17:18:47 pihole-FTL[990]: gravity blocked ads.tracker.example is 0.0.0.0",
        ])
        #expect(views.isEmpty)
        #expect(c.parsed == 1)
        #expect(c.ignored == 1)
    }

    @Test("the verdict is in the log as its own event; the incident's record stays as written")
    func appendOnly() throws {
        let lists = try TempLists(["adult/domains": "blocked.example.com\n"]).load()
        let holder = GenerationHolder(Generation(number: 1, lists: lists, loadedAt: 0, loadSeconds: 0))
        let path = tempPath() + ".jsonl"
        defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
        let log = try startedLog(path, logger: Logger(label: "test"))
        let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\n"))
        let pipeline = LinePipeline(source: "test", format: nil, holder: holder, sink: sink)
        var bytes = Array(
            ("Dec  1 17:18:47 dnsmasq[1]: 7 10.0.0.7/5353 query[A] blocked.example.com from 10.0.0.7\n"
                + "Dec  1 17:18:47 dnsmasq[1]: 7 10.0.0.7/5353 config blocked.example.com is 0.0.0.0\n").utf8
        )
        _ = bytes.withUnsafeMutableBytes {
            pipeline.processLines(UnsafeRawBufferPointer($0), arrival: 0, maxLine: 65536)
        }
        sink.closeAll()
        log.stop()
        let records = TestSupport.lines(path).map(json)
        #expect(records.map { $0["event"] as? String } == ["incident", "verdict"])
        #expect(records[0]["action"] as? String == "unknown")
        #expect(records[1]["id"] as? String == records[0]["id"] as? String)
        #expect(records[1]["action"] as? String == "blocked")
        #expect(records[1]["blocked_by"] as? String == "dnsmasq")
    }
}

@Suite("A resolver pairing's memory")
struct ResolverPairingMemoryTests {
    @Test(
        "a matched query's client and host come back intact; a long line's buffer is not kept for the short ones after"
    )
    func slotsStayBounded() {
        var pairing = ResolverPairing()
        func remember(_ client: String, _ host: String, name: UInt64) {
            var (c, h) = (client, host)
            c.withUTF8 { cb in
                h.withUTF8 { hb in
                    pairing.remember(
                        ResolverPairing.Entry(
                            name: name,
                            client: 7,
                            time: 100,
                            isBlock: false,
                            paired: false,
                            matched: true
                        ),
                        client: UnsafeRawBufferPointer(cb),
                        host: UnsafeRawBufferPointer(hb)
                    )
                }
            }
        }
        let long = String(repeating: "1.", count: 5_000) + "1"
        remember(long, "blocked.example.com", name: 1)
        let k = pairing.pairBlock(name: 1, client: 7, time: 101)
        #expect(k != nil)
        #expect(pairing.matched(k!)?.client == long)
        #expect(pairing.matched(k!)?.host == "blocked.example.com")
        // The ring goes round: every slot, the long one's too, now holds a short query.
        for n in 0..<ResolverPairing.capacity { remember("10.0.0.\(n)", "host\(n).example", name: UInt64(100 + n)) }
        #expect(pairing.texts.allSatisfy { $0.capacity <= ResolverPairing.keptCapacity })
        let last = pairing.pairBlock(name: UInt64(100 + ResolverPairing.capacity - 1), client: 7, time: 101)
        #expect(pairing.matched(last!)?.client == "10.0.0.\(ResolverPairing.capacity - 1)")
        #expect(pairing.matched(last!)?.host == "host\(ResolverPairing.capacity - 1).example")
        // A line that did not match keeps nothing to report.
        pairing.remember(ResolverPairing.Entry(name: 9, client: 7, time: 100, isBlock: false, paired: false))
        #expect(pairing.matched(pairing.pairBlock(name: 9, client: 7, time: 101)!) == nil)
    }
}
