import Foundation
import TestSupport
import Testing

@testable import Classifier

@Suite("Snapshots")
struct SnapshotTests {
    static let source = TempLists([
        "gambling/domains": "bet.example\n*.wild.example\n",
        "pornography/urls": "example.com/bad\n",
        "self-harm/expressions": "hurt[+ ]myself\n",
        "allowlist/domains": "ok.bet.example\n",
        "iwf/category.toml":
            "display_name = \"IWF\"\nseverity = \"critical\"\nlocked = true\ncanary = \"http://iwf.canary.esafety.invalid/c\"\n",
        "iwf/urls": "iwf.canary.esafety.invalid/c\n",
    ])

    func tempPath() -> String { NSTemporaryDirectory() + "esafety-snap-" + UUID().uuidString }

    @Test("a snapshot round-trips: same categories, metadata and verdicts")
    func roundTrip() throws {
        let lists = try Self.source.load()
        let path = tempPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Snapshot.write(lists, to: path)
        let loaded = try Snapshot.load(path)
        #expect(loaded.categories == lists.categories)
        #expect(loaded.files == lists.files)
        #expect(loaded.counts == lists.counts)
        let targets = [
            "bet.example", "a.bet.example", "ok.bet.example", "wild.example", "x.wild.example",
            "http://example.com/bad/x", "https://www.google.com/search?q=hurt+myself",
            "http://iwf.canary.esafety.invalid/c", "unlisted.example",
        ]
        for t in targets {
            let a = lists.classify(target: t)
            let b = loaded.classify(target: t)
            #expect(a.categories == b.categories, "\(t)")
            #expect(a.allowedBy == b.allowedBy, "\(t)")
            #expect(a.suppressed == b.suppressed, "\(t)")
        }
        #expect(loaded.categories.first { $0.name == "iwf" }?.canary == "http://iwf.canary.esafety.invalid/c")
    }

    @Test("corrupt, truncated and foreign files are refused with the reason")
    func refusals() throws {
        let bytes = Snapshot.encode(try Self.source.load())
        func code(_ b: [UInt8]) -> SnapshotError.Code? {
            do {
                _ = try Snapshot.decode(b, path: "test.snapshot")
                return nil
            } catch { return error.code }
        }
        #expect(code(bytes) == nil)
        var flipped = bytes
        flipped[bytes.count / 2] ^= 0x40
        #expect(code(flipped) == .checksum)
        #expect(code(Array(bytes.prefix(bytes.count - 7))) == .truncated)
        #expect(code(Array(bytes.prefix(10))) == .truncated)
        var foreign = bytes
        foreign.replaceSubrange(0..<8, with: Array("SQLite f".utf8))
        #expect(code(foreign) == .foreign)
        var version = bytes
        version[8] = 99
        #expect(code(version) == .version)
        #expect(code(Array("# just a text file\nbet.example\n".utf8) + [UInt8](repeating: 0, count: 40)) == .foreign)
    }

    @Test("a missing snapshot names the path")
    func missing() {
        #expect(throws: SnapshotError.self) { try Snapshot.load("/nonexistent/esafety.snapshot") }
        do { _ = try Snapshot.load("/nonexistent/esafety.snapshot") } catch {
            #expect(error.description.hasPrefix("/nonexistent/esafety.snapshot: cannot read"))
        }
    }
}
