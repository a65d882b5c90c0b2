import ArgumentParser
import Classifier
import Glibc
import SystemSupport

struct LintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Check list folders: errors, duplicates, shadowed entries, bad or slow patterns.",
        discussion:
            "Findings are printed as file:line: level: message [kind]. Exit status 1 when there are errors, 0 "
            + "otherwise."
    )

    @Option(
        name: .customLong("lists"),
        help: ArgumentHelp("A list root (repeatable). Default: the bundled Blocklists/.", valueName: "dir")
    )
    var lists: [String] = []

    @Flag(help: "Print the findings only, not the summary.")
    var quiet = false

    func run() throws {
        let roots: [String]
        do {
            guard case .folders(let r) = try ListSource.resolve(lists: lists, snapshot: nil) else { return }
            roots = r
        } catch {
            throw CommandFailure(error.description, status: 2)
        }
        for root in roots where !FileSystem.isDirectory(root) {
            throw CommandFailure("\(root): no such list folder", status: 2)
        }
        let report = Lint.run(roots: roots)
        for d in report.diagnostics { print(Terminal.escape(d.description)) }
        if !quiet {
            print("")
            print(
                "category".padding(22) + "severity".padding(10) + "domains".leftPadding(9) + "urls".leftPadding(9)
                    + "patterns".leftPadding(10)
            )
            for (category, counts) in report.summary {
                let name =
                    category.name + (category.locked ? " (locked)" : "") + (category.isAllowlist ? " (allow)" : "")
                print(
                    Terminal.escape(name).padding(22) + category.severity.description.padding(10)
                        + String(counts.domains).leftPadding(9) + String(counts.urls).leftPadding(9)
                        + String(counts.patterns).leftPadding(10)
                )
            }
            print("\(report.errorCount) error(s), \(report.warningCount) warning(s)")
        }
        if report.errorCount > 0 { throw CommandFailure(nil, status: 1) }
    }
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
    func leftPadding(_ n: Int) -> String { count >= n ? " " + self : String(repeating: " ", count: n - count) + self }
}
