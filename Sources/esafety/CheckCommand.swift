import ArgumentParser
import Classifier
import Glibc
import Incidents
import SystemSupport

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Say which categories hosts or URLs belong to, and why.",
        discussion: "A TARGET is a URL or a host name or address; `-` reads targets one per line from standard input."
    )

    @OptionGroup var source: ListOptions

    @Flag(help: "One JSON object per target, one per line.")
    var json = false

    @Argument(help: ArgumentHelp("URLs or hosts; `-` for standard input.", valueName: "target"))
    var targets: [String]

    func validate() throws {
        if targets.isEmpty {
            throw ValidationError("give at least one TARGET (a URL, a host, or - for standard input)")
        }
    }

    func run() throws {
        let lists = try source.load()
        let scratch = lists.makeScratch()
        let color = !json && isatty(1) != 0
        for target in targets {
            if target == "-" {
                while let line = readLine(strippingNewline: true) {
                    let t = line.hasSuffix("\r") ? String(line.dropLast()) : line
                    if t.isEmpty { continue }
                    emit(lists.classify(target: t, scratch: scratch), color: color)
                }
            } else {
                emit(lists.classify(target: target, scratch: scratch), color: color)
            }
        }
    }

    func emit(_ verdict: Verdict, color: Bool) {
        if json {
            print(verdict.json)
        } else {
            print(VerdictText.render(verdict, color: color), terminator: "")
        }
    }
}

/// The human form of a verdict: one block per target, each match on its own line.
enum VerdictText {
    static func render(_ v: Verdict, color: Bool) -> String {
        var out = Terminal.escape(v.target) + "\n"
        if let error = v.error {
            return out + "  error: \(error)\n"
        }
        if v.host != v.target { out += "  host \(Terminal.escape(v.host))\n" }
        if v.categories.isEmpty && v.suppressed.isEmpty {
            return out + "  no match\n"
        }
        for (i, m) in v.categories.enumerated() {
            out += "  " + line(m, color: color) + (i == 0 ? "  (primary)" : "") + "\n"
        }
        for m in v.suppressed {
            out += "  allowed: " + line(m, color: false) + "\n"
        }
        if let a = v.allowedBy {
            out += "  allowed by \(Terminal.escape(a.rule))  \(Terminal.escape(a.file)):\(a.line)\n"
        }
        return out
    }

    static func line(_ m: MatchDetail, color: Bool) -> String {
        var severity = m.severity.description
        if color { severity = m.severity.colored(severity) }
        let lock = m.locked ? " locked" : ""
        return
            "\(Terminal.escape(m.name)) [\(severity)\(lock)]  \(m.kind)  \(Terminal.escape(m.file)):\(m.line)  "
            + "\(Terminal.escape(m.rule))"
    }
}
