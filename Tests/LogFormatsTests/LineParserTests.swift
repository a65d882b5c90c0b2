import Pipeline
import SystemSupport
import TestSupport
import Testing

@testable import LogFormats

/// A parsed line as strings, for tables.
struct Parsed: Equatable, CustomStringConvertible {
    var kind: String  // request, reply, ignored, malformed
    var format: String? = nil
    var time: Double? = nil
    var client: String? = nil
    var user: String? = nil
    var host: String? = nil
    var url: String? = nil
    var method: String? = nil
    var action: String? = nil

    var description: String {
        "\(kind) \(format ?? "") t=\(time.map { String($0) } ?? "nil") client=\(client ?? "nil") user=\(user ?? "nil") host=\(host ?? "nil") url=\(url ?? "nil") method=\(method ?? "nil") action=\(action ?? "nil")"
    }
}

/// A fixed clock: 2026-11-21 12:00:00 UTC, local time = UTC.
let clock = LogTime(now: 1_795_262_400, localOffset: 0)

func parse(_ line: String, _ format: LogFormat? = nil) -> Parsed {
    let parser = LineParser(time: clock)
    var l = line
    return l.withUTF8 { bytes in
        func s(_ b: UnsafeRawBufferPointer?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }
        func fields(_ r: ParsedRequest, _ kind: String) -> Parsed {
            Parsed(
                kind: kind,
                format: r.format.description,
                time: r.time,
                client: s(r.client),
                user: s(r.user),
                host: s(r.host),
                url: s(r.url),
                method: s(r.method),
                action: r.action.description
            )
        }
        switch parser.parse(UnsafeRawBufferPointer(bytes), format: format) {
        case .request(let r): return fields(r, "request")
        case .reply(let r): return fields(r, "reply")
        case .block(let r): return fields(r, "block")
        case .ignored(let f): return Parsed(kind: "ignored", format: f.description)
        case .lease(let f, let client, let mac, _):
            return Parsed(kind: "lease", format: f.description, client: s(client), host: s(mac))
        case .blank: return Parsed(kind: "blank")
        case .malformed: return Parsed(kind: "malformed")
        }
    }
}

@Suite("Squid native access.log")
struct SquidTests {
    @Test(
        "real-world lines",
        arguments: [
            (
                "1525334330.556      3 120.65.1.1 TCP_REFRESH_MISS/200 2014 GET http://www.sample.com/hellow_world.txt public-user DIRECT/www.sample.com text/plain",
                Parsed(
                    kind: "request",
                    format: "squid",
                    time: 1525334330.556,
                    client: "120.65.1.1",
                    user: "public-user",
                    host: "www.sample.com",
                    url: "http://www.sample.com/hellow_world.txt",
                    method: "GET",
                    action: "allowed"
                )
            ),
            (
                "1525344856.899  16867 10.170.72.111 TCP_TUNNEL/200 6256 CONNECT logs.ap-southeast-2.amazonaws.com:443 - HIER_DIRECT/53.140.206.134 -",
                Parsed(
                    kind: "request",
                    format: "squid",
                    time: 1525344856.899,
                    client: "10.170.72.111",
                    user: nil,
                    host: "logs.ap-southeast-2.amazonaws.com:443",
                    url: nil,
                    method: "CONNECT",
                    action: "allowed"
                )
            ),
            (
                // A 407 is Squid asking the browser to authenticate: not a request (it made a false
                // "blocked" incident before every authenticated visit).
                "1140701230.827    781 192.168.1.210 TCP_DENIED/407 1785 GET http://www.ossec.net oahmet NONE/- text/html",
                Parsed(kind: "ignored", format: "squid")
            ),
            (
                "1140701230.827    781 192.168.1.210 TCP_DENIED/403 1785 GET http://www.ossec.net oahmet NONE/- text/html",
                Parsed(
                    kind: "request",
                    format: "squid",
                    time: 1140701230.827,
                    client: "192.168.1.210",
                    user: "oahmet",
                    host: "www.ossec.net",
                    url: "http://www.ossec.net",
                    method: "GET",
                    action: "blocked"
                )
            ),
            (
                // squidGuard as url_rewrite_program with 302: Squid logs the redirect.
                "1795255200.123     12 10.0.0.5 TCP_REDIRECT/302 360 GET http://www.bet365.com/ pupil1 HIER_NONE/- -",
                Parsed(
                    kind: "request",
                    format: "squid",
                    time: 1795255200.123,
                    client: "10.0.0.5",
                    user: "pupil1",
                    host: "www.bet365.com",
                    url: "http://www.bet365.com/",
                    method: "GET",
                    action: "blocked"
                )
            ),
            (
                "1700000000.000      0 10.1.2.3 NONE_NONE/000 0 - error:transaction-end-before-headers - HIER_NONE/- -",
                Parsed(kind: "malformed")
            ),
            (
                "1700000000.000      0 10.1.2.3 NONE_NONE/000 0 GET http://x.example/ - HIER_NONE/- -",
                Parsed(
                    kind: "request",
                    format: "squid",
                    time: 1700000000,
                    client: "10.1.2.3",
                    user: nil,
                    host: "x.example",
                    url: "http://x.example/",
                    method: "GET",
                    action: "unknown"
                )
            ),
            (
                "1700000000.5 12 10.0.0.9 TCP_DENIED/403 3900 GET http://www.bet365.com/en/ pupil1 HIER_NONE/- text/html",
                Parsed(
                    kind: "request",
                    format: "squid",
                    time: 1700000000.5,
                    client: "10.0.0.9",
                    user: "pupil1",
                    host: "www.bet365.com",
                    url: "http://www.bet365.com/en/",
                    method: "GET",
                    action: "blocked"
                )
            ),
            // A logformat with a client port and an HTTP version column.
            (
                "1773416922.391    104 10.105.21.199 58938 TCP_MISS/200 904 123 364 123 528 GET http://example.com/ 1.1 badeyek HIER_DIRECT/203.0.113.10 80 text/html - - \"-\" \"curl/8.14.1\"",
                Parsed(
                    kind: "request",
                    format: "squid",
                    time: 1773416922.391,
                    client: "10.105.21.199",
                    user: "badeyek",
                    host: "example.com",
                    url: "http://example.com/",
                    method: "GET",
                    action: "allowed"
                )
            ),
            // Through rsyslog: an RFC 3164 envelope.
            (
                "<166>Nov 21 10:00:00 proxy squid[123]: 1700000000.100 5 10.0.0.7 TCP_MISS/200 10 GET https://www.tiktok.com/x - HIER_DIRECT/1.2.3.4 text/html",
                Parsed(
                    kind: "request",
                    format: "squid",
                    time: 1700000000.1,
                    client: "10.0.0.7",
                    user: nil,
                    host: "www.tiktok.com",
                    url: "https://www.tiktok.com/x",
                    method: "GET",
                    action: "allowed"
                )
            ),
            (
                "1700000000.100 5 10.0.0.7 TCP_MISS/200 10 GET https://example.com/x - HIER_DIRECT/1.2.3.4 text/html\r",
                Parsed(
                    kind: "request",
                    format: "squid",
                    time: 1700000000.1,
                    client: "10.0.0.7",
                    user: nil,
                    host: "example.com",
                    url: "https://example.com/x",
                    method: "GET",
                    action: "allowed"
                )
            ),
            ("1700000000.100 5 10.0.0.7 garbage", Parsed(kind: "malformed")),
        ]
    )
    func lines(line: String, expected: Parsed) {
        #expect(parse(line) == expected)
        if expected.kind == "request" { #expect(parse(line, .squid) == expected) }
    }
}

@Suite("Squid common and combined")
struct SquidCommonTests {
    @Test(
        "lines",
        arguments: [
            (
                "10.0.0.5 - pupil7 [21/Nov/2026:10:00:00 +0000] \"GET http://www.example.com/a HTTP/1.1\" 200 1234 \"-\" \"Mozilla/5.0\" TCP_MISS:HIER_DIRECT",
                Parsed(
                    kind: "request",
                    format: "squid-common",
                    time: 1795255200,
                    client: "10.0.0.5",
                    user: "pupil7",
                    host: "www.example.com",
                    url: "http://www.example.com/a",
                    method: "GET",
                    action: "allowed"
                )
            ),
            (
                "10.0.0.5 - - [21/Nov/2026:11:00:00 +0100] \"CONNECT www.bet365.com:443 HTTP/1.1\" 403 3900 TCP_DENIED:HIER_NONE",
                Parsed(
                    kind: "request",
                    format: "squid-common",
                    time: 1795255200,
                    client: "10.0.0.5",
                    user: nil,
                    host: "www.bet365.com:443",
                    url: nil,
                    method: "CONNECT",
                    action: "blocked"
                )
            ),
            (
                "1.2.3.4 - johndoe [05/02/2025 11:30:29] \"GET https://sub.example.com/1.png HTTP/1.1\" 200 - - 1000 Business Services",
                Parsed(
                    kind: "request",
                    format: "squid-common",
                    time: 1738755029,
                    client: "1.2.3.4",
                    user: "johndoe",
                    host: "sub.example.com",
                    url: "https://sub.example.com/1.png",
                    method: "GET",
                    action: "allowed"
                )
            ),
        ]
    )
    func lines(line: String, expected: Parsed) {
        #expect(parse(line) == expected)
    }
}

@Suite("dnsmasq and Pi-hole")
struct DnsmasqTests {
    @Test(
        "lines",
        arguments: [
            (
                "Nov 21 10:00:00 dnsmasq[812]: query[A] www.bet365.com from 10.0.0.23",
                Parsed(
                    kind: "request",
                    format: "dnsmasq",
                    time: 1795255200,
                    client: "10.0.0.23",
                    host: "www.bet365.com",
                    action: "unknown"
                )
            ),
            (
                // log-queries=extra: a serial and the requester's address/port first.
                "Nov 21 10:00:00 dnsmasq[812]: 2 ::1/59023 query[A] www.bet365.com from ::1",
                Parsed(
                    kind: "request",
                    format: "dnsmasq",
                    time: 1795255200,
                    client: "::1",
                    host: "www.bet365.com",
                    action: "unknown"
                )
            ),
            (
                "Nov 21 10:00:00 dnsmasq[812]: 17 10.0.0.23/41863 forwarded www.bet365.com to 1.1.1.1",
                Parsed(kind: "ignored", format: "dnsmasq")
            ),
            (
                "Nov  1 09:05:07 router dnsmasq[812]: query[AAAA] ipv6.example.org from fd00::23",
                Parsed(
                    kind: "request",
                    format: "dnsmasq",
                    time: 1793523907,
                    client: "fd00::23",
                    host: "ipv6.example.org",
                    action: "unknown"
                )
            ),
            (
                "dnsmasq[812]: query[HTTPS] svc.example.net from 192.168.1.10",
                Parsed(
                    kind: "request",
                    format: "dnsmasq",
                    time: nil,
                    client: "192.168.1.10",
                    host: "svc.example.net",
                    action: "unknown"
                )
            ),
            (
                "query[A] bare.example from 10.1.1.1",
                Parsed(
                    kind: "request",
                    format: "dnsmasq",
                    time: nil,
                    client: "10.1.1.1",
                    host: "bare.example",
                    action: "unknown"
                )
            ),
            (
                "<30>Nov 21 10:00:00 pihole pihole-FTL[99]: query[A] x.example from 10.0.0.2",
                Parsed(
                    kind: "request",
                    format: "dnsmasq",
                    time: 1795255200,
                    client: "10.0.0.2",
                    host: "x.example",
                    action: "unknown"
                )
            ),
            (
                "Nov 21 10:00:00 dnsmasq[812]: forwarded www.bet365.com to 1.1.1.1",
                Parsed(kind: "ignored", format: "dnsmasq")
            ),
            (
                "Nov 21 10:00:00 dnsmasq[812]: reply www.bet365.com is 5.226.180.9",
                Parsed(kind: "ignored", format: "dnsmasq")
            ),
            (
                "Nov 21 10:00:00 dnsmasq[812]: cached www.bet365.com is 5.226.180.9",
                Parsed(kind: "ignored", format: "dnsmasq")
            ),
            ("Nov 21 10:00:00 dnsmasq[812]: config local.lan is 10.0.0.1", Parsed(kind: "ignored", format: "dnsmasq")),
            (
                "Nov 21 10:00:00 dnsmasq[812]: /etc/hosts localhost is 127.0.0.1",
                Parsed(kind: "ignored", format: "dnsmasq")
            ),
            ("Nov 21 10:00:00 dnsmasq[812]: query[A] truncated.example", Parsed(kind: "malformed")),
            // DHCP leases: which device (MAC) has an address, for device names (host holds the MAC here).
            (
                "Nov 21 10:00:00 dnsmasq-dhcp[812]: DHCPACK(eth0) 10.0.0.57 a4:5e:60:D1:22:0b library-pc-3",
                Parsed(kind: "lease", format: "dnsmasq", client: "10.0.0.57", host: "a4:5e:60:D1:22:0b")
            ),
            (
                "Nov 21 10:00:00 dnsmasq-dhcp[812]: DHCPACK(eth0) 10.0.0.58 not-a-mac",
                Parsed(kind: "ignored", format: "dnsmasq")
            ),
            (
                "Nov 21 10:00:00 dnsmasq-dhcp[812]: DHCPREQUEST(eth0) 10.0.0.57 a4:5e:60:d1:22:0b",
                Parsed(kind: "ignored", format: "dnsmasq")
            ),
        ]
    )
    func lines(line: String, expected: Parsed) {
        #expect(parse(line) == expected)
    }
}

@Suite("BIND query log")
struct BindTests {
    @Test(
        "9.9, 9.11+ and syslog forms",
        arguments: [
            (
                "17-Feb-2018 23:06:56.326 queries: info: client 172.26.0.1#12345 (test.example.com): query: test.example.com IN A +E(0)K (172.26.0.3)",
                Parsed(
                    kind: "request",
                    format: "bind",
                    time: 1518908816.326,
                    client: "172.26.0.1",
                    host: "test.example.com",
                    action: "unknown"
                )
            ),
            (
                "30-Jun-2018 15:50:00.999 queries: info: client @0x7f64500020ef 192.168.10.48#60061 (91.2.10.170.in-addr.internal): query: 91.2.10.170.in-addr.internal IN PTR + (192.168.2.2)",
                Parsed(
                    kind: "request",
                    format: "bind",
                    time: 1530373800.999,
                    client: "192.168.10.48",
                    host: "91.2.10.170.in-addr.internal",
                    action: "unknown"
                )
            ),
            (
                "client @0x7f85b4026ed0 127.0.0.1#42520 (ci.elastic.co): query: ci.elastic.co IN A +E(0)K (35.193.103.164)",
                Parsed(
                    kind: "request",
                    format: "bind",
                    time: nil,
                    client: "127.0.0.1",
                    host: "ci.elastic.co",
                    action: "unknown"
                )
            ),
            (
                "client 10.0.0.4#53251: query: old.example.com IN A + (10.0.0.1)",
                Parsed(
                    kind: "request",
                    format: "bind",
                    time: nil,
                    client: "10.0.0.4",
                    host: "old.example.com",
                    action: "unknown"
                )
            ),
            (
                "Nov 21 10:00:00 ns1 named[464]: client @0x7f 2001:db8::5#4000 (v6.example): view internal: query: v6.example IN AAAA +E(0)K (2001:db8::1)",
                Parsed(
                    kind: "request",
                    format: "bind",
                    time: 1795255200,
                    client: "2001:db8::5",
                    host: "v6.example",
                    action: "unknown"
                )
            ),
            (
                "client @0xfc886160 10.251.201.26#54298 (x.example.com): answer: x.example.com IN HTTPS +EDC (10.0.0.2) -> NOERROR",
                Parsed(kind: "ignored", format: "bind")
            ),
            (
                "Aug 29 15:33:13 ns3 named[464]: client 217.148.39.3#1036: query (cache) denied",
                Parsed(kind: "ignored", format: "bind")
            ),
            ("client nonsense", Parsed(kind: "malformed")),
        ]
    )
    func lines(line: String, expected: Parsed) {
        #expect(parse(line) == expected)
    }
}

@Suite("unbound")
struct UnboundTests {
    @Test(
        "log-queries, log-replies and the rest",
        arguments: [
            (
                "<30>Aug 15 16:19:02 unbound[26931]: [26931:0] info: 192.168.1.1 api.opensubtitles.org. A IN",
                Parsed(
                    kind: "request",
                    format: "unbound",
                    time: 1786810742,
                    client: "192.168.1.1",
                    host: "api.opensubtitles.org.",
                    action: "unknown"
                )
            ),
            (
                "2019-10-08T11:29:05+02:00 hostfoo unbound[17265]: [17265:13] info: 127.0.0.1 reachms.corp.com. A IN",
                Parsed(
                    kind: "request",
                    format: "unbound",
                    time: 1570526945,
                    client: "127.0.0.1",
                    host: "reachms.corp.com.",
                    action: "unknown"
                )
            ),
            (
                "[1700000000] unbound[1234:0] info: 10.0.0.8 www.bet365.com. AAAA IN",
                Parsed(
                    kind: "request",
                    format: "unbound",
                    time: 1700000000,
                    client: "10.0.0.8",
                    host: "www.bet365.com.",
                    action: "unknown"
                )
            ),
            (
                // unbound's own file with log-time-ascii: yes.
                "Nov 21 10:00:00 unbound[812:0] info: 10.0.0.8 www.bet365.com. AAAA IN",
                Parsed(
                    kind: "request",
                    format: "unbound",
                    time: 1795255200,
                    client: "10.0.0.8",
                    host: "www.bet365.com.",
                    action: "unknown"
                )
            ),
            (
                "[1700000000] unbound[1234:0] info: 10.0.0.8 www.bet365.com. A IN NOERROR 0.000125 1 60",
                Parsed(
                    kind: "reply",
                    format: "unbound",
                    time: 1700000000,
                    client: "10.0.0.8",
                    host: "www.bet365.com.",
                    action: "unknown"
                )
            ),
            (
                "2014-07-14T14:00:05.507848-04:00 arrakis unbound: [2541:0] info: server stats for thread 0: 3 queries, 2 answers from cache, 1 recursions, 0 prefetch",
                Parsed(kind: "ignored", format: "unbound")
            ),
            (
                "2019-10-08T11:29:05+02:00 hostfoo unbound[17265]: [265456:0] info: generate keytag query _ta-4f66. NULL IN",
                Parsed(kind: "ignored", format: "unbound")
            ),
            ("[3483:15] error: internal error: looping module stopped", Parsed(kind: "ignored", format: "unbound")),
        ]
    )
    func lines(line: String, expected: Parsed) {
        #expect(parse(line) == expected)
    }
}

@Suite("JSON lines")
struct JSONLineTests {
    @Test(
        "the minimal schema",
        arguments: [
            (
                #"{"time":"2026-11-21T10:00:00Z","client":"10.0.0.5","user":"pupil7","host":"www.bet365.com","url":"https://www.bet365.com/x","method":"GET","action":"blocked"}"#,
                Parsed(
                    kind: "request",
                    format: "json",
                    time: 1795255200,
                    client: "10.0.0.5",
                    user: "pupil7",
                    host: "www.bet365.com",
                    url: "https://www.bet365.com/x",
                    method: "GET",
                    action: "blocked"
                )
            ),
            (
                #"{"time": 1700000000.25, "client": "10.0.0.6", "url": "http:\/\/x.example\/a?q=\u00e9t\u00e9"}"#,
                Parsed(
                    kind: "request",
                    format: "json",
                    time: 1700000000.25,
                    client: "10.0.0.6",
                    user: nil,
                    host: "x.example",
                    url: "http://x.example/a?q=été",
                    method: nil,
                    action: "unknown"
                )
            ),
            (
                #"{"client":"10.0.0.7","host":"dns.example","extra":{"nested":[1,2,{"a":"}"}]},"user":"-"}"#,
                Parsed(
                    kind: "request",
                    format: "json",
                    time: nil,
                    client: "10.0.0.7",
                    user: nil,
                    host: "dns.example",
                    action: "unknown"
                )
            ),
            (#"{"client":"10.0.0.7"}"#, Parsed(kind: "malformed")),
            (#"{"client":"10.0.0.7","host":"#, Parsed(kind: "malformed")),
            ("{}", Parsed(kind: "malformed")),
        ]
    )
    func lines(line: String, expected: Parsed) {
        #expect(parse(line) == expected)
    }
}

@Suite("Envelopes and detection")
struct EnvelopeTests {
    @Test("RFC 5424 envelope is stripped")
    func rfc5424() {
        let p = parse(
            "<134>1 2026-11-21T10:00:00.000Z proxy squid 123 - [meta x=\"1\"] 1700000000.100 5 10.0.0.7 TCP_MISS/200 10 GET http://a.example/ - HIER_DIRECT/1.2.3.4 -"
        )
        #expect(p.kind == "request")
        #expect(p.host == "a.example")
        #expect(p.format == "squid")
    }

    @Test(
        "unknown lines are malformed, never fatal",
        arguments: ["hello world", "\u{1B}[2J", "<13>", "{not json"]
    )
    func unknown(line: String) {
        #expect(parse(line).kind == "malformed")
    }

    @Test("blank lines are nothing, not parse errors", arguments: ["", "   ", "\t", " \r"])
    func blank(line: String) {
        #expect(parse(line).kind == "blank")
    }

    @Test(
        "who blocked it: Squid itself, or a URL rewriter's redirect",
        arguments: [
            ("TCP_DENIED/403", "squid"), ("TCP_REDIRECT/302", "redirector"), ("TCP_MISS/200", nil),
            ("TCP_DENIED_REPLY/403", "squid"),
        ]
    )
    func blocker(code: String, expected: String?) {
        let parser = LineParser()
        let line = "1795255200.123 12 10.0.0.5 \(code) 360 GET http://www.bet365.com/ pupil1 HIER_NONE/- -"
        var bytes = Array(line.utf8)
        let outcome = bytes.withUnsafeMutableBytes { parser.parse(UnsafeRawBufferPointer($0)) }
        guard case .request(let r) = outcome else {
            Issue.record("not a request: \(outcome)")
            return
        }
        #expect(r.action.blocker == expected)
    }

    @Test("a pinned format refuses other formats' lines")
    func pinned() {
        #expect(parse("query[A] x.example from 10.0.0.1", .squid).kind == "malformed")
        #expect(
            parse("1700000000.100 5 10.0.0.7 TCP_MISS/200 10 GET http://a.example/ - HIER_DIRECT/1.2.3.4 -", .dnsmasq)
                .kind == "malformed"
        )
    }

    @Test(
        "timestamps",
        arguments: [
            ("Nov 21 10:00:00", 1795255200.0), ("Dec 31 23:59:59", 1767225599.0), ("Jan  1 00:00:00", 1767225600.0),
        ]
    )
    func syslogTimes(text: String, expected: Double) {
        var t = text
        let got = t.withUTF8 { clock.syslog(UnsafeRawBufferPointer($0), at: 0)?.0 }
        #expect(got == expected)
    }
}

@Suite("RFC 3339 output")
struct RFC3339OutputTests {
    @Test(
        "UTC with milliseconds, as a String and written into bytes",
        arguments: [
            (1_795_262_400.0, "2026-11-21T12:00:00.000Z"),
            (1_795_262_400.1234, "2026-11-21T12:00:00.123Z"),
            (1_795_262_399.9996, "2026-11-21T12:00:00.000Z"),
            (0.0, "1970-01-01T00:00:00.000Z"),
            (951_782_400.5, "2000-02-29T00:00:00.500Z"),
            (-1.0, "1969-12-31T23:59:59.000Z"),
            (253_402_300_799.0, "9999-12-31T23:59:59.000Z"),
            (253_402_300_800.0, "10000-01-01T00:00:00.000Z"),
            // Any Double writes some time, never a trap (a corrupt time in a record).
            (1e300, "3170843-11-07T09:46:40.000Z"),
            (-.infinity, "-3166904-02-24T14:13:20.000Z"),
            (.nan, "1970-01-01T00:00:00.000Z"),
        ]
    )
    func output(_ t: Double, _ expected: String) {
        #expect(Clock.rfc3339(t) == expected)
        var bytes: [UInt8] = Array("x".utf8)
        Clock.appendRFC3339(t, quotedTo: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "x\"\(expected)\"")
    }
}

@Suite("Records glued after a NUL")
struct NULRecordTests {
    final class Collect: MatchSink, @unchecked Sendable {
        var users: [String?] = []
        func accept(_ match: MatchedRequest) { users.append(match.user) }
    }

    @Test("the record before a NUL ends there; the next record is kept (Squid's over-long records)")
    func nul() throws {
        let lists = try TempLists(["gambling/domains": "bet.example\n"]).load()
        let holder = GenerationHolder(Generation(number: 1, lists: lists, loadedAt: 0, loadSeconds: 0))
        let collect = Collect()
        let pipeline = LinePipeline(source: "test", format: nil, holder: holder, sink: collect)
        let first =
            "1795255200.000 5 10.0.0.1 TCP_MISS/200 10 GET http://bet.example/" + String(repeating: "a", count: 40)
        let second = "1795255201.000 5 10.0.0.2 TCP_MISS/200 10 GET http://bet.example/b pupil2 HIER_DIRECT/1.2.3.4 -"
        var bytes = Array(first.utf8) + [0] + Array(second.utf8) + [0x0A]
        _ = bytes.withUnsafeMutableBytes {
            pipeline.processLines(UnsafeRawBufferPointer($0), arrival: 0, maxLine: 65536)
        }
        let c = pipeline.takeCounters()
        #expect(c.received == 2)
        #expect(collect.users == [nil, "pupil2"], "the first took the second's fields before")
    }
}
