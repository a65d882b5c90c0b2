import Foundation
import TestSupport
import Testing

@testable import Classifier

/// End-to-end: the built `esafety` and `esafetyd` binaries.
@Suite("esafety and esafetyd binaries", .serialized)
struct CommandLineTests {
    static let lists = TempLists([
        "gambling/domains": "bet.example\n",
        "iwf/category.toml": "severity = \"critical\"\nlocked = true\n",
        "iwf/urls": "abuse.example/img\n",
        "allowlist/domains": "ok.bet.example\n",
    ])

    @Test("check --json prints one object per target with the documented keys")
    func checkJSON() throws {
        let r = try run(
            "esafety",
            [
                "check", "--lists", Self.lists.root, "--json", "www.bet.example", "http://abuse.example/img/1",
                "ok.bet.example", "clean.example",
            ]
        )
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 4)
        let objects = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        for o in objects {
            for key in ["target", "host", "categories", "allowed_by"] { #expect(o[key] != nil, "missing \(key)") }
        }
        let first = (objects[0]["categories"] as! [[String: Any]])[0]
        #expect(first["name"] as? String == "gambling")
        #expect(first["severity"] as? String == "medium")
        #expect(first["kind"] as? String == "domain")
        #expect((first["file"] as? String)?.hasSuffix("gambling/domains") == true)
        #expect(first["line"] as? Int == 1)
        #expect(first["rule"] as? String == "bet.example")
        #expect(objects[0]["allowed_by"] is NSNull)
        #expect(((objects[1]["categories"] as! [[String: Any]])[0])["name"] as? String == "iwf")
        #expect((objects[2]["categories"] as! [Any]).isEmpty)
        #expect((objects[2]["allowed_by"] as? [String: Any])?["rule"] as? String == "ok.bet.example")
        #expect((objects[3]["categories"] as! [Any]).isEmpty)
    }

    @Test("check - reads targets from standard input; human output explains each match")
    func checkStdin() throws {
        let r = try run(
            "esafety",
            ["check", "--lists", Self.lists.root, "-"],
            stdin: "a.bet.example\r\nnothing.example\n"
        )
        #expect(r.status == 0)
        #expect(r.stdout.contains("gambling [medium]  domain  \(Self.lists.root)/gambling/domains:1  bet.example"))
        #expect(r.stdout.contains("nothing.example\n  no match"))
    }

    @Test("control characters in targets never reach the terminal raw")
    func escapes() throws {
        let r = try run("esafety", ["check", "--lists", Self.lists.root, "evil\u{1B}[2J.example"])
        #expect(!r.stdout.contains("\u{1B}"))
        #expect(r.stdout.contains("\\x1B"))
    }

    @Test(
        "usage errors: one line naming the thing, exit status 2",
        arguments: [
            (["check", "--no-such-flag", "x"], "--no-such-flag"),
            (["check", "--lists", "/nonexistent/lists", "x"], "/nonexistent/lists"),
            (["check", "--snapshot", "/nonexistent/snap", "x"], "/nonexistent/snap"),
            (["lint", "--lists", "/nonexistent/lists"], "/nonexistent/lists"),
            (["compile", "--lists", "/nonexistent/lists", "--out", "/tmp/x"], "/nonexistent/lists"),
            (["frobnicate"], "frobnicate"),
        ]
    )
    func usageErrors(arguments: [String], names: String) throws {
        let r = try run("esafety", arguments)
        #expect(r.status == 2)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(r.stderr.contains(names))
    }

    @Test(
        "esafetyd's usage errors: one line naming the thing, exit status 2 (an unknown flag gave 64 and three lines)",
        arguments: [
            (["--no-such-flag"], "--no-such-flag"),
            (["--config", "/nonexistent/esafetyd.yaml"], "/nonexistent/esafetyd.yaml"),
            (["--check-config", "--lists", "/nonexistent/lists"], "/nonexistent/lists"),
            (["--workers", "0"], "--workers"),
        ]
    )
    func daemonUsageErrors(arguments: [String], names: String) throws {
        let r = try run("esafetyd", arguments)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains(names), "\(r.stderr)")
    }

    @Test("an unreadable list file is an error naming it, exit status 2")
    func unreadable() throws {
        // A dangling symbolic link cannot be read, even by root.
        let t = TempLists(["games/category.toml": "severity = \"info\"\n"])
        try FileManager.default.createSymbolicLink(
            atPath: t.root + "/games/domains",
            withDestinationPath: t.root + "/gone"
        )
        let r = try run("esafety", ["check", "--lists", t.root, "x.example"])
        #expect(r.status == 2)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains(t.root + "/games/domains: cannot read"))
    }

    @Test("replay's summary counts matches by their most severe category")
    func replaySummary() throws {
        let path = NSTemporaryDirectory() + "esafety-" + UUID().uuidString + ".log"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var text = ""
        for i in 0..<7 { text += "Nov 21 10:00:00 dnsmasq[812]: query[A] h\(i).bet.example from 10.0.0.1\n" }
        for i in 0..<3 {
            text +=
                "1795255200.0 5 10.0.0.2 TCP_MISS/200 900 GET http://abuse.example/img?\(i) - HIER_DIRECT/1.2.3.4 text/html\n"
        }
        text += "Nov 21 10:00:00 dnsmasq[812]: query[A] news.example from 10.0.0.1\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let r = try run("esafety", ["replay", "--lists", Self.lists.root, path])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = r.stdout.split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        }
        #expect(rows.contains(["gambling", "medium", "7"]), "\(r.stdout)")
        #expect(rows.contains(["iwf", "critical", "3"]), "\(r.stdout)")
    }

    @Test("compile writes a snapshot that check and esafetyd --check-config accept")
    func compileAndUse() throws {
        let path = NSTemporaryDirectory() + "esafety-" + UUID().uuidString + ".snapshot"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try run("esafety", ["compile", "--lists", Self.lists.root, "--out", path])
        #expect(c.status == 0, "\(c.stderr)")
        let r = try run("esafety", ["check", "--snapshot", path, "--json", "bet.example"])
        #expect(r.stdout.contains("\"name\":\"gambling\""))
        let d = try run("esafetyd", ["--check-config", "--snapshot", path])
        #expect(d.status == 0, "\(d.stderr)")
        // A corrupt snapshot is refused.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 3] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        let bad = try run("esafety", ["check", "--snapshot", path, "bet.example"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("checksum"))
        let badd = try run("esafetyd", ["--check-config", "--snapshot", path])
        #expect(badd.status != 0)
        #expect(badd.stderr.contains("checksum"))
        // One byte of the payload length (offset 23) changed: refused by every command that
        // reads it, not a crash ("Not enough bits to represent the passed value").
        bytes[bytes.count - 3] ^= 0xFF
        bytes[23] = 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        for (program, args) in [
            ("esafety", ["check", "--snapshot", path, "bet.example"]),
            ("esafety", ["compile", "--snapshot", path, "--out", path + ".copy"]),
            ("esafetyd", ["--check-config", "--snapshot", path]),
        ] {
            let r = try run(program, args)
            #expect(r.status != 0 && r.status < 128, "\(program) \(args): \(r.status)")
            #expect(r.stderr.contains("header says"), "\(program) \(args): \(r.stderr)")
        }
    }

    @Test("a running esafetyd whose snapshot is replaced by a corrupt one refuses the reload and keeps its lists")
    func corruptSnapshotReload() throws {
        let dir = TempDir()
        let path = dir.path + "/lists.snapshot"
        #expect(try run("esafety", ["compile", "--lists", Self.lists.root, "--out", path]).status == 0)
        let daemon = try DaemonProcess(lists: [], extra: ["--snapshot", path], dir: dir)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[23] = 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        daemon.signal(SIGHUP)
        #expect(poll { ((try? daemon.status())?["last_reload"] as? [String: Any])?["ok"] as? Bool == false })
        let last = try daemon.status()["last_reload"] as? [String: Any]
        #expect((last?["message"] as? String)?.contains("header says") == true, "\(String(describing: last))")
        #expect(try daemon.status()["generation"] as? Int == 1)
        #expect(daemon.stop().0 == 0)
    }

    @Test("lint exits 1 on errors and prints file:line")
    func lintErrors() throws {
        let t = TempLists(["games/category.toml": "severity = \"loud\"\n", "games/domains": "x.example\n"])
        let r = try run("esafety", ["lint", "--lists", t.root])
        #expect(r.status == 1)
        #expect(r.stdout.contains("games/category.toml:1: error: unknown severity"))
        let ok = try run("esafety", ["lint", "--lists", Self.lists.root])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("0 error(s)"))
    }

    @Test("esafetyd --check-config validates the bundled lists and refuses broken ones")
    func daemonCheckConfig() throws {
        let good = try run("esafetyd", ["--check-config", "--lists", repositoryRoot + "/Blocklists"])
        #expect(good.status == 0, "\(good.stderr)")
        let t = TempLists(["games/category.toml": "locked = maybe\n", "games/domains": "x.example\n"])
        let bad = try run("esafetyd", ["--check-config", "--lists", t.root])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("games/category.toml:1"))
    }

    /// Runs a built tool as a user other than root (root reads a folder of mode 000).
    static func asUnprivileged(_ program: String, _ args: [String]) throws -> RunResult {
        if getuid() != 0 { return try run(program, args) }
        let runuser = try requireExecutable("/usr/sbin/runuser", package: "util-linux")
        return try run(runuser, ["-u", "nobody", "--", buildDirectory + "/" + program] + args)
    }

    @Test("a category folder that cannot be read is an error in lint, check and --check-config, never a silent gap")
    func unreadableCategoryFolder() throws {
        let lists = TempLists([
            "gambling/category.toml": "severity = \"medium\"\ncanary = \"gambling.canary.esafety.invalid\"\n",
            "gambling/domains": "gambling.canary.esafety.invalid\nbet.example\n",
            "games/domains": "x.example\n",
        ])
        #expect(chmod(lists.root, 0o755) == 0)
        #expect(chmod(lists.root + "/games", 0o755) == 0)
        #expect(chmod(lists.root + "/gambling", 0o000) == 0)
        defer { chmod(lists.root + "/gambling", 0o755) }
        for (program, args) in [
            ("esafety", ["lint", "--lists", lists.root]),
            ("esafety", ["check", "--lists", lists.root, "bet.example"]),
            ("esafetyd", ["--check-config", "--lists", lists.root]),
        ] {
            let r = try Self.asUnprivileged(program, args)
            #expect(r.status != 0, "\(program) \(args): \(r.stdout)")
            let said = r.stderr + r.stdout
            #expect(said.contains(lists.root + "/gambling"), "\(said)")
            #expect(said.contains("cannot read category folder: Permission denied"), "\(said)")
        }
    }

    @Test("a normal user's esafetyd starts on the defaults: its state folder and parents are made, mode 0750")
    func nonRootDefaults() throws {
        guard getuid() == 0 else { return }  // needs another account to run as
        // setpriv execs in place (the pid is esafetyd's), so SIGTERM reaches it.
        let setpriv = try requireExecutable("/usr/bin/setpriv", package: "util-linux")
        let home = TempDir()
        #expect(chmod(home.path, 0o777) == 0)
        let daemon = try Child(
            setpriv,
            [
                "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/env", "-i", "HOME=\(home.path)",
                "XDG_RUNTIME_DIR=\(home.path)/run",
                buildDirectory + "/esafetyd", "--lists", repositoryRoot + "/Blocklists",
            ],
            capture: true
        )
        let state = home.path + "/.local/state/esafety"
        let control = home.path + "/run/esafety/control.sock"
        let started = poll(timeout: 20) { FileManager.default.fileExists(atPath: control) }
        kill(daemon.pid, SIGTERM)
        let (_, said) = daemon.wait()
        #expect(started, "\(said)")
        #expect(FileManager.default.fileExists(atPath: state + "/incidents.jsonl"), "\(said)")
        var st = stat()
        #expect(stat(state, &st) == 0 && st.st_mode & 0o777 == 0o750)
    }
}
