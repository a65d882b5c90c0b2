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

    /// A snapshot with its checksum made to match its (changed) payload, so the decoder's
    /// own checks are what stand between a corrupt file and a crash.
    static func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        let sum = b.withUnsafeBytes { Snapshot.checksum(UnsafeRawBufferPointer(rebasing: $0[32...])) }
        withUnsafeBytes(of: sum.littleEndian) { b.replaceSubrange(24..<32, with: $0) }
        return b
    }

    /// Decodes, and when that succeeds, classifies with the result: refused or working,
    /// never a crash. Whether it loaded.
    static func loadOrRefuse(_ bytes: [UInt8]) -> Bool {
        guard let lists = try? Snapshot.decode(bytes, path: "mutated.snapshot") else { return false }
        for t in ["bet.example", "a.wild.example", "http://example.com/bad/x", "https://x.example/hurt+myself"] {
            _ = lists.classify(target: t)
        }
        return true
    }

    @Test(
        "no corrupt snapshot crashes: every byte changed three ways, and 2,000 random changes, checksums made to match"
    )
    func mutations() throws {
        let bytes = Snapshot.encode(try Self.source.load())
        var refused = 0
        for offset in bytes.indices {
            for delta: UInt8 in [0x01, 0x80, 0xFF] {
                var b = bytes
                b[offset] ^= delta
                if !Self.loadOrRefuse(offset >= 32 ? Self.resealed(b) : b) { refused += 1 }
            }
        }
        // A fixed seed: the same mutations every run.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(state >> 1)
        }
        for _ in 0..<2000 {
            var b = bytes
            for _ in 0..<(1 + next() % 4) { b[32 + next() % (b.count - 32)] = UInt8(truncatingIfNeeded: next()) }
            if !Self.loadOrRefuse(Self.resealed(b)) { refused += 1 }
        }
        #expect(refused > 0)
        // The payload length, set past any Int: refused as a length mismatch (it trapped).
        var huge = bytes
        huge[23] = 0xFF
        #expect(throws: SnapshotError.self) { try Snapshot.decode(huge, path: "t") }
    }

    @Test("a missing snapshot names the path")
    func missing() {
        #expect(throws: SnapshotError.self) { try Snapshot.load("/nonexistent/esafety.snapshot") }
        do { _ = try Snapshot.load("/nonexistent/esafety.snapshot") } catch {
            #expect(error.description.hasPrefix("/nonexistent/esafety.snapshot: cannot read"))
        }
    }
}
