import Testing

@testable import Incidents

@Suite("A person's context kept as bytes")
struct SeenLogTests {
    func log(_ times: [Double]) -> SeenLog {
        var l = SeenLog()
        for t in times {
            l.append(time: t, category: "cat\(Int(t))", host: "host\(Int(t)).example", url: "https://h/\(Int(t))")
        }
        return l
    }

    @Test("each request comes back as it was kept: no URL stays none, an empty one stays empty, long text whole")
    func roundTrip() {
        var l = SeenLog()
        let long = "https://example.org/?q=" + String(repeating: "ü\u{7}", count: 40_000)
        l.append(time: 1.5, category: "self-harm", host: "www.example.org", url: nil)
        l.append(time: -2, category: "", host: "", url: "")
        l.append(time: 1e12, category: "games", host: "h\u{0}\n\"x", url: long)
        #expect(l.count == 3)
        #expect(l.firstTime == 1.5)
        let r = l.requests()
        #expect(r.map(\.time) == [1.5, -2, 1e12])
        #expect(r.map(\.category) == ["self-harm", "", "games"])
        #expect(r.map(\.host) == ["www.example.org", "", "h\u{0}\n\"x"])
        #expect(r[0].url == nil)
        #expect(r[1].url == "")
        #expect(r[2].url == long)
    }

    @Test("the oldest are cut by count, by time from the front (up to a limit), or wherever their time has run out")
    func cutting() {
        var l = log([1, 2, 3, 4, 5, 6])
        l.removeFirst(2)
        #expect(l.requests().map(\.time) == [3, 4, 5, 6])
        #expect(l.requests().map(\.host) == ["host3.example", "host4.example", "host5.example", "host6.example"])

        // From the front only, and never past the limit.
        var f = log([1, 2, 9, 3, 4])
        #expect(f.removeFirst(upTo: 10, while: { $0 < 5 }) == 2)
        #expect(f.requests().map(\.time) == [9, 3, 4])
        var g = log([1, 2, 3])
        #expect(g.removeFirst(upTo: 1, while: { $0 < 5 }) == 1)
        #expect(g.requests().map(\.time) == [2, 3])

        // Anywhere: the rest keep their order and their text.
        var a = log([1, 9, 2, 8, 3])
        #expect(a.removeAll(where: { $0 < 5 }) == 3)
        #expect(a.count == 2)
        #expect(a.requests().map(\.time) == [9, 8])
        #expect(a.requests().map(\.url) == ["https://h/9", "https://h/8"])
        #expect(a.firstTime == 9)

        var all = log([1, 2])
        all.removeFirst(5)
        #expect(all.count == 0)
        #expect(all.firstTime == nil)
        #expect(all.requests().isEmpty)
        all.append(time: 7, category: "c", host: "h", url: nil)
        #expect(all.requests().map(\.time) == [7])
    }

    @Test("a range of requests, filtered by time and limited, is read without changing what is kept")
    func reading() {
        let l = log([1, 2, 3, 4, 5, 6])
        #expect(l.requests(from: 2).map(\.time) == [3, 4, 5, 6])
        #expect(l.requests(from: 1, to: 4).map(\.time) == [2, 3, 4])
        #expect(l.requests(from: -3, to: 2).map(\.time) == [1, 2])
        #expect(l.requests(from: 4, to: 99).map(\.time) == [5, 6])
        #expect(l.requests(from: 6).isEmpty)
        #expect(l.requests(from: 3, to: 3).isEmpty)
        #expect(l.requests(where: { $0.truncatingRemainder(dividingBy: 2) == 0 }).map(\.time) == [2, 4, 6])
        #expect(l.requests(from: 1, limit: 2, where: { $0 > 2 }).map(\.time) == [3, 4])
        #expect(l.count == 6)
    }

    @Test("a buffer grown by long URLs is given back once they are cut, whichever way")
    func memoryReturned() {
        let long = "https://example.org/?q=" + String(repeating: "x", count: 20_000)
        var l = SeenLog()
        for t in 0..<10 { l.append(time: Double(t), category: "c", host: "h.example", url: long) }
        #expect(l.capacity >= 200_000)
        l.append(time: 10, category: "c", host: "h.example", url: "https://h/short")
        l.removeFirst(10)
        #expect(l.capacity <= 16_384, "one short request left: \(l.capacity) bytes kept")
        #expect(l.requests().map(\.url) == ["https://h/short"])

        var a = SeenLog()
        for t in 0..<10 { a.append(time: Double(t), category: "c", host: "h.example", url: long) }
        a.append(time: 99, category: "c", host: "h.example", url: nil)
        #expect(a.removeAll(where: { $0 < 50 }) == 10)
        #expect(a.capacity <= 16_384, "\(a.capacity) bytes kept")
        #expect(a.requests().map(\.time) == [99])

        var f = SeenLog()
        for t in 0..<10 { f.append(time: Double(t), category: "c", host: "h.example", url: long) }
        f.append(time: 99, category: "c", host: "h.example", url: nil)
        #expect(f.removeFirst(upTo: 100, while: { $0 < 50 }) == 10)
        #expect(f.capacity <= 16_384, "\(f.capacity) bytes kept")
        #expect(f.requests().map(\.host) == ["h.example"])
    }
}
