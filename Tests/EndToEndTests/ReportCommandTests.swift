import Foundation
import LogFormats
import SystemSupport
import TestSupport
import Testing

@testable import Daemon
@testable import Incidents

/// The daemon's side of alerts and the report: a real esafetyd with an alert command and
/// its counters file, then `esafety status` and `esafety report` on what it left behind.
@Suite("Alerts, counters and the report through the binaries", .serialized)
struct ReportCommandTests {
    @Test("a critical incident alerts at once; status and the counters file show it; the report reads only the files")
    func endToEnd() throws {
        let dir = TempDir()
        let alerts = dir.path + "/alerts.jsonl"
        dir.write(
            "esafetyd.yaml",
            """
            counters_interval: 1
            alerts:
              severities: [critical]
              commands:
                - name: record
                  command: ["/bin/sh", "-c", "cat >> \(alerts)"]
            """
        )
        let daemon = try DaemonProcess(
            lists: [IngestTests.makeLists(dir)],
            extra: ["--config", dir.path + "/esafetyd.yaml"],
            dir: dir
        )
        let fd = try connectUnix(daemon.socket)
        let now = Int(Date().timeIntervalSince1970)
        writeAll(
            fd,
            Array(
                """
                \(now).000 5 10.0.0.9 TCP_MISS/200 900 GET http://iwf.canary.esafety.invalid/c p1 HIER_DIRECT/1.2.3.4 text/html
                \(now).000 5 10.0.0.9 TCP_MISS/200 900 GET http://bet.example/ p1 HIER_DIRECT/1.2.3.4 text/html

                """.utf8
            )
        )
        close(fd)
        for _ in 0..<300 {
            guard ((try? String(contentsOfFile: alerts, encoding: .utf8)) ?? "").isEmpty else { break }
            usleep(20_000)
        }
        let alerted = try String(contentsOfFile: alerts, encoding: .utf8).split(separator: "\n")
        #expect(alerted.count == 1, "only the critical incident alerts")
        #expect(alerted.first?.contains("\"category\":\"iwf\"") == true)
        let status = try daemon.status()
        #expect((status["alerts"] as? [String: Any])?["sent"] as? Int == 1)
        let (code, text) = try Child.run(buildDirectory + "/esafety", ["status", "--control-socket", daemon.control])
        #expect(code == 0)
        #expect(text.contains("alerts: 1 sent, 0 FAILED"), "\(text)")
        #expect(text.contains("incident log: writing"), "\(text)")
        // A whole counters interval (1 s) with the lines in it, before the stop.
        #expect(
            poll {
                ((try? String(contentsOfFile: dir.path + "/state/counters.jsonl", encoding: .utf8)) ?? "")
                    .contains("\"received\":2")
            }
        )
        #expect(daemon.stop().0 == 0)

        let counters = dir.path + "/state/counters.jsonl"
        let rows = try String(contentsOfFile: counters, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(rows.first?.contains("\"event\":\"start\"") == true)
        #expect(rows.last?.contains("\"event\":\"stop\"") == true)
        #expect(rows.contains { $0.contains("\"event\":\"alert\"") && $0.contains("\"ok\":true") })
        #expect(rows.filter { $0.contains("\"source\"") }.compactMap { json($0)["received"] as? Int }.reduce(0, +) == 2)

        // The report needs only the two files: copy them elsewhere and run it there.
        let copy = TempDir()
        try FileManager.default.copyItem(atPath: dir.path + "/incidents.jsonl", toPath: copy.path + "/incidents.jsonl")
        try FileManager.default.copyItem(atPath: counters, toPath: copy.path + "/counters.jsonl")
        let day = String(Clock.rfc3339(Double(now)).prefix(10))
        let args = [
            "report", "--log", copy.path + "/incidents.jsonl", "--counters", copy.path + "/counters.jsonl", "--date",
            day,
        ]
        let report = try Child(
            buildDirectory + "/esafety",
            args + ["--format", "json"],
            capture: true,
            environment: ["TZ": "UTC"]
        ).wait()
        #expect(report.0 == 0, "\(report.1)")
        let r = json(report.1)
        #expect(r["new_incidents"] as? Int == 2)
        #expect(r["open"] as? [Any] != nil)
        #expect((r["monitoring"] as? [String: Any])?["lines_received"] as? Int == 2)
        #expect((r["monitoring"] as? [String: Any])?["alerts_sent"] as? Int == 1)
        // The report carries the chain's head out of the log, as esafety verify gives it.
        let integrity = (r["monitoring"] as? [String: Any])?["incident_log"] as? [String: Any]
        let verified = try Child.run(buildDirectory + "/esafety", ["verify", copy.path + "/incidents.jsonl"])
        let head = try #require(integrity?["chain_head"] as? String)
        #expect(verified.0 == 0 && verified.1.contains("head: \(head) "), "\(verified.1)")
        let logLines = try String(contentsOfFile: copy.path + "/incidents.jsonl", encoding: .utf8).split(
            separator: "\n"
        ).count
        #expect(
            integrity?["verified_lines"] as? Int == logLines && integrity?["broken"] is NSNull,
            "\(integrity ?? [:])"
        )
        let out = copy.path + "/report.html"
        let html = try Child(
            buildDirectory + "/esafety",
            args + ["--format", "html", "--out", out, "--anonymise"],
            capture: true,
            environment: ["TZ": "UTC"]
        ).wait()
        #expect(html.0 == 0, "\(html.1)")
        let attributes = try FileManager.default.attributesOfItem(atPath: out)
        #expect((attributes[.posixPermissions] as? Int) == 0o640, "a report about children is not world-readable")
        #expect(try String(contentsOfFile: out, encoding: .utf8).contains("<svg"))
        // A changed line: the text report (the one that is mailed) says the chain is broken, and where.
        let logCopy = copy.path + "/incidents.jsonl"
        try String(contentsOfFile: logCopy, encoding: .utf8).replacingOccurrences(of: "\"p1\"", with: "\"p2\"")
            .write(toFile: logCopy, atomically: false, encoding: .utf8)
        let tampered = try Child(
            buildDirectory + "/esafety",
            args + ["--format", "text"],
            capture: true,
            environment: ["TZ": "UTC"]
        ).wait()
        #expect(tampered.0 == 0)
        #expect(tampered.1.contains("INCIDENT LOG CHAIN BROKEN: \(logCopy):1: chain mismatch"), "\(tampered.1)")
        let bad = try Child.run(
            buildDirectory + "/esafety",
            ["report", "--date", "2026-13-40", "--log", copy.path + "/incidents.jsonl"]
        )
        #expect(bad.0 == 2)
        #expect(bad.1.contains("--date must be YYYY-MM-DD"))
    }
}

@Suite("The HTML report in a real browser")
struct ReportScreenshotTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(
        "headless Chromium renders the report's charts and severity colours, on a desktop and a phone width",
        arguments: [1024, 390]
    )
    func screenshot(width: Int) throws {
        guard let browser = Self.chromium else {
            throw DaemonProcess.Failure(message: "Chromium is missing (apt-get install chromium); .ci/run installs it")
        }
        let dir = TempDir()
        let fixtures = repositoryRoot + "/Tests/ReportsTests/Fixtures/report"
        let html = dir.path + "/report.html"
        let (code, out) = try Child.run(
            buildDirectory + "/esafety",
            [
                "report", "--log", fixtures + "/incidents.jsonl",
                "--counters", fixtures + "/counters.jsonl", "--since", "2026-11-20T00:00:00Z", "--until",
                "2026-11-21T00:00:00Z",
                "--format", "html", "--out", html,
            ]
        )
        #expect(code == 0, "\(out)")
        let png = dir.path + "/shot.png"
        let shot = try Child(
            browser,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--window-size=\(width),2400", "--screenshot=\(png)", "file://\(html)",
            ],
            capture: true,
            environment: ["HOME": dir.path]
        ).wait()
        #expect(shot.0 == 0, "\(shot.1)")
        // critical, high, medium, low (severity colours in the chart and badges), the hour bars, white.
        let colours = ["b00020", "e65100", "f9a825", "0277bd", "90a4ae", "ffffff"]
        let (pc, text) = try Child.run(
            "/usr/bin/python3",
            [repositoryRoot + "/Tests/EndToEndTests/Fixtures/png_colors.py", png] + colours
        )
        #expect(pc == 0, "\(text)")
        let r = json(text)
        #expect(r["width"] as? Int == width)
        let counts = r["counts"] as? [String: Int] ?? [:]
        for c in colours.dropLast() { #expect((counts[c] ?? 0) > 200, "colour #\(c) barely drawn: \(counts)") }
        let white = Double(counts["ffffff"] ?? 0) / Double(width * 2400)
        #expect(white > 0.4 && white < 0.99, "page mostly background, but not blank: \(white)")
        #expect((r["distinct"] as? Int ?? 0) > 50, "text and charts, not a flat image")
    }
}

@Suite("The HTML report's layout in a real browser")
struct ReportLayoutTests {
    /// The report for the fixtures, laid out by headless Chromium in a frame `width` px wide:
    /// what the frame's script measured (Tests/EndToEndTests/Fixtures/layout-frame.html).
    func layout(width: Int) throws -> [String: Any] {
        guard let browser = ReportScreenshotTests.chromium else {
            throw DaemonProcess.Failure(message: "Chromium is missing (apt-get install chromium); .ci/run installs it")
        }
        let dir = TempDir()
        let fixtures = repositoryRoot + "/Tests/ReportsTests/Fixtures/report"
        let (code, out) = try Child.run(
            buildDirectory + "/esafety",
            [
                "report", "--log", fixtures + "/incidents.jsonl", "--counters", fixtures + "/counters.jsonl",
                "--since", "2026-11-20T00:00:00Z", "--until", "2026-11-21T00:00:00Z", "--format", "html",
                "--out", dir.path + "/report.html",
            ]
        )
        #expect(code == 0, "\(out)")
        try FileManager.default.copyItem(
            atPath: repositoryRoot + "/Tests/EndToEndTests/Fixtures/layout-frame.html",
            toPath: dir.path + "/frame.html"
        )
        let dom = try Child(
            browser,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--allow-file-access-from-files",
                "--window-size=1200,4000", "--virtual-time-budget=10000", "--dump-dom",
                "file://\(dir.path)/frame.html?\(width)",
            ],
            capture: true,
            environment: ["HOME": dir.path]
        ).wait()
        #expect(dom.0 == 0)
        let title = try #require(
            dom.1.components(separatedBy: "<title>").dropFirst().first?.components(separatedBy: "</title>").first,
            "no title in \(dom.1.prefix(300))"
        )
        let text = title.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
        return json(text)
    }

    @Test(
        "on a phone (390 px) every incident's cells are on the screen, each with its column's name, and nothing is wider than the screen"
    )
    func phone() throws {
        let r = try layout(width: 390)
        let width = try #require(r["width"] as? Int)
        #expect(width <= 390)
        #expect((r["cells"] as? Int ?? 0) > 100, "the incident tables are laid out: \(r)")
        #expect((r["cut"] as? [String]) == [], "cells past the right edge: \(r)")
        #expect((r["wide"] as? [String]) == [], "elements past the right edge: \(r)")
        #expect((r["scrollWidth"] as? Int ?? 0) <= width, "the page scrolls sideways: \(r)")
        let labels = (r["labels"] as? [String] ?? []).map { $0.replacingOccurrences(of: "\"", with: "") }
        for column in ["Time", "Severity", "Category", "Person", "Site", "Search", "Action", "State", "Due"] {
            #expect(labels.contains(column), "\(column) is named beside its value: \(labels)")
        }
    }

    @Test("on a desktop (1024 px) the tables are tables: no column names repeated in the cells")
    func desktop() throws {
        let r = try layout(width: 1024)
        #expect((r["cut"] as? [String]) == [], "\(r)")
        #expect((r["labels"] as? [String]) == [], "\(r)")
    }
}

@Suite("The documented alert command")
struct AlertMailScriptTests {
    @Test(
        "esafety-alert-mail writes a plain message to sendmail, control characters neutralised, and fails so esafetyd retries"
    )
    func mail() throws {
        let dir = TempDir()
        let out = dir.path + "/mail.txt"
        dir.write("sendmail", "#!/bin/sh\ncat > \(out)\n")
        chmod(dir.path + "/sendmail", 0o755)
        let script = repositoryRoot + "/scripts/esafety-alert-mail"
        let record =
            #"{"id":"inc-1","severity":"critical","category":"self-harm","user":"p1\u001b[31m\nBcc: x@evil","host":"x.example","due":"2026-11-21T11:00:00.000Z","route":["DSL"]}"#
        dir.write("record.json", record)
        let ok = try Child(
            "/bin/sh",
            ["-c", "\(script) dsl@school.example < \(dir.path)/record.json"],
            capture: true,
            environment: ["SENDMAIL": dir.path + "/sendmail"]
        ).wait()
        #expect(ok.0 == 0, "\(ok.1)")
        let mail = try String(contentsOfFile: out, encoding: .utf8)
        #expect(
            mail.hasPrefix(
                "To: dsl@school.example\nSubject: [e-safety] critical self-harm - due 2026-11-21T11:00:00.000Z\n"
            )
        )
        #expect(mail.contains("Review it: esafety incidents show inc-1"))
        #expect(!mail.contains("\u{1B}"), "no escape sequences reach the mail")
        #expect(!mail.contains("\nBcc:"), "no header injection from log data")
        // A URL of 3,000 characters (a search's, with its tracking) and a name that is not ASCII:
        // no line of the mail over 998 bytes (an MTA's SMTP transport refuses one), the URL and
        // the name whole once the mail is read.
        let url = "https://www.google.com/search?q=" + String(repeating: "sad+", count: 740)
        dir.write(
            "long.json",
            #"{"id":"inc-2","severity":"critical","category":"self-harm","user":"Zoë","host":"www.google.com","url":"\#(url)"}"#
        )
        let long = try Child(
            "/bin/sh",
            ["-c", "\(script) dsl@school.example < \(dir.path)/long.json"],
            capture: true,
            environment: ["SENDMAIL": dir.path + "/sendmail"]
        ).wait()
        #expect(long.0 == 0, "\(long.1)")
        let raw = try String(contentsOfFile: out, encoding: .utf8)
        #expect(raw.split(separator: "\n").allSatisfy { $0.utf8.count <= 998 }, "\(raw.prefix(400))")
        let (read, body) = try Child.run(
            "/usr/bin/python3",
            [
                "-c",
                "import email, email.policy, sys; print(email.message_from_binary_file(open(sys.argv[1], 'rb'), "
                    + "policy=email.policy.default).get_content())", out,
            ]
        )
        #expect(
            read == 0 && body.contains("URL:       \(url)\n") && body.contains("Who:       Zoë "),
            "\(body.prefix(300))"
        )
        let failing = try Child(
            "/bin/sh",
            ["-c", "\(script) dsl@school.example < \(dir.path)/record.json"],
            capture: true,
            environment: ["SENDMAIL": dir.path + "/missing"]
        ).wait()
        #expect(failing.0 == 75, "EX_TEMPFAIL, so esafetyd retries: \(failing.1)")
    }
}
