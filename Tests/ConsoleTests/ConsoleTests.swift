import Foundation
import TestSupport
import Testing

@testable import Console

@Suite("The console's parts")
struct ConsolePartsTests {
    @Test("HTML escaping: the five special characters, control characters and bidi overrides made visible")
    func escaping() {
        #expect(HTML.escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        #expect(HTML.escape("a\u{202E}b\u{1B}[31m") == "a\\u{202E}b\\x1B[31m")
        #expect(HTML.escape("plain text · ünïcode") == "plain text · ünïcode")
        #expect(HTML.escape("two\nlines") == "two\\x0Alines", "a line break inside a value is shown")
        #expect(HTML.escapeLines("a<b\nc\u{7}") == "a&lt;b\nc\\x07", "status text keeps its lines")
    }

    @Test("form bodies: + and %XX decoded, a malformed escape kept, the first of a repeated name wins")
    func forms() {
        let f = HTML.form(Array("a=1+2&b=%3Cx%3E&c=%zz&a=3&d=&e&u=%E2%80%AE".utf8))
        #expect(f["a"] == "1 2")
        #expect(f["b"] == "<x>")
        #expect(f["c"] == "%zz")
        #expect(f["d"] == "" && f["e"] == "")
        #expect(f["u"] == "\u{202E}")
        #expect(HTML.form(Array("x=%4".utf8))["x"] == "%4")
        #expect(HTML.query("a b/é") == "a%20b%2F%C3%A9")
    }

    @Test("sessions end after the idle and the absolute time-out; tokens are 256 bits and distinct")
    func sessionTimeouts() {
        var limits = Sessions.Limits()
        (limits.idle, limits.absolute) = (60, 300)
        let sessions = Sessions(limits: limits)
        let account = Accounts.Account(name: "dsl1", role: .dsl, sites: [], hash: "$2b$")
        let s = sessions.start(account, now: 1000)
        #expect(s.token.count == 43 && s.csrf.count == 43 && s.token != s.csrf)
        #expect(sessions.session(s.token, now: 1050) != nil)
        #expect(sessions.session(s.token, now: 1100) != nil, "use renews the idle time-out")
        #expect(sessions.session(s.token, now: 1161) == nil, "idle for over a minute")
        let t = sessions.start(account, now: 2000)
        for now in stride(from: 2050.0, through: 2290, by: 50) { #expect(sessions.session(t.token, now: now) != nil) }
        #expect(sessions.session(t.token, now: 2301) == nil, "absolute time-out, however busy")
        #expect(Set((0..<100).map { _ in Sessions.token() }).count == 100)
    }

    @Test("failures lock a name out for the lock-out time; another name is not affected; success clears")
    func lockout() {
        var limits = Sessions.Limits()
        (limits.failuresPerName, limits.failuresPerAddress, limits.window, limits.lockout) = (3, 10, 60, 120)
        let sessions = Sessions(limits: limits)
        #expect(sessions.failed(name: "a", address: "1", now: 0).isEmpty)
        sessions.succeeded(name: "a")
        #expect(sessions.failed(name: "a", address: "1", now: 1).isEmpty)
        #expect(sessions.failed(name: "a", address: "1", now: 2).isEmpty, "the success cleared the first")
        #expect(sessions.failed(name: "a", address: "1", now: 3) == ["name:a"])
        #expect(sessions.lockedOut(name: "a", address: "2", now: 10) != nil)
        #expect(sessions.lockedOut(name: "b", address: "2", now: 10) == nil)
        #expect(sessions.lockedOut(name: "a", address: "2", now: 124) == nil, "the lock-out ends")
        // One address trying many names is locked out by address (10 here), whatever the name.
        for i in 0..<9 { #expect(!sessions.failed(name: "n\(i)", address: "9", now: 500).contains("addr:9")) }
        #expect(sessions.failed(name: "n9", address: "9", now: 500).contains("addr:9"))
        #expect(sessions.lockedOut(name: "fresh", address: "9", now: 501) != nil)
        // Failures spread beyond the window do not add up.
        #expect(sessions.failed(name: "c", address: "3", now: 0).isEmpty)
        #expect(sessions.failed(name: "c", address: "3", now: 100).isEmpty)
        #expect(sessions.failed(name: "c", address: "3", now: 200).isEmpty)
    }

    @Test("the accounts file: 0600, one line per account, a bad line named by file:line, names checked")
    func accountsFile() throws {
        let dir = TempDir()
        let file = Accounts(path: dir.path + "/accounts")
        #expect(try file.all().isEmpty)
        let hash = Accounts.hash("a long password", cost: 4)
        try file.put(Accounts.Account(name: "dsl1", role: .dsl, sites: ["north"], hash: hash))
        try file.put(Accounts.Account(name: "gov", role: .governor, sites: [], hash: hash))
        var st = stat()
        stat(dir.path + "/accounts", &st)
        #expect(st.st_mode & 0o777 == 0o600)
        let found = try #require(try file.find("dsl1"))
        #expect(found.sites == ["north"] && found.role == .dsl)
        #expect(Accounts.verify("a long password", found))
        #expect(!Accounts.verify("a long passwore", found))
        #expect(!Accounts.verify("a long password", nil))
        #expect(try file.remove("gov") && !(try file.remove("gov")))
        dir.write("bad", "dsl1:dsl::$2b$x\nroot:admin::$2b$y\n")
        #expect(throws: Accounts.Failure.self) { try Accounts(path: dir.path + "/bad").all() }
        do { _ = try Accounts(path: dir.path + "/bad").all() } catch { #expect(error.description.contains("/bad:2")) }
        #expect(!Accounts.validName("a:b") && !Accounts.validName("") && !Accounts.validName("x y"))
        #expect(Accounts.validName("j.smith@school.example"))
    }

    @Test("a trust account's scope: the narrowing the store applies and the sites named, chosen or not; sites checked")
    func scope() throws {
        #expect(Scope(sites: ["north", "south"]).narrowing == "north,south")
        #expect(Scope(sites: ["north", "south"]).named == ["north", "south"])
        #expect(Scope(sites: ["north", "south"], chosen: "south").narrowing == "south")
        #expect(Scope(sites: ["north", "south"], chosen: "south").named == ["south"])
        #expect(Scope(sites: ["*"]).narrowing == "*" && Scope(sites: ["*"]).named == nil)
        #expect(Scope(sites: ["north", "*"]).narrowing == "*", "every site, whatever else is listed")
        #expect(Scope(sites: ["*"], chosen: "east").narrowing == "east")
        #expect(Accounts.validSite("*") && Accounts.validSite("st-mary.primary_2"))
        #expect(!Accounts.validSite("North") && !Accounts.validSite("a,b") && !Accounts.validSite(""))
        let dir = TempDir()
        dir.write("accounts", "anna:dsl:north,a b:$2b$x\n")
        #expect(throws: Accounts.Failure.self, "a site that is not a site name") {
            try Accounts(path: dir.path + "/accounts").all()
        }
        // The switcher offers the session's choices only.
        let sessions = Sessions()
        let hash = Accounts.hash("a long password", cost: 4)
        let s = sessions.start(
            Accounts.Account(name: "tom", role: .dsl, sites: ["*"], hash: hash),
            choices: ["north", "south"]
        )
        #expect(sessions.choose(s.token, site: "south") && sessions.live(s.token)?.site == "south")
        #expect(!sessions.choose(s.token, site: "east") && sessions.live(s.token)?.site == "south")
        #expect(sessions.choose(s.token, site: nil) && sessions.live(s.token)?.site == nil)
        #expect(!sessions.choose("not-a-token", site: "north"))
    }
}
