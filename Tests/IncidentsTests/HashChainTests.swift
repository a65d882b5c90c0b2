import Foundation
import Logging
import Pipeline
import Synchronization
import SystemSupport
import TestSupport
import Testing

@testable import Classifier
@testable import Incidents
@testable import LogFormats

@Suite("SHA-256 and the hash chain")
struct HashChainTests {
    @Test(
        "SHA-256 test vectors",
        arguments: [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
            ),
        ]
    )
    func vectors(input: String, digest: String) {
        #expect(SHA256.hex(Array(input.utf8)) == digest)
    }

    static func chainText(_ n: Int) -> String {
        var previous = HashChain.genesis
        var text = ""
        for i in 0..<n {
            let (line, chain) = HashChain.seal("{\"event\":\"incident\",\"id\":\"inc-\(i)\"}", previous: previous)
            text += line + "\n"
            previous = chain
        }
        return text
    }

    @Test("an intact chain verifies")
    func intact() {
        let (failure, checked) = HashChain.verify(files: [("log", Self.chainText(5))])
        #expect(failure == nil)
        #expect(checked == 5)
    }

    @Test(
        "an edited, a removed, an inserted and a truncated line are named",
        arguments: [
            ("edited", 3), ("removed", 3), ("inserted", 3), ("truncated", 5),
        ]
    )
    func tampering(kind: String, line: Int) {
        var rows = Self.chainText(5).split(separator: "\n").map(String.init)
        switch kind {
        case "edited": rows[2] = rows[2].replacingOccurrences(of: "inc-2", with: "inc-X")
        case "removed": rows.remove(at: 2)
        case "inserted": rows.insert(rows[1], at: 2)
        default: rows[4] = String(rows[4].prefix(30))
        }
        var text = rows.joined(separator: "\n") + "\n"
        if kind == "truncated" { text.removeLast() }
        let (failure, _) = HashChain.verify(files: [("log", text)])
        #expect(failure?.line == line, "\(failure?.description ?? "no failure")")
    }

    @Test("lines removed from the end verify on their own; a head recorded earlier shows them gone")
    func recordedHead() throws {
        let text = Self.chainText(5)
        let rows = text.split(separator: "\n")
        let intact = HashChain.check(files: [("log", text)])
        #expect(intact.failure == nil)
        let head = try #require(intact.head)
        #expect(head.line == 5 && head.file == "log" && rows[4].hasSuffix("\"chain\":\"\(head.chain)\"}"))
        let third = try #require(HashChain.split(rows[2])).chain
        // The last two lines removed: the chain alone cannot tell.
        let cut = rows.prefix(3).joined(separator: "\n") + "\n"
        #expect(HashChain.check(files: [("log", cut)]).failure == nil)
        // With the head recorded before the cut (12 hex digits, in capitals, are enough), it can.
        let missing = HashChain.check(files: [("log", cut)], heads: [String(head.chain.prefix(12)).uppercased()])
        #expect(missing.failure?.line == 4)
        #expect(missing.failure?.message.contains("removed") == true, "\(missing.failure?.description ?? "no failure")")
        #expect(HashChain.check(files: [("log", text)], heads: [String(head.chain.prefix(12)), third]).failure == nil)
        #expect(HashChain.check(files: [("log", cut)], heads: [third]).failure == nil)
    }
}
