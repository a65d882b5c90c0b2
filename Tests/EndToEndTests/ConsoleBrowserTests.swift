import Foundation
import Glibc
import TestSupport
import Testing

/// A W3C WebDriver session on Debian's chromedriver driving headless Chromium: the console
/// used as a person uses it, with the keyboard, at a desktop and a phone width.
final class Browser: @unchecked Sendable {
    let driver: Child
    let http: HTTPClient
    let session: String
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    init(dir: TempDir, width: Int, height: Int) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver") else {
            throw TestFailure(
                message: "chromedriver is missing (apt-get install chromium-driver); scripts/test installs it"
            )
        }
        let port = try freeLoopbackPort()
        driver = try Child("/usr/bin/chromedriver", ["--port=\(port)"], environment: ["HOME": dir.path])
        http = HTTPClient(port: port, timeout: 120)
        _ = poll(timeout: 20) { (try? HTTPClient.connect(port)).map { close($0) } != nil }
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": "/usr/bin/chromium",
                        "args": [
                            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                            "--window-size=\(width),\(height)", "--user-data-dir=\(dir.path)/chrome",
                        ],
                    ],
                ]
            ]
        ]
        let answer = try Self.call(http, "POST", "/session", capabilities)
        guard let id = (answer as? [String: Any])?["sessionId"] as? String else {
            driver.stop()
            throw TestFailure(message: "no WebDriver session: \(answer)")
        }
        session = id
    }

    static func call(_ http: HTTPClient, _ method: String, _ path: String, _ body: Any? = nil) throws -> Any {
        let text =
            try body.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) } ?? ""
        let r = try http.request(
            method,
            path,
            headers: body == nil ? [:] : ["Content-Type": "application/json"],
            body: text
        )
        let object = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]
        guard r.status == 200 else {
            throw TestFailure(message: "WebDriver \(method) \(path): \(r.status) \(r.body.prefix(400))")
        }
        return object?["value"] ?? NSNull()
    }

    @discardableResult
    func call(_ method: String, _ path: String, _ body: Any? = nil) throws -> Any {
        try Self.call(http, method, "/session/\(session)\(path)", body ?? (method == "POST" ? [String: Any]() : nil))
    }

    func go(_ url: String) throws { try call("POST", "/url", ["url": url]) }
    var url: String { ((try? call("GET", "/url")) as? String) ?? "" }

    func find(_ css: String) throws -> String {
        let v = try call("POST", "/element", ["using": "css selector", "value": css])
        guard let id = (v as? [String: Any])?[Self.elementKey] as? String else {
            throw TestFailure(message: "no \(css)")
        }
        return id
    }

    func click(_ css: String) throws { try call("POST", "/element/\(try find(css))/click") }
    func type(_ css: String, _ text: String) throws {
        try call("POST", "/element/\(try find(css))/value", ["text": text])
    }

    /// Runs a script in the page and returns its value.
    func run(_ script: String) throws -> Any { try call("POST", "/execute/sync", ["script": script, "args": [Any]()]) }

    /// Presses keys (WebDriver key codes: Tab is \u{E004}, Enter \u{E007}) or types text.
    func keys(_ text: String) throws {
        var actions: [[String: Any]] = []
        for c in text.unicodeScalars {
            actions.append(["type": "keyDown", "value": String(c)])
            actions.append(["type": "keyUp", "value": String(c)])
        }
        try call("POST", "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": actions]]])
    }

    /// Lays pages out `width` CSS pixels wide, as a phone does (Chromium's DevTools emulation:
    /// a headless window cannot be made narrower than 500 px).
    func emulate(_ width: Int, _ height: Int) throws {
        try call(
            "POST",
            "/goog/cdp/execute",
            [
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": false],
            ]
        )
    }

    /// A screenshot of the viewport, as a PNG file.
    func screenshot(_ path: String) throws {
        let b64 = try call("GET", "/screenshot") as? String ?? ""
        try Data(base64Encoded: b64)?.write(to: URL(fileURLWithPath: path))
    }

    func wait(_ script: String, timeout: Double = 15) -> Bool {
        poll(timeout: timeout, interval: 0.2) { ((try? run(script)) as? Bool) == true }
    }

    func quit() {
        _ = try? call("DELETE", "")
        driver.stop()
    }
}

@Suite("The safeguarding console in a real browser", .serialized)
struct ConsoleBrowserTests {
    static let tab = "\u{E004}"
    static let enter = "\u{E007}"

    /// Pixel counts of the given colours in a PNG.
    func colours(_ png: String, _ hex: [String]) throws -> [String: Int] {
        let (code, text) = try Child.run(
            "/usr/bin/python3",
            [repositoryRoot + "/Tests/EndToEndTests/Fixtures/png_colors.py", png] + hex
        )
        #expect(code == 0, "\(text)")
        return json(text)["counts"] as? [String: Int] ?? [:]
    }

    @Test("log in with the keyboard, filter, open, acknowledge and escalate; a new critical incident arrives live")
    func coordinatorsDay() throws {
        let s = try ConsoleTests.Setup()
        defer { _ = s.stop() }
        try s.send(
            [
                ConsoleTests.squid("alice", host: "gambling.canary.esafety.invalid", t: 0),
                ConsoleTests.squid("bob", host: "abuse.example/1", t: 1),
            ],
            incidents: 2
        )
        let (alice, bob) = (s.ids()[0], s.ids()[1])
        let b = try Browser(dir: s.dir, width: 1280, height: 900)
        defer { b.quit() }
        let base = "http://127.0.0.1:\(s.port)"

        try b.go(base + "/incidents")
        #expect(b.url.hasSuffix("/login"), "no session: the log-in page (\(b.url))")
        // Keyboard only: the skip link first, then the name, the password, Enter.
        try b.keys(Self.tab)
        #expect(try b.run("return document.activeElement.className") as? String == "skip")
        try b.keys(Self.tab)
        #expect(try b.run("return document.activeElement.id") as? String == "username")
        let outline = try b.run("return getComputedStyle(document.activeElement).outlineStyle") as? String
        #expect(outline != "none" && outline != nil, "the focus is visible")
        try b.keys("dsl1" + Self.tab + ConsoleTests.password + Self.enter)
        #expect(b.wait("return location.pathname === '/' && document.querySelector('h1').textContent === 'Dashboard'"))

        // Filter: critical only.
        try b.go(base + "/incidents?state=open")
        try b.call("POST", "/element/\(try b.find("#f-severity option[value=critical]"))/click")
        try b.click(".filters button[type=submit]")
        #expect(b.wait("return location.search.includes('severity=critical')"))
        let rows = try b.run("return [...document.querySelectorAll('#incidents tbody tr')].map(r => r.dataset.id)")
        #expect((rows as? [String]) == [bob], "\(rows)")
        #expect(!(try b.run("return document.body.innerText") as? String ?? "").contains(alice))

        // Open it, acknowledge, escalate to the DSL.
        try b.click("#incidents tbody tr a")
        #expect(b.wait("return location.pathname === '/incidents/\(bob)'"))
        let unlabelled = try b.run(
            "return [...document.querySelectorAll('input:not([type=hidden]),select,textarea')]"
                + ".filter(e => e.labels.length === 0).map(e => e.name)"
        )
        #expect((unlabelled as? [String]) == [], "every field has a label: \(unlabelled)")
        try b.click("form[action$='/ack'] button")
        #expect(b.wait("return location.search === '?done=ack'"))
        #expect(
            (try b.run("return document.querySelector('dl.record').innerText") as? String ?? "").contains(
                "acknowledged"
            )
        )
        try b.call("POST", "/element/\(try b.find("#esc-to option[value=dsl]"))/click")
        try b.type("#esc-reason", "disclosure to a teacher")
        try b.click("form[action$='/escalate'] button")
        #expect(b.wait("return location.search === '?done=escalate'"))
        let events = WorkflowCommandTests.incidents(s.log).filter { $0["id"] as? String == bob }.compactMap {
            $0["event"] as? String
        }
        #expect(events.contains("ack") && events.contains("escalate"), "\(events)")

        // Live: the open list gains a new critical incident without a reload, with a banner.
        try b.go(base + "/incidents?state=open")
        #expect(b.wait("return document.querySelector('table[data-live]') !== null"))
        try b.run("window.__noReload = true")
        try s.send([ConsoleTests.squid("carol", host: "abuse.example/2", t: 2)], incidents: 3)
        let carol = try #require(s.ids().last)
        #expect(b.wait("return document.querySelector(\"tr[data-id='\(carol)']\") !== null", timeout: 20))
        #expect(b.wait("return !document.getElementById('alert').hidden"))
        #expect(try b.run("return window.__noReload === true") as? Bool == true, "no reload happened")
        let png = s.dir.path + "/desktop.png"
        try b.screenshot(png)
        let counts = try colours(png, ["8b0000", "ffffff"])
        #expect((counts["8b0000"] ?? 0) > 5000, "the critical banner is drawn: \(counts)")
        #expect((counts["ffffff"] ?? 0) > 1280 * 900 / 4, "a page, not a blank: \(counts)")

        // A phone: nothing wider than the screen, the record and the forms still there.
        try b.emulate(390, 844)
        try b.go(base + "/incidents/\(bob)")
        #expect(try b.run("return window.innerWidth") as? Int == 390)
        let overflow = try b.run("return document.documentElement.scrollWidth - window.innerWidth") as? Int ?? 99
        #expect(overflow <= 0, "no sideways scrolling at 390 px: \(overflow)")
        try b.go(base + "/incidents?state=all")
        let listOverflow = try b.run("return document.documentElement.scrollWidth - window.innerWidth") as? Int ?? 99
        #expect(listOverflow <= 0, "the list fits 390 px: \(listOverflow)")
        let phone = s.dir.path + "/phone.png"
        try b.screenshot(phone)
        let small = try colours(phone, ["8b0000", "ffffff"])
        #expect((small["8b0000"] ?? 0) > 100, "severity badges drawn at phone width: \(small)")
    }
}
