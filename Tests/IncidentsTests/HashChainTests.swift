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

    /// Two sealed files: the second continues the first (its first line names `prev`).
    static func rotated() -> (String, String) {
        let first = chainText(4)
        let last = String(first.split(separator: "\n").last!)
        let head = String(last.suffix(66).prefix(64))
        var previous = head
        var second = ""
        for i in 0..<3 {
            let prev = i == 0 ? ",\"prev\":\"\(head)\"" : ""
            let body = "{\"event\":\"hits\",\"id\":\"inc-\(i)\",\"note\":\"caf\u{e9} \u{1F600}\"\(prev)}"
            let (line, chain) = HashChain.seal(body, previous: previous)
            second += line + "\n"
            previous = chain
        }
        return (first, second)
    }

    @Test(
        "files on disk are checked a block at a time, with the text's verdict: intact, changed, cut, rotated, a gap",
        arguments: ["intact", "edited", "incomplete", "empty", "rotated", "gap", "truncated-event", "blank-line"]
    )
    func streamedAsText(kind: String) throws {
        let (first, second) = Self.rotated()
        var files: [(name: String, text: String)] = [("a.jsonl", first), ("b.jsonl", second)]
        switch kind {
        case "edited": files[1].text = files[1].text.replacingOccurrences(of: "inc-1", with: "inc-X")
        case "incomplete": files[1].text.removeLast()
        case "empty": files[0].text = ""
        case "gap": files[0].text = Self.chainText(3)
        case "truncated-event":
            let previous = String(second.split(separator: "\n").last!.suffix(66).prefix(64))
            let body = "{\"event\":\"truncated\",\"id\":\"\",\"last_chain\":\"abc\"}"
            files[1].text += HashChain.seal(body, previous: previous).line + "\n"
        case "blank-line": files[0].text += "\n"
        default: break
        }
        let dir = TempDir()
        for f in files { dir.write(f.name, f.text) }
        let expected = HashChain.check(files: files.map { (dir.path + "/" + $0.name, $0.text) }, heads: [])
        let streamed = try HashChain.check(paths: files.map { dir.path + "/" + $0.name })
        #expect(streamed.failure == expected.failure)
        #expect(streamed.checked == expected.checked)
        #expect(streamed.head?.chain == expected.head?.chain && streamed.head?.line == expected.head?.line)
        switch kind {
        case "intact", "rotated": #expect(expected.failure == nil && expected.checked == 7)
        case "empty": #expect(expected.failure == nil && expected.checked == 3, "b continues a file not given")
        default: #expect(expected.failure != nil, "\(kind) passed")
        }
    }

    @Test("a log's lines are split at newline bytes, as the Character split does where lines have no CR")
    func lineSlices() {
        for text in ["", "\n", "a", "a\n", "a\n\nb", "\u{e9}t\u{e9}\n\u{1F600}\nz\n\n", "x\u{301}\ny"] {
            #expect(text.lineSlices() == text.split(separator: "\n"), "\(text.debugDescription)")
            #expect(
                text.lineSlices(keepingEmpty: true) == text.split(separator: "\n", omittingEmptySubsequences: false),
                "\(text.debugDescription)"
            )
        }
        // A CR before the newline stays on its line (the Character split would not split there).
        #expect("a\r\nb".lineSlices() == ["a\r", "b"])
    }
}
