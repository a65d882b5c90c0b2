import Classifier
import Foundation
import LogFormats
import TestSupport

/// `esafety replay` over generated logs of each format: lines/s on one core and peak memory.
enum ReplayBenchmark {
    static func generate(format: String, lines: Int, hosts: [String], to path: String, clients: Int? = nil) {
        guard
            let out = FileHandle(forWritingAtPath: path)
                ?? {
                    _ = FileManager.default.createFile(atPath: path, contents: nil)
                    return FileHandle(forWritingAtPath: path)
                }()
        else { fatalError("cannot write \(path)") }
        var r = SplitMix(s: 77)
        let paths = [
            "/", "/index.html", "/search?q=weather+today", "/news/world/2026/11/story.html", "/static/js/app.min.js",
            "/images/logo.png", "/watch?v=dQw4w9WgXcQ", "/api/v2/items?page=3", "/login", "/article/12345-some-title",
        ]
        var chunk = ""
        chunk.reserveCapacity(1 << 22)
        var t = 1_795_255_200.0
        for i in 0..<lines {
            let host = hosts[i % hosts.count]
            let client =
                clients.map { n -> String in
                    let c = r.below(n)
                    return "10.0.\(c / 250).\(1 + c % 250)"
                } ?? "10.\(r.below(4)).\(r.below(256)).\(1 + r.below(250))"
            t += 0.001
            switch format {
            case "squid":
                if r.below(10) < 3 {
                    chunk +=
                        "\(String(format: "%.3f", t)) \(r.below(900)) \(client) TCP_TUNNEL/200 \(r.below(90000)) "
                        + "CONNECT \(host):443 - HIER_DIRECT/93.184.216.34 -\n"
                } else {
                    chunk +=
                        "\(String(format: "%.3f", t)) \(r.below(900)) \(client) TCP_MISS/200 \(r.below(90000)) GET "
                        + "http://\(host)\(paths[r.below(paths.count)]) pupil\(r.below(900)) "
                        + "HIER_DIRECT/93.184.216.34 text/html\n"
                }
            case "squid-common":
                chunk +=
                    "\(client) - pupil\(r.below(900)) [21/Nov/2026:10:00:00 +0000] \"GET "
                    + "http://\(host)\(paths[r.below(paths.count)]) HTTP/1.1\" 200 \(r.below(90000)) \"-\" "
                    + "\"Mozilla/5.0\" TCP_MISS:HIER_DIRECT\n"
            case "dnsmasq":
                if i % 2 == 0 {
                    chunk += "Nov 21 10:00:00 dnsmasq[812]: query[A] \(host) from \(client)\n"
                } else {
                    chunk += "Nov 21 10:00:00 dnsmasq[812]: reply \(hosts[(i - 1) % hosts.count]) is 93.184.216.34\n"
                }
            case "bind":
                chunk +=
                    "21-Nov-2026 10:00:00.123 queries: info: client @0x7f64500020ef "
                    + "\(client)#\(1024 + r.below(60000)) (\(host)): query: \(host) IN A +E(0)K (10.0.0.1)\n"
            case "unbound":
                chunk += "[1795255200] unbound[1234:0] info: \(client) \(host). A IN\n"
            default:  // json
                chunk +=
                    "{\"time\":\"2026-11-21T10:00:00Z\",\"client\":\"\(client)\",\"user\":\"pupil\(r.below(900))\","
                    + "\"url\":\"https://\(host)\(paths[r.below(paths.count)])\",\"method\":\"GET\",\"action\":"
                    + "\"allowed\"}\n"
            }
            if chunk.utf8.count > (1 << 22) - 4096 {
                out.write(chunk.data(using: .utf8)!)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        out.write(chunk.data(using: .utf8)!)
        try? out.close()
    }

    static func run(
        ut1: String,
        work: String,
        traffic: (Int, [String]) -> [String],
        ut1Domains: [String],
        patterns: [String]
    ) {
        print("\n## esafety replay: lines/s on one core, lists = UT1")
        let esafety = (CommandLine.arguments[0] as NSString).deletingLastPathComponent + "/esafety"
        guard FileManager.default.isExecutableFile(atPath: esafety) else {
            print("\(esafety) not built; run `swift build -c release` first")
            return
        }
        let lines = 5_000_000
        let hosts = traffic(1_000_000, ut1Domains)
        let patternRoot = work + "/replay-patterns"
        try? FileManager.default.createDirectory(atPath: patternRoot + "/bench", withIntermediateDirectories: true)
        try! (patterns.joined(separator: "\n") + "\n").write(
            toFile: patternRoot + "/bench/expressions",
            atomically: false,
            encoding: .utf8
        )
        print(
            "input: \(lines) generated lines per format; hosts from the traffic mix (Tranco top 100k, 1% UT1 "
                + "entries); dnsmasq alternates query and reply lines"
        )
        print("format         patterns  lines/s    ns/line  parsed     matched   peak RSS")
        for format in ["dnsmasq", "bind", "unbound", "squid", "squid-common", "json"] {
            let path = work + "/replay-\(format).log"
            generate(format: format, lines: lines, hosts: hosts, to: path)
            for withPatterns in (format.hasPrefix("squid") ? [false, true] : [false]) {
                var arguments = ["replay", "--format", format, "--lists", ut1]
                if withPatterns { arguments += ["--lists", patternRoot] }
                arguments.append(path)
                let p = Process()
                p.executableURL = URL(fileURLWithPath: esafety)
                p.arguments = arguments
                let pipe = Pipe()
                p.standardOutput = pipe
                try! p.run()
                let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                var usage = rusage()
                getrusage(RUSAGE_CHILDREN.rawValue, &usage)
                let first = output.split(separator: "\n")
                let rate =
                    first.count > 1 ? first[1].split(separator: " ").dropFirst(3).first.map(String.init) ?? "?" : "?"
                let counts = first.first.map(String.init) ?? ""
                let fields = counts.split(separator: " ", omittingEmptySubsequences: true)
                let parsed = fields.count > 3 ? String(fields[3]) : "?"
                let matched = fields.count > 5 ? String(fields[5]) : "?"
                let nsPerLine = Double(rate).map { fmt(1e9 / $0, 0) } ?? "?"
                print(
                    "\(format.padding(toLength: 14, withPad: " ", startingAt: 0)) "
                        + "\(withPatterns ? String(patterns.count) : "0")  \(rate)  \(nsPerLine)  \(parsed)  "
                        + "\(matched)  \(usage.ru_maxrss / 1024) MiB (max of runs so far)"
                )
            }
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
