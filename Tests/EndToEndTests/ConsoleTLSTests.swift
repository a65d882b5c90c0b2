import Foundation
import Glibc
import TestSupport
import Testing

@Suite("The console serving HTTPS itself")
struct ConsoleTLSTests {
    @Test(
        "--tls-certificate and --tls-key: HTTPS with a local CA's certificate, Secure cookies and HSTS; plain HTTP and another CA fail; a key others may read is refused"
    )
    func https() throws {
        let dir = TempDir()
        let d = dir.path
        let curl = try requireExecutable("/usr/bin/curl", package: "curl")
        try makeLocalCertificates(in: d, name: "web", subjectAltName: "IP:127.0.0.1")
        let (added, said) = try ConsoleTests.Setup.user(["add", "dsl1", "--role", "dsl"], accounts: d + "/accounts")
        #expect(added == 0, "\(said)")
        dir.write("incidents.jsonl", "")
        let args = [
            "web", "--log", d + "/incidents.jsonl", "--accounts", d + "/accounts", "--listen", "127.0.0.1:0",
            "--control-socket", d + "/none.sock", "--tls-certificate", d + "/web.pem", "--tls-key", d + "/web.key",
        ]
        // A key others may read: refused before anything listens.
        chmod(d + "/web.key", 0o644)
        let (refused, why) = try Child.run(ConsoleTests.esafety, args)
        #expect(refused == 2 && why.contains("may be read by others"), "\(why)")
        chmod(d + "/web.key", 0o600)
        let (web, p) = try ConsoleTests.startWeb(args, errors: d + "/web.err", scheme: "https")
        defer { web.stop() }
        // The local CA: the login page, its cookie Secure, HSTS sent.
        var (code, out) = try Child.run(curl, ["-sS", "-i", "--cacert", d + "/ca.pem", "https://127.0.0.1:\(p)/login"])
        #expect(code == 0 && out.hasPrefix("HTTP/1.1 200"), "\(out.prefix(300))")
        let head = out.lowercased()
        #expect(head.contains("strict-transport-security: max-age="), "\(out.prefix(600))")
        #expect(head.contains("set-cookie:") && head.contains("; secure"), "\(out.prefix(600))")
        #expect(out.contains("name=\"password\""))
        // Another CA's trust: refused by the client (curl 60: the peer's certificate is not trusted).
        (code, out) = try Child.run(curl, ["-sS", "--cacert", d + "/other-ca.pem", "https://127.0.0.1:\(p)/login"])
        #expect(code == 60, "\(out)")
        // Plain HTTP to the HTTPS port: no page.
        (code, out) = try Child.run(curl, ["-sS", "-m", "5", "http://127.0.0.1:\(p)/login"])
        #expect(code != 0 && !out.contains("name=\"password\""), "\(out)")
    }
}
