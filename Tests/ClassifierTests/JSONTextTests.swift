import Foundation
import TestSupport
import Testing

@testable import Classifier
@testable import SystemSupport

@Suite("JSON text")
struct JSONTextTests {
    /// What `isPlain` must agree with: printable ASCII other than a quote and a backslash.
    static func plain(_ bytes: [UInt8]) -> Bool {
        bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    @Test("the word-at-a-time check finds every byte that needs escaping, at every position")
    func plainCheck() {
        // Every byte value at every offset of strings 1-24 bytes long (so in each lane of a
        // word and in the tail), among bytes that need no escaping; and lanes next to each
        // other holding the values either side of each boundary (a borrow between lanes).
        for length in 1...24 {
            for position in 0..<length {
                for value in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = UInt8(value)
                    let got = bytes.withUnsafeBytes { JSONText.isPlain($0) }
                    #expect(got == Self.plain(bytes), "length \(length), byte \(value) at \(position)")
                }
            }
        }
        let edges: [UInt8] = [0x00, 0x01, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7E, 0x7F, 0x80, 0xFF]
        for a in edges {
            for b in edges {
                for at in 0..<15 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "z"), count: 16)
                    bytes[at] = a
                    bytes[at + 1] = b
                    #expect(
                        bytes.withUnsafeBytes { JSONText.isPlain($0) } == Self.plain(bytes),
                        "\(a) then \(b) at \(at)"
                    )
                }
            }
        }
    }

    @Test("strings are escaped per RFC 8259 and parse back to what was written")
    func escaping() throws {
        let values = [
            "plain.example.com/path?q=1", "quote \" and backslash \\ here", "tab\tnew\nline\rreturn",
            "bell\u{7} escape\u{1B}[31m delete\u{7F} c1\u{85}", "é ü 中文 😀", "", "12345678", "1234567\"",
        ]
        for v in values {
            var j = JSONText()
            j.beginObject()
            j.field("v", .string(v))
            j.endObject()
            #expect(
                !j.bytes.contains { $0 < 0x20 || $0 == 0x7F },
                "raw control character written for \(v.debugDescription)"
            )
            let back = try JSONSerialization.jsonObject(with: Data(j.bytes)) as? [String: String]
            #expect(back?["v"] == v, "\(v.debugDescription) came back as \(String(describing: back?["v"]))")
        }
    }

    @Test("a value written in place takes its comma like any other")
    func valueWriting() {
        var j = JSONText()
        j.beginObject()
        j.field("a", .int(1))
        j.key("b")
        j.value { $0.append(contentsOf: "\"x\"".utf8) }
        j.key("c")
        j.beginArray()
        j.value { $0.append(contentsOf: "2".utf8) }
        j.value { $0.append(contentsOf: "3".utf8) }
        j.endArray()
        j.endObject()
        #expect(j.text == #"{"a":1,"b":"x","c":[2,3]}"#)
    }
}
