import TestSupport
import Testing

@testable import Classifier

@Suite("Domain lists")
struct DomainMatchingTests {
    static let lists = TempLists([
        "gambling/domains": "bet365.com\nWILLIAMHILL.COM.\n*.wild.example\n",
        "social-media/domains":
            "0.0.0.0 facebook.com\n127.0.0.1 tiktok.com snapchat.com # hosts file line\n||discord.com^\n||reddit.com^$third-party\n",
        "pornography/domains": "\u{FEFF}bad.example\r\nvery.bad.example\r\n",
        "streaming/domains": "bücher.example\n10.9.8.7\n",
        "games/domains": "# comment only\n\n   \n",
    ])

    @Test(
        "a domain matches itself and subdomains, never a look-alike",
        arguments: [
            ("bet365.com", ["gambling"]),
            ("www.bet365.com", ["gambling"]),
            ("a.b.c.bet365.com", ["gambling"]),
            ("notbet365.com", []),
            ("bet365.com.evil.example", []),
            ("bet365.co", []),
            ("et365.com", []),
        ]
    )
    func subdomainsNotLookAlikes(host: String, expected: [String]) throws {
        #expect(categories(try Self.lists.load(), host) == expected)
    }

    @Test(
        "list forms: hosts file, adblock, wildcard, upper case, trailing dot, BOM, CRLF",
        arguments: [
            ("facebook.com", ["social-media"]),
            ("tiktok.com", ["social-media"]),
            ("snapchat.com", ["social-media"]),
            ("cdn.discord.com", ["social-media"]),
            ("reddit.com", ["social-media"]),
            ("williamhill.com", ["gambling"]),
            ("sports.williamhill.com", ["gambling"]),
            ("bad.example", ["pornography"]),
            ("x.very.bad.example", ["pornography"]),
            ("a.wild.example", ["gambling"]),
            ("wild.example", []),
        ]
    )
    func listForms(host: String, expected: [String]) throws {
        #expect(categories(try Self.lists.load(), host) == expected)
    }

    @Test(
        "targets: case, trailing dot, port, URL, IDN, IP literal",
        arguments: [
            ("WWW.BET365.COM.", ["gambling"]),
            ("bet365.com:443", ["gambling"]),
            ("https://www.bet365.com:8443/en/sports?x=1", ["gambling"]),
            ("http://user@bet365.com/", ["gambling"]),
            ("BÜCHER.example", ["streaming"]),
            ("xn--bcher-kva.example", ["streaming"]),
            ("10.9.8.7", ["streaming"]),
            ("10.9.8.7:80", ["streaming"]),
            ("9.8.7", []),
            ("1.10.9.8.7", []),
        ]
    )
    func targets(target: String, expected: [String]) throws {
        #expect(categories(try Self.lists.load(), target) == expected)
    }

    @Test("provenance names file, line and rule")
    func provenance() throws {
        let lists = try Self.lists.load()
        let v = lists.classify(target: "m.snapchat.com")
        let m = try #require(v.categories.first)
        #expect(m.kind == .domain)
        #expect(m.file.hasSuffix("social-media/domains"))
        #expect(m.line == 2)
        #expect(m.rule == "snapchat.com")
        let w = try #require(lists.classify(target: "pornography.bad.example").categories.first)
        #expect(w.line == 1)
        let crlf = try #require(lists.classify(target: "very.bad.example").categories.first)
        #expect(crlf.rule == "very.bad.example")
        #expect(crlf.line == 2)
    }

    @Test("one domain in several categories is stored once and reports each")
    func sharedDomain() throws {
        let t = TempLists(["gambling/domains": "shared.example\n", "games/domains": "shared.example\n"])
        let lists = try t.load()
        #expect(lists.domains.keyCount == 1)
        let v = lists.classify(target: "x.shared.example")
        #expect(v.categories.map(\.name) == ["gambling", "games"])
        #expect(v.primary?.name == "gambling")
    }

    @Test("invalid entries are warnings with file and line, and loading goes on")
    func invalidEntries() throws {
        let t = TempLists([
            "gambling/domains": "ok.example\nnot a host name\nbad!chars.example\n@@||allowed.example^\nfine.example\n"
        ])
        let lists = try t.load()
        #expect(categories(lists, "fine.example") == ["gambling"])
        let lines = lists.diagnostics.map(\.line)
        #expect(lines == [2, 3, 4])
        #expect(lists.diagnostics.allSatisfy { $0.file.hasSuffix("gambling/domains") && $0.level == .warning })
    }

    @Test("every suffix probe of a long host and the empty list")
    func edges() throws {
        let empty = try TempLists(["games/domains": "# nothing\n"]).load()
        #expect(categories(empty, "a.b.c.d.e.f.example") == [])
        let deep = try TempLists(["games/domains": "e.f.example\n"]).load()
        #expect(categories(deep, "a.b.c.d.e.f.example") == ["games"])
        #expect(categories(deep, "f.example") == [])
    }
}
