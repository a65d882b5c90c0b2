import Classifier
import Foundation
import TestSupport

/// Runs the same URLs through Debian's squidGuard (as a Squid URL rewriter, with the
/// same UT1 lists as plain text) and through esafety, and compares speed and verdicts.
enum SquidGuardComparison {
    static func run(ut1: String, work: String, traffic hosts: [String], ut1Domains: [String]) {
        print("\n## squidGuard comparison")
        let binary = ["/usr/bin/squidGuard", "/usr/sbin/squidGuard"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let binary else {
            print("squidGuard not installed (apt-get install squidguard); skipped")
            return
        }
        let sg = work + "/sg"
        try? FileManager.default.removeItem(atPath: sg)
        try! FileManager.default.createDirectory(atPath: sg + "/db", withIntermediateDirectories: true)
        try! FileManager.default.createDirectory(atPath: sg + "/log", withIntermediateDirectories: true)
        var dests: [String] = []
        var config = "dbhome \(sg)/db\nlogdir \(sg)/log\n\n"
        let fm = FileManager.default
        for cat in (try? fm.contentsOfDirectory(atPath: ut1).sorted()) ?? [] {
            let path = ut1 + "/" + cat
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue,
                (try? fm.destinationOfSymbolicLink(atPath: path)) == nil
            else { continue }
            let name = cat.replacingOccurrences(of: "-", with: "_")
            var body = ""
            for (kind, key) in [("domains", "domainlist"), ("urls", "urllist"), ("expressions", "expressionlist")] {
                let file = path + "/" + kind
                guard let size = (try? fm.attributesOfItem(atPath: file)[.size] as? Int), size > 0 else { continue }
                try! fm.createDirectory(atPath: sg + "/db/" + cat, withIntermediateDirectories: true)
                try? fm.copyItem(atPath: file, toPath: sg + "/db/" + cat + "/" + kind)
                body += "  \(key) \(cat)/\(kind)\n"
            }
            guard !body.isEmpty else { continue }
            dests.append(name)
            config += "dest \(name) {\n\(body)}\n"
        }
        config +=
            "\nacl {\n  default {\n    pass \(dests.map { "!" + $0 }.joined(separator: " ")) all\n    redirect "
            + "http://blocked.invalid/?cat=%t\n  }\n}\n"
        try! config.write(toFile: sg + "/squidGuard.conf", atomically: false, encoding: .utf8)

        var r = SplitMix(s: 11)
        let paths = ["/", "/index.html", "/search?q=test", "/news/story.html", "/images/a.png", "/watch?v=abc"]
        var urls = hosts.map { "http://" + $0 + paths[r.below(paths.count)] }
        // Add the UT1 URL entries themselves, so the URL-list semantics are compared too.
        var urlEntries: [String] = []
        for cat in ["adult", "phishing", "malware", "drogue", "games"] {
            urlEntries += readLines(ut1 + "/" + cat + "/urls").prefix(400).map { "http://" + $0 }
        }
        urls += urlEntries
        let input = urls.map { "\($0) 10.0.0.1/- - GET\n" }.joined()
        try! input.write(toFile: sg + "/input", atomically: false, encoding: .utf8)

        func runSquidGuard(_ inputPath: String) -> (String, Double) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["-c", sg + "/squidGuard.conf"]
            p.standardInput = FileHandle(forReadingAtPath: inputPath)
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            let (data, t) = time { () -> Data in
                try! p.run()
                let d = out.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                return d
            }
            return (String(decoding: data, as: UTF8.self), t)
        }
        try! "".write(toFile: sg + "/empty", atomically: false, encoding: .utf8)
        let (_, startup) = runSquidGuard(sg + "/empty")
        let (output, total) = runSquidGuard(sg + "/input")
        let answers = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let sgSeconds = max(total - startup, 1e-9)

        let lists = try! ListLoader.load(roots: [ut1])
        let scratch = lists.makeScratch()
        let (verdicts, ourSeconds) = time { urls.map { lists.classify(target: $0, scratch: scratch) } }
        // Raw classification speed on the same URLs (no result formatting).
        let packedHosts = urls.map { u -> String in
            let v = u.dropFirst(7)
            return String(v.prefix { $0 != "/" })
        }
        let (_, rawSeconds) = time {
            var m = 0
            for (h, u) in zip(packedHosts, urls) {
                var hh = h
                var uu = u
                hh.withUTF8 { hb in
                    uu.withUTF8 { ub in
                        if lists.classify(
                            host: UnsafeRawBufferPointer(hb),
                            url: UnsafeRawBufferPointer(ub),
                            scratch: scratch
                        ) {
                            m += 1
                        }
                    }
                }
            }
            return m
        }
        print(
            "squidGuard \(binary), same UT1 text lists, \(urls.count) URLs (\(hosts.count) from traffic, "
                + "\(urlEntries.count) UT1 URL entries)"
        )
        print(
            "squidGuard: start-up (loading lists) \(fmt(startup, 2)) s; \(fmt(Double(urls.count) / sgSeconds, 0)) "
                + "URLs/s after start-up"
        )
        print(
            "esafety:    compile \(fmt(0, 0))-free path: \(fmt(Double(urls.count) / rawSeconds, 0)) URLs/s raw, "
                + "\(fmt(Double(urls.count) / ourSeconds, 0)) URLs/s with verdict text"
        )
        print("speed-up (raw classify vs squidGuard after start-up): \(fmt(sgSeconds / rawSeconds, 1))x")

        // Verdict agreement: blocked or not, and by which UT1 folder.
        var agreeBlocked = 0
        var agreePassed = 0
        var onlyUs = 0
        var onlySG = 0
        var categoryMismatch = 0
        var samplesUs: [String] = []
        var samplesSG: [String] = []
        var samplesCat: [String] = []
        for (i, url) in urls.enumerated() {
            let answer = i < answers.count ? answers[i] : ""
            var sgCat: String? = nil
            if let range = answer.range(of: "cat=") {
                sgCat = String(answer[range.upperBound...].prefix { $0 != " " && $0 != "\"" && $0 != "&" })
            }
            let ourFolders = Set(
                (verdicts[i].categories + verdicts[i].suppressed).map { m -> String in
                    let parts = m.file.split(separator: "/")
                    return parts.count >= 2
                        ? String(parts[parts.count - 2]).replacingOccurrences(of: "-", with: "_") : m.name
                }
            )
            switch (sgCat, ourFolders.isEmpty) {
            case (nil, true): agreePassed += 1
            case (let c?, false):
                if ourFolders.contains(c) {
                    agreeBlocked += 1
                } else {
                    categoryMismatch += 1
                    if samplesCat.count < 5 {
                        samplesCat.append(
                            "\(url) squidGuard=\(c) esafety=\(ourFolders.sorted().joined(separator: ","))"
                        )
                    }
                }
            case (nil, false):
                onlyUs += 1
                if samplesUs.count < 8 {
                    samplesUs.append("\(url) esafety=\(ourFolders.sorted().joined(separator: ","))")
                }
            case (let c?, true):
                onlySG += 1
                if samplesSG.count < 8 { samplesSG.append("\(url) squidGuard=\(c)") }
            }
        }
        let n = Double(urls.count)
        print(
            "agreement: \(fmt(Double(agreeBlocked + agreePassed) * 100 / n, 2))% (both listed, same folder: "
                + "\(agreeBlocked); both clean: \(agreePassed))"
        )
        print(
            "esafety only: \(onlyUs); squidGuard only: \(onlySG); listed by both, different folder: \(categoryMismatch)"
        )
        for s in samplesUs { print("  esafety only: \(s)") }
        for s in samplesSG { print("  squidGuard only: \(s)") }
        for s in samplesCat { print("  folder differs: \(s)") }
    }
}
