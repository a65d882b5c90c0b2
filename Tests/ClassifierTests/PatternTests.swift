import TestSupport
import Testing

@testable import Classifier

@Suite("Patterns and the literal prefilter")
struct PatternTests {
    @Test(
        "required literals",
        arguments: [
            ("casino", ["casino"]),
            ("poker[0-9]+stars", ["stars", "poker"]),
            ("(porn|xxx|sex)cam", ["cam"]),
            ("(pornhub|xvideos)\\.com", ["pornhub", "xvideos"]),
            ("\\.exe$", [".exe"]),
            ("^https?://[^/]+/casino", ["/casino"]),
            ("ab?cdef", ["cdef"]),
            ("(?i)roulette", ["roulette"]),
            ("x(abc)?yz", ["yz"]),
            ("[a-z]+\\d{3}", []),
            ("(a|bcd)", ["a", "bcd"]),
            ("foo.*bar", ["foo", "bar"]),
            ("(?=look)ahead", ["ahead"]),
            ("\\Qlit\\E", []),
        ]
    )
    func literals(pattern: String, expected: [String]) {
        let result = PatternAnalyzer.requiredLiterals(pattern)?.map { String(decoding: $0, as: UTF8.self) } ?? []
        if expected.count == 2 && expected[0] == "stars" {
            // Either literal is a valid choice when both are required.
            #expect(result.count == 1 && (result[0] == "stars" || result[0] == "poker"))
        } else if expected.count == 2 && expected == ["foo", "bar"] {
            #expect(result.count == 1 && (result[0] == "foo" || result[0] == "bar"))
        } else {
            #expect(Set(result) == Set(expected))
        }
    }

    @Test("the prefilter never loses a match: same verdicts as running every pattern")
    func prefilterAgreesWithBruteForce() throws {
        let patterns = [
            "casino", "poker[0-9]+stars", "(porn|xxx|sex)cam", "\\.exe$", "^https?://[^/]+/casino",
            "free[-_]?bets?", "bet(ting)?365", "[?&]q=[^&]*(kill|hurt)[+ ]myself", "ab?cdef", "x(abc)?yz",
            "/wp-admin/", "(?i)ROULETTE", "vpn", "proxy[0-9]*\\.", "ga(m|n)bl",
        ]
        let text = patterns.joined(separator: "\n") + "\n"
        let t = TempLists(["gambling/expressions": text])
        let lists = try t.load()
        let scratch = lists.makeScratch()
        let regexes = try patterns.map { try PCRE2Regex($0) }
        let pcre = PCRE2Scratch()
        var generator = SystemRandomNumberGenerator()
        let pieces = [
            "casino", "poker", "123", "stars", "porn", "sexcam", "xxx", ".exe", "http://", "https://", "a.example",
            "/", "?q=", "kill+myself", "hurt myself", "abcdef", "acdef", "xyz", "xabcyz", "free-bet", "bet365",
            "betting365", "/wp-admin/", "RouLette", "vpn", "proxy12.", "gambl", "ganbl", "&", "zz",
        ]
        for _ in 0..<3000 {
            var url = ""
            for _ in 0..<Int.random(in: 1...8, using: &generator) { url += pieces.randomElement(using: &generator)! }
            var expected: [Int] = []
            var u = url.lowercased()
            u.withUTF8 { bytes in
                for (i, r) in regexes.enumerated() where r.match(bytes, scratch: pcre) == .match { expected.append(i) }
            }
            var actual: [Int] = []
            var host = "a.example"
            host.withUTF8 { h in
                var full = url
                full.withUTF8 { f in
                    lists.classify(host: UnsafeRawBufferPointer(h), url: UnsafeRawBufferPointer(f), scratch: scratch)
                }
            }
            actual = scratch.raw.filter { $0.kind == .pattern }.map { Int($0.rule) }.sorted()
            #expect(actual == expected, "URL \(url)")
        }
    }

    @Test("patterns match case-insensitively against the URL, or the host when only a host is known")
    func subjects() throws {
        let t = TempLists(["gambling/expressions": "casino\n^roulette\\.\n"])
        let lists = try t.load()
        #expect(categories(lists, "http://example.com/CASINO/games") == ["gambling"])
        #expect(categories(lists, "online-casino.example") == ["gambling"])
        #expect(categories(lists, "roulette.example") == ["gambling"])
        #expect(categories(lists, "http://roulette.example/") == [])
        let v = lists.classify(target: "casino.example")
        #expect(v.categories.first?.kind == .pattern)
        #expect(v.categories.first?.line == 1)
    }

    @Test("a pattern that hits the match limit counts as no match and is counted")
    func matchLimit() throws {
        let t = TempLists(["gambling/expressions": "^(a|aa)+$\nsafe-literal\n"])
        let lists = try t.load()
        let scratch = lists.makeScratch(matchLimit: 10_000)
        var host = "a.example"
        var url = String(repeating: "a", count: 60) + "!"
        let matched = host.withUTF8 { h in
            url.withUTF8 { u in
                lists.classify(host: UnsafeRawBufferPointer(h), url: UnsafeRawBufferPointer(u), scratch: scratch)
            }
        }
        #expect(!matched)
        #expect(scratch.patterns.limitHits[0] == 1)
    }

    @Test("a pattern that does not compile is a warning naming file and line; the others still work")
    func badPattern() throws {
        let t = TempLists(["gambling/expressions": "casino\n(unclosed\nbingo\n"])
        let lists = try t.load()
        #expect(categories(lists, "bingo.example") == ["gambling"])
        let d = try #require(lists.diagnostics.first { $0.kind == .badPattern })
        #expect(d.line == 2)
        #expect(d.file.hasSuffix("gambling/expressions"))
        #expect(d.message.contains("missing closing parenthesis"))
    }
}
