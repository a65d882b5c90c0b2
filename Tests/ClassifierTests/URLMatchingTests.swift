import TestSupport
import Testing

@testable import Classifier

@Suite("URL lists (squidGuard semantics)")
struct URLMatchingTests {
    static let lists = TempLists([
        "pornography/urls":
            "example.com/bad\nhttp://www.Example.org:8080/Dir/Page.html\nexample.net/x/y/\nfiles.example.edu\nforum.example/view.php?id=7\n",
        "iwf/category.toml": "severity = \"critical\"\nlocked = true\n",
        "iwf/urls": "abuse.example/img/123\n",
    ])

    @Test(
        "prefix at path boundaries; scheme, www. and port ignored; case-insensitive",
        arguments: [
            ("http://example.com/bad", true),
            ("https://example.com/bad", true),
            ("http://www.example.com/bad", true),
            ("http://example.com:8080/bad", true),
            ("http://example.com/bad/", true),
            ("http://example.com/bad/more/deep.html", true),
            ("http://example.com/bad?x=1", true),
            ("http://example.com/BAD", true),
            ("http://example.com/badge", false),
            ("http://example.com/good", false),
            ("http://example.com/", false),
            ("http://sub.example.com/bad", false),
            ("http://example.org/dir/page.html", true),
            ("http://example.org/dir/page.html?a=b", true),
            ("http://example.org/dir/", false),
            ("http://example.net/x/y", true),
            ("http://example.net/x/y/z", true),
            ("http://example.net/x", false),
            ("http://files.example.edu/anything", true),
            ("http://files.example.edu", true),
            ("example.com/bad", true),
            ("http://forum.example/view.php?id=7", true),
            ("http://forum.example/view.php?id=8", false),
            ("http://forum.example/view.php", false),
        ]
    )
    func prefix(url: String, matches: Bool) throws {
        let lists = try Self.lists.load()
        #expect(categories(lists, url) == (matches ? ["pornography"] : []))
    }

    @Test("a host alone never matches a URL entry with a path (DNS logs)")
    func hostOnly() throws {
        let lists = try Self.lists.load()
        #expect(categories(lists, "example.com") == [])
        #expect(categories(lists, "abuse.example") == [])
    }

    @Test("IWF URLs match with provenance and the locked flag")
    func iwf() throws {
        let lists = try Self.lists.load()
        let v = lists.classify(target: "https://abuse.example/img/123")
        let m = try #require(v.categories.first)
        #expect(m.name == "iwf")
        #expect(m.kind == .url)
        #expect(m.locked)
        #expect(m.severity == .critical)
        #expect(m.rule == "abuse.example/img/123")
    }
}
