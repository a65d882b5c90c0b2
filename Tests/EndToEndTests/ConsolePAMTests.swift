import Foundation
import Glibc
import TestSupport
import Testing

@Suite("The console's log-in through PAM", .serialized)
struct ConsolePAMTests {
    /// docs/CONSOLE.md's block for /etc/pam.d/esafety-web, as written there.
    static func documentedService() throws -> String {
        let text = try String(contentsOfFile: repositoryRoot + "/docs/CONSOLE.md", encoding: .utf8)
        guard let start = text.range(of: "```\n# /etc/pam.d/esafety-web\n"),
            let end = text[start.upperBound...].range(of: "```")
        else { throw TestFailure(message: "docs/CONSOLE.md has no /etc/pam.d/esafety-web block") }
        return String(text[start.upperBound..<end.lowerBound])
    }

    @Test(
        "a --pam account logs in with its system password through the documented PAM service; a wrong one is refused, counted and recorded"
    )
    func pamLogin() throws {
        try #require(getuid() == 0, "adds a system account: run as root (CI does)")
        let user = "esafetypam\(getpid() % 100_000)"
        let password = "Correct-Horse-\(getpid())"
        let service = "esafety-web-test-\(getpid())"
        let pamFile = "/etc/pam.d/\(service)"
        _ = try Child.run("/usr/sbin/userdel", [user])
        var (code, out) = try Child.run("/usr/sbin/useradd", ["-M", "-N", "-s", "/usr/sbin/nologin", user])
        try #require(code == 0, "useradd: \(out)")
        defer {
            _ = try? Child.run("/usr/sbin/userdel", [user])
            unlink(pamFile)
        }
        (code, out) = try Child.run("/bin/sh", ["-c", "printf '%s:%s\\n' \"$0\" \"$1\" | chpasswd", user, password])
        try #require(code == 0, "chpasswd: \(out)")
        try Self.documentedService().write(toFile: pamFile, atomically: true, encoding: .utf8)

        let setup = try ConsoleTests.Setup(extra: ["--pam-service", service])
        defer { _ = setup.stop() }
        (code, out) = try Child.run(
            ConsoleTests.esafety,
            ["web", "user", "add", user, "--role", "dsl", "--pam", "--accounts", setup.accounts, "--owner", "root"]
        )
        #expect(code == 0 && out.contains("checked through PAM"), "\(out)")
        let line = try String(contentsOfFile: setup.accounts, encoding: .utf8).split(separator: "\n")
            .first { $0.hasPrefix(user + ":") }
        #expect(line == "\(user):dsl::pam", "no password kept for it: \(line ?? "none")")
        // The system password logs in; the session reaches the incident list.
        let c = try setup.client(user, password: password)
        #expect(try c.get("/incidents").status == 200)
        // A wrong one is refused as any wrong password is, and recorded.
        let other = HTTPClient(port: setup.port)
        let form = try other.get("/login")
        let r = try other.post(
            "/login",
            [("csrf", form.field("csrf") ?? ""), ("username", user), ("password", password + "x")]
        )
        #expect(r.status == 401 && r.body.contains("The name or the password is wrong."), "\(r.status)")
        let access = (try? String(contentsOfFile: setup.accessLog, encoding: .utf8)) ?? ""
        #expect(access.contains("\"account\":\"\(user)\"") && access.contains("login-failed"), "\(access)")
    }
}
