import SystemSupport
import TestSupport
import Testing

@testable import Classifier

@Suite("Host normalisation")
struct HostTests {
    @Test(
        "hosts as logs write them",
        arguments: [
            ("example.com", "example.com", HostKind.name),
            ("WWW.Example.COM", "www.example.com", .name),
            ("example.com.", "example.com", .name),
            ("example.com..", "example.com", .name),
            ("example.com:443", "example.com", .name),
            ("Example.com.:8080", "example.com", .name),
            ("10.0.0.1", "10.0.0.1", .ipv4),
            ("10.0.0.1:3128", "10.0.0.1", .ipv4),
            ("[2001:DB8::1]:443", "2001:db8::1", .ipv6),
            ("2001:db8::1", "2001:db8::1", .ipv6),
            ("[::1]", "::1", .ipv6),
            (" example.com\t", "example.com", .name),
            ("_dmarc.example.com", "_dmarc.example.com", .name),
            ("ÖBB.at", "xn--bb-eka.at", .name),
            ("bücher.example", "xn--bcher-kva.example", .name),
            ("例え.テスト", "xn--r8jz45g.xn--zckzah", .name),
            ("münchen。de", "xn--mnchen-3ya.de", .name),
        ]
    )
    func normalises(input: String, expected: String, kind: HostKind) {
        let result = Host.normalize(input)
        #expect(result?.0 == expected)
        #expect(result?.1 == kind)
    }

    @Test("not hosts", arguments: ["", "   ", "exa mple.com", "a..b", "host:port", "exa/mple", "[::1", "a\u{7}b.com"])
    func rejects(input: String) {
        #expect(Host.normalize(input) == nil)
    }

    @Test(
        "URL splitting",
        arguments: [
            ("https://user:pw@Example.com:8443/a/b?q=1#frag", "Example.com:8443", "/a/b?q=1", true),
            ("http://example.com", "example.com", "", true),
            ("example.com/path", "example.com", "/path", false),
            ("example.com:443", "example.com:443", "", false),
            ("ftp://files.example.org/pub/", "files.example.org", "/pub/", true),
            ("http://example.com?x=1", "example.com", "?x=1", true),
        ]
    )
    func splits(url: String, authority: String, path: String, scheme: Bool) {
        var u = url
        u.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            let parts = Host.splitURL(raw)
            #expect(String(decoding: raw[parts.authority], as: UTF8.self) == authority)
            #expect(String(decoding: raw[parts.path], as: UTF8.self) == path)
            #expect(parts.hasScheme == scheme)
        }
    }

    @Test(
        "punycode matches RFC 3492 samples",
        arguments: [
            ("ü", "tda"), ("bücher", "bcher-kva"), ("münchen", "mnchen-3ya"),
            ("他们为什么不说中文", "ihqwcrb4cv8a8dqg056pqjye"),
        ]
    )
    func punycode(label: String, encoded: String) {
        #expect(Punycode.encode(label.unicodeScalars.map(\.value)) == encoded)
    }

    @Test("control characters are escaped for terminals")
    func terminalEscape() {
        #expect(Terminal.escape("ok.example") == "ok.example")
        #expect(Terminal.escape("a\u{1B}[2Jb") == "a\\x1B[2Jb")
        #expect(Terminal.escape("x\ny\u{7F}") == "x\\x0Ay\\x7F")
        #expect(Terminal.escape("rtl\u{202E}txt") == "rtl\\u{202E}txt")
    }
}
