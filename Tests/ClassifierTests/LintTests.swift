import Foundation
import TestSupport
import Testing

@testable import Classifier

@Suite("Lint findings")
struct LintTests {
    static let report: Lint.Report = {
        let t = TempLists([
            "gambling/domains": "bet.example\nbet.example\nwww.bet.example\nnot_valid!.example\n",
            "gambling/expressions": "casino\n[0-9]+\n(unclosed\n^(a|aa)+$\n",
            "iwf/category.toml": "severity = \"critical\"\nlocked = true\n",
            "iwf/urls": "abuse.example/1\n",
            "allowlist/domains": "abuse.example\n",
        ])
        return Lint.run(roots: [t.root])
    }()

    func finding(_ kind: Diagnostic.Kind) -> [Diagnostic] { Self.report.diagnostics.filter { $0.kind == kind } }

    @Test("duplicates") func duplicates() {
        #expect(finding(.duplicate).map(\.line) == [2])
    }
    @Test("entries shadowed by a parent domain in the same category") func shadowed() {
        #expect(finding(.shadowed).map(\.line) == [3])
    }
    @Test("invalid host names") func invalidHost() {
        #expect(finding(.invalidHost).map(\.line) == [4])
    }
    @Test("patterns that do not compile") func badPattern() {
        #expect(finding(.badPattern).map(\.line) == [3])
    }
    @Test("patterns with no literal to prefilter on") func noLiteral() {
        #expect(Set(finding(.noLiteral).map(\.line)) == [2, 4])
    }
    @Test("patterns that hit the match limit on an adversarial probe") func matchLimit() {
        #expect(finding(.matchLimit).map(\.line) == [4])
    }
    @Test("allowlist entries that touch a locked category") func allowlistLocked() {
        let f = finding(.allowlistTouchesLocked)
        #expect(f.count == 1)
        #expect(f.first?.file.hasSuffix("allowlist/domains") == true)
        #expect(f.first?.message.contains("iwf") == true)
    }
    @Test("a summary of entries per category") func summary() {
        let gambling = Self.report.summary.first { $0.category.name == "gambling" }
        #expect(gambling?.counts.domains == 3)
        #expect(gambling?.counts.patterns == 4)
        #expect(Self.report.errorCount == 0)
    }
    @Test("metadata errors are errors with file and line") func metadataError() {
        let t = TempLists([
            "games/category.toml": "display_name = \"Games\"\nseverity = \"urgent\"\n", "games/domains": "x.example\n",
        ])
        let report = Lint.run(roots: [t.root])
        #expect(report.errorCount == 1)
        let d = report.diagnostics[0]
        #expect(d.file.hasSuffix("games/category.toml"))
        #expect(d.line == 2)
        #expect(d.message.contains("unknown severity"))
    }
}

@Suite("Category metadata and foreign trees")
struct MetadataTests {
    @Test(
        "category.toml",
        arguments: [
            ("severity = \"high\"\nlocked = true\n", nil as Int?),
            ("display_name = 'Single quoted'\n", nil),
            ("# comment\n\ndescription = \"with # hash\" # trailing\n", nil),
            ("severity = high\n", 1),
            ("locked = yes\n", 1),
            ("colour = \"red\"\n", 1),
            ("\n\nnonsense\n", 3),
            ("description = \"unterminated\n", 1),
        ]
    )
    func metadata(text: String, errorLine: Int?) {
        do {
            _ = try Category.parseMetadata(text, file: "c/category.toml", defaultName: "c")
            #expect(errorLine == nil)
        } catch {
            #expect(error.line == errorLine)
            #expect(error.file == "c/category.toml")
        }
    }

    @Test("UT1 folders map onto esafety categories; unmapped keep their name as info")
    func ut1Mapping() throws {
        let ut1 = TempLists([
            "adult/urls": "porn.example/videos\n",
            "gambling/domains": "casino.example\n",
            "vpn/domains": "vpn.example\n",
            "redirector/domains": "proxy.example\n",
            "jobsearch/domains": "jobs.example\n",
            "drogue/domains": "drugs.example\n",
        ])
        let ours = TempLists([
            "gambling/category.toml": "display_name = \"Betting\"\nseverity = \"high\"\n",
            "gambling/domains": "bet.example\n",
        ])
        let lists = try ListLoader.load(roots: [ours.root, ut1.root])
        #expect(categories(lists, "http://porn.example/videos/1") == ["pornography"])
        #expect(categories(lists, "vpn.example") == ["bypass"])
        #expect(categories(lists, "proxy.example") == ["bypass"])
        #expect(categories(lists, "drugs.example") == ["drugs"])
        // Merged with our gambling category and its metadata.
        let casino = try #require(lists.classify(target: "casino.example").categories.first)
        #expect(casino.name == "gambling")
        #expect(casino.severity == .high)
        #expect(casino.file.hasPrefix(ut1.root))
        let jobs = try #require(lists.classify(target: "jobs.example").categories.first)
        #expect(jobs.name == "jobsearch")
        #expect(jobs.severity == .info)
        #expect(lists.categories.filter { $0.name == "gambling" }.count == 1)
    }

    @Test("a missing root is an error naming it")
    func missingRoot() {
        do {
            _ = try ListLoader.load(roots: ["/nonexistent/lists"])
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .missingFolder)
            #expect(error.description == "/nonexistent/lists: no such list folder")
        }
    }
}

@Suite("List folder layout")
struct LayoutTests {
    @Test("split files (domains.0, domains.1) are read; symlinked category folders are not read twice")
    func splitFilesAndSymlinks() throws {
        let t = TempLists([
            "adult/domains.0": "a.example\n",
            "adult/domains.1": "b.example\n",
            "adult/domains.diff": "not-read.example\n",
        ])
        try FileManager.default.createSymbolicLink(atPath: t.root + "/porn", withDestinationPath: t.root + "/adult")
        let lists = try t.load()
        #expect(categories(lists, "a.example") == ["pornography"])
        #expect(categories(lists, "b.example") == ["pornography"])
        #expect(categories(lists, "not-read.example") == [])
        #expect(lists.files.count == 2)
        #expect(lists.diagnostics.filter { $0.kind == .duplicate }.isEmpty)
    }

    @Test("an entry that is a public suffix is an error, unless its line says it is meant")
    func publicSuffixEntries() throws {
        let t = TempLists([
            "gambling/domains": "com\nco.uk # esafety: public-suffix\n||org^\nbet.example\nx.kawasaki.jp\n",
            "allowlist/domains": "net\n",
        ])
        let psl = PublicSuffix(text: "com\norg\nnet\nuk\nco.uk\njp\n*.kawasaki.jp\n")
        let report = Lint.run(try t.load(), suffixes: psl)
        let errors = report.diagnostics.filter { $0.kind == .publicSuffix }
        // com (1), ||org^ (3) and x.kawasaki.jp (5, under the wildcard); co.uk is marked, bet.example
        // is a site, and the allowlist's net is not a block.
        #expect(errors.map(\.line) == [1, 3, 5], "\(errors)")
        #expect(errors.allSatisfy { $0.level == .error })
        #expect(errors.first?.message.contains("com is a public suffix") == true)
        // With another list, only what it names.
        let wildcard = Lint.run(try t.load(), suffixes: PublicSuffix(text: "jp\n*.kawasaki.jp\n"))
        #expect(wildcard.diagnostics.filter { $0.kind == .publicSuffix }.map(\.line) == [5])
    }
}
