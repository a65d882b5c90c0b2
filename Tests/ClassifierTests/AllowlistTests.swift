import TestSupport
import Testing

@testable import Classifier

@Suite("Allowlist and locked categories")
struct AllowlistTests {
    static let lists = TempLists([
        "gambling/domains": "bet.example\n",
        "social-media/domains": "social.example\n",
        "iwf/category.toml": "severity = \"critical\"\nlocked = true\n",
        "iwf/urls": "social.example/abuse/1\n",
        "ctiru/category.toml": "severity = \"critical\"\nlocked = true\n",
        "ctiru/domains": "terror.example\n",
        "allowlist/domains": "bet.example\nsocial.example\nterror.example\n",
    ])

    @Test("the allowlist suppresses an unlocked match and names its rule")
    func suppresses() throws {
        let v = try Self.lists.load().classify(target: "www.bet.example")
        #expect(v.categories.isEmpty)
        #expect(v.suppressed.map(\.name) == ["gambling"])
        let allowed = try #require(v.allowedBy)
        #expect(allowed.rule == "bet.example")
        #expect(allowed.file.hasSuffix("allowlist/domains"))
        #expect(allowed.line == 1)
    }

    @Test(
        "nothing suppresses a locked category",
        arguments: [
            ("https://social.example/abuse/1", ["iwf"], ["social-media"]),
            ("terror.example", ["ctiru"], []),
            ("http://a.terror.example/x", ["ctiru"], []),
        ]
    )
    func locked(target: String, effective: [String], suppressed: [String]) throws {
        let v = try Self.lists.load().classify(target: target)
        #expect(v.categories.map(\.name) == effective)
        #expect(v.suppressed.map(\.name) == suppressed)
        #expect(v.categories.allSatisfy { $0.locked })
    }

    @Test("the most severe match is the primary one")
    func primary() throws {
        let t = TempLists([
            "games/domains": "x.example\n",
            "pornography/domains": "x.example\n",
            "gambling/domains": "x.example\n",
        ])
        let v = try t.load().classify(target: "x.example")
        #expect(v.categories.map(\.name) == ["pornography", "gambling", "games"])
        #expect(v.primary?.severity == .high)
    }
}
