import TestSupport
import Testing

@testable import Classifier

@Suite("The bundled Blocklists")
struct BundledListsTests {
    static let lists: CompiledLists = try! ListLoader.load(roots: [repositoryRoot + "/Blocklists"])

    @Test("the default taxonomy ships as folders with metadata")
    func taxonomy() {
        for expected in DefaultTaxonomy.categories {
            let c = Self.lists.categories.first { $0.name == expected.name }
            #expect(c != nil, "missing \(expected.name)")
            #expect(c?.severity == expected.severity, "\(expected.name)")
            #expect(c?.locked == expected.locked, "\(expected.name)")
        }
        #expect(Self.lists.categories.filter(\.locked).map(\.name).sorted() == ["ctiru", "iwf"])
    }

    @Test("every category's canary classifies to that category")
    func canaries() throws {
        for category in Self.lists.categories where !category.isAllowlist {
            let canary = try #require(category.canary, "\(category.name) has no canary")
            #expect(canary.contains(".invalid"), "\(category.name): canary must use a reserved name")
            let v = Self.lists.classify(target: canary)
            #expect(v.categories.map(\.name).contains(category.name), "\(category.name): \(canary)")
        }
    }

    @Test("the bundled lists lint clean")
    func lintClean() {
        let report = Lint.run(Self.lists)
        #expect(report.diagnostics.isEmpty, "\(report.diagnostics)")
    }

    @Test(
        "well-known entries",
        arguments: [
            ("https://www.bet365.com/", "gambling"), ("m.facebook.com", "social-media"), ("dns.google", "bypass"),
            ("nordvpn.com", "bypass"), ("www.pornhub.com", "pornography"), ("tinder.com", "dating"),
            ("https://www.google.com/search?q=how+to+kill+myself", "suicide"),
            ("https://www.bing.com/search?q=ways%20to%20cut%20myself", "self-harm"),
        ]
    )
    func wellKnown(target: String, category: String) {
        #expect(Self.lists.classify(target: target).primary?.name == category)
    }
}
