import TestSupport
import Testing

@testable import LogFormats

/// What a line says about one lookup, as strings: the kind of outcome, the format, who asked,
/// for what, and who blocked it.
struct Lookup: Equatable, CustomStringConvertible {
    var kind: String
    var format: String? = nil
    var client: String? = nil
    var user: String? = nil
    var host: String? = nil
    var action: String? = nil
    var blockedBy: String? = nil

    var description: String {
        "\(kind) \(format ?? "-") client=\(client ?? "nil") user=\(user ?? "nil") host=\(host ?? "nil") "
            + "action=\(action ?? "nil") blocked_by=\(blockedBy ?? "nil")"
    }
}

func lookup(_ line: String, _ format: LogFormat? = nil) -> Lookup {
    let parser = LineParser(time: clock)
    var l = line
    return l.withUTF8 { bytes in
        func s(_ b: UnsafeRawBufferPointer?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }
        func fields(_ r: ParsedRequest, _ kind: String) -> Lookup {
            Lookup(
                kind: kind,
                format: r.format.description,
                client: s(r.client),
                user: s(r.user),
                host: s(r.host),
                action: r.action.description,
                blockedBy: r.action.blocker
            )
        }
        switch parser.parse(UnsafeRawBufferPointer(bytes), format: format) {
        case .request(let r): return fields(r, "request")
        case .reply(let r): return fields(r, "reply")
        case .block(let r): return fields(r, "block")
        case .ignored(let f): return Lookup(kind: "ignored", format: f.description)
        case .lease: return Lookup(kind: "lease")
        case .blank: return Lookup(kind: "blank")
        case .malformed: return Lookup(kind: "malformed")
        }
    }
}

/// Lines captured from the real resolvers on Debian 12 (unbound 1.17.1 with an RPZ zone and
/// `rpz-log: yes`; BIND 9.18 with `response-policy`; dnsmasq 2.90 with `address=/NAME/`), and
/// from the documented formats of Pi-hole, AdGuard Home and Blocky.
@Suite("Resolvers' block lines")
struct ResolverBlockLineTests {
    @Test(
        "unbound rpz: a block names the client and the name asked for; passthru is not a block",
        arguments: [
            (
                "[1796145546] unbound[15417:0] info: rpz: applied [school] blocked.example.com. rpz-nxdomain 127.0.0.1@58104 blocked.example.com. A IN",
                Lookup(
                    kind: "block",
                    format: "unbound",
                    client: "127.0.0.1",
                    host: "blocked.example.com.",
                    action: "blocked",
                    blockedBy: "rpz"
                )
            ),
            (
                "[1796145546] unbound[15417:0] info: rpz: applied [school] *.blocked.example.com. rpz-nxdomain 127.0.0.1@58474 www.blocked.example.com. A IN",
                Lookup(
                    kind: "block",
                    format: "unbound",
                    client: "127.0.0.1",
                    host: "www.blocked.example.com.",
                    action: "blocked",
                    blockedBy: "rpz"
                )
            ),
            (
                "Dec  1 17:19:20 resolver unbound: [200:0] info: rpz: applied garden.example.com. rpz-local-data 10.0.0.7@57175 garden.example.com. A IN",
                Lookup(
                    kind: "block",
                    format: "unbound",
                    client: "10.0.0.7",
                    host: "garden.example.com.",
                    action: "blocked",
                    blockedBy: "rpz"
                )
            ),
            (
                "[1796145546] unbound[15417:0] info: rpz: applied [school] pass.example.com. rpz-passthru 127.0.0.1@47825 pass.example.com. A IN",
                Lookup(kind: "ignored", format: "unbound")
            ),
        ]
    )
    func unbound(line: String, expected: Lookup) {
        #expect(lookup(line) == expected)
    }

    @Test("unbound log-tag-queryreply: `query:` is a request, `reply:` a reply")
    func unboundTagged() {
        #expect(lookup("[1796145546] unbound[1:0] query: 10.0.0.7 www.example.com. A IN").kind == "request")
        #expect(
            lookup("[1796145546] unbound[1:0] reply: 10.0.0.7 www.example.com. A IN NOERROR 0.01 0 44").kind == "reply"
        )
    }

    @Test(
        "BIND rpz: through syslog, and in a file with print-time, print-category and print-severity",
        arguments: [
            "Dec  1 17:19:20 resolver named[812]: client @0x7fdd00d5f098 10.0.0.7#39199 (blocked.example.com): rpz QNAME NXDOMAIN rewrite blocked.example.com/A/IN via blocked.example.com.rpz.local",
            "01-Dec-2026 17:19:20.827 rpz: info: client @0x7fdd00d5f098 10.0.0.7#39199 (blocked.example.com): rpz QNAME NXDOMAIN rewrite blocked.example.com/A/IN via blocked.example.com.rpz.local",
            "01-Dec-2026 17:19:20.827 client @0x7fdd00d5f098 10.0.0.7#39199 (blocked.example.com): rpz QNAME NODATA rewrite blocked.example.com/A/IN via blocked.example.com.rpz.local",
            // print-time iso8601-utc
            "2026-12-01T17:19:20.827Z rpz: info: client @0x7fdd00d5f098 10.0.0.7#39199 (blocked.example.com): rpz QNAME NXDOMAIN rewrite blocked.example.com/A/IN via blocked.example.com.rpz.local",
        ]
    )
    func bind(line: String) {
        #expect(
            lookup(line)
                == Lookup(
                    kind: "block",
                    format: "bind",
                    client: "10.0.0.7",
                    host: "blocked.example.com",
                    action: "blocked",
                    blockedBy: "rpz"
                )
        )
    }

    @Test("BIND: a PASSTHRU policy is not a block, and the print-category query line is a request")
    func bindPassthru() {
        let pass =
            "01-Dec-2026 17:19:20.827 rpz: info: client @0x7f 10.0.0.7#39199 (ok.example.com): rpz QNAME PASSTHRU rewrite ok.example.com/A/IN via ok.example.com.rpz.local"
        #expect(lookup(pass).kind == "ignored")
        let query =
            "01-Dec-2026 17:19:20.827 queries: info: client @0x7fdd00d5f098 10.0.0.7#39199 (blocked.example.com): query: blocked.example.com IN A +E(0)K (127.0.0.1)"
        #expect(lookup(query).kind == "request")
        #expect(lookup(query).host == "blocked.example.com")
        let iso =
            "2026-12-01T17:19:20.827+01:00 queries: info: client @0x7f 10.0.0.7#39199 (a.example): query: a.example IN A + (127.0.0.1)"
        #expect(lookup(iso).kind == "request")
        #expect(lookup(iso).format == "bind")
    }

    @Test(
        "dnsmasq address=/NAME/ answers and Pi-hole's deny lists are blocks; a local name is not",
        arguments: [
            (
                "Dec  1 17:18:47 dnsmasq[15266]: 1 127.0.0.1/56944 config blocked.example.com is NXDOMAIN",
                Lookup(
                    kind: "block",
                    format: "dnsmasq",
                    client: "127.0.0.1",
                    host: "blocked.example.com",
                    action: "blocked",
                    blockedBy: "dnsmasq"
                )
            ),
            (
                "Dec  1 17:18:47 dnsmasq[15266]: config zero.example.com is 0.0.0.0",
                Lookup(
                    kind: "block",
                    format: "dnsmasq",
                    client: "",
                    host: "zero.example.com",
                    action: "blocked",
                    blockedBy: "dnsmasq"
                )
            ),
            (
                "Dec  1 17:18:47 dnsmasq[15266]: config zero.example.com is ::",
                Lookup(
                    kind: "block",
                    format: "dnsmasq",
                    client: "",
                    host: "zero.example.com",
                    action: "blocked",
                    blockedBy: "dnsmasq"
                )
            ),
            (
                "Dec  1 17:18:47 pihole-FTL[990]: gravity blocked ads.example.com is 0.0.0.0",
                Lookup(
                    kind: "block",
                    format: "dnsmasq",
                    client: "",
                    host: "ads.example.com",
                    action: "blocked",
                    blockedBy: "pihole"
                )
            ),
            (
                "Dec  1 17:18:47 dnsmasq[990]: regex blacklisted tracker.example.com is 0.0.0.0",
                Lookup(
                    kind: "block",
                    format: "dnsmasq",
                    client: "",
                    host: "tracker.example.com",
                    action: "blocked",
                    blockedBy: "pihole"
                )
            ),
            (
                "Dec  1 17:18:47 dnsmasq[990]: exactly denied bad.example.com is NXDOMAIN",
                Lookup(
                    kind: "block",
                    format: "dnsmasq",
                    client: "",
                    host: "bad.example.com",
                    action: "blocked",
                    blockedBy: "pihole"
                )
            ),
            (
                "Dec  1 17:18:47 dnsmasq[15266]: 3 127.0.0.1/54835 config local.test is 10.1.2.3",
                Lookup(kind: "ignored", format: "dnsmasq")
            ),
            (
                "Dec  1 17:18:47 dnsmasq[15266]: 4 127.0.0.1/53126 config error is REFUSED (EDE: not ready)",
                Lookup(kind: "ignored", format: "dnsmasq")
            ),
        ]
    )
    func dnsmasq(line: String, expected: Lookup) {
        #expect(lookup(line) == expected)
    }

    @Test(
        "AdGuard Home's query log: filtered by a block list, a blocked service or parental control is a block; safe search and unfiltered are allowed",
        arguments: [
            (
                #"{"T":"2026-12-01T10:00:00.123456789+01:00","QH":"bad.example.com","QT":"A","QC":"IN","CP":"","Upstream":"","Answer":"","IP":"10.0.0.7","Result":{"IsFiltered":true,"Reason":3,"Rules":[{"Text":"||bad.example.com^","FilterListID":1}]},"Elapsed":120000,"Cached":false}"#,
                Lookup(
                    kind: "request",
                    format: "adguard",
                    client: "10.0.0.7",
                    host: "bad.example.com",
                    action: "blocked",
                    blockedBy: "adguard"
                )
            ),
            (
                #"{"T":"2026-12-01T10:00:00Z","QH":"tiktok.example","QT":"A","IP":"10.0.0.8","CID":"year7-ipad-12","Result":{"IsFiltered":true,"Reason":8,"ServiceName":"tiktok"},"Elapsed":1}"#,
                Lookup(
                    kind: "request",
                    format: "adguard",
                    client: "10.0.0.8",
                    user: "year7-ipad-12",
                    host: "tiktok.example",
                    action: "blocked",
                    blockedBy: "adguard"
                )
            ),
            (
                #"{"T":"2026-12-01T10:00:00Z","QH":"www.google.com","QT":"A","IP":"10.0.0.7","Result":{"IsFiltered":true,"Reason":7},"Elapsed":1}"#,
                Lookup(
                    kind: "request",
                    format: "adguard",
                    client: "10.0.0.7",
                    host: "www.google.com",
                    action: "allowed"
                )
            ),
            (
                #"{"T":"2026-12-01T10:00:00Z","QH":"www.bbc.co.uk","QT":"A","IP":"10.0.0.7","Result":{},"Elapsed":1}"#,
                Lookup(kind: "request", format: "adguard", client: "10.0.0.7", host: "www.bbc.co.uk", action: "allowed")
            ),
        ]
    )
    func adguard(line: String, expected: Lookup) {
        #expect(lookup(line) == expected)
    }

    @Test("AdGuard Home's time is read with its nanoseconds and offset")
    func adguardTime() throws {
        let parser = LineParser(time: clock)
        var line = #"{"T":"2026-11-21T13:00:00.5+01:00","QH":"a.example","IP":"10.0.0.7","Result":{}}"#
        let time = line.withUTF8 { b -> Double? in
            if case .request(let r) = parser.parse(UnsafeRawBufferPointer(b)) { return r.time }
            return nil
        }
        #expect(time == 1_795_262_400.5)
    }

    @Test(
        "Blocky's query log (CSV, tab-separated): BLOCKED is a block, RESOLVED and CACHED are allowed",
        arguments: [
            (
                "2026-12-01 10:00:00\t10.0.0.7\tlaptop-7\t0\tBLOCKED (adult)\tbad.example.com\t0.0.0.0\tNOERROR\tBLOCKED\tA\tblocky-1",
                Lookup(
                    kind: "request",
                    format: "blocky",
                    client: "10.0.0.7",
                    host: "bad.example.com",
                    action: "blocked",
                    blockedBy: "blocky"
                )
            ),
            (
                "2026-12-01 10:00:01\t10.0.0.7\tlaptop-7\t12\tRESOLVED (tcp+udp:1.1.1.1)\twww.bbc.co.uk\tA (1.2.3.4)\tNOERROR\tRESOLVED\tA\tblocky-1",
                Lookup(kind: "request", format: "blocky", client: "10.0.0.7", host: "www.bbc.co.uk", action: "allowed")
            ),
            (
                "2026-12-01 10:00:02\t10.0.0.7\tlaptop-7\t0\tCACHED\twww.bbc.co.uk\tA (1.2.3.4)\tNOERROR\tCACHED\tA",
                Lookup(kind: "request", format: "blocky", client: "10.0.0.7", host: "www.bbc.co.uk", action: "allowed")
            ),
        ]
    )
    func blocky(line: String, expected: Lookup) {
        #expect(lookup(line) == expected)
        #expect(lookup(line, .blocky) == expected)
    }
}
