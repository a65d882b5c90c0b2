import ArgumentParser
import Classifier

struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Compile lists into a snapshot file that esafetyd loads without parsing text."
    )

    @OptionGroup var source: ListOptions

    @Option(help: ArgumentHelp("Where to write the snapshot (written atomically).", valueName: "file"))
    var out: String

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let lists = try source.load()
        do {
            try Snapshot.write(lists, to: out)
        } catch {
            throw CommandFailure(error.description, status: 2)
        }
        let elapsed = clock.now - start
        let domains = lists.domains.keyCount
        let urls = lists.urls.keyCount
        let patterns = lists.patterns.count
        print(
            "wrote \(out): \(lists.categories.count) categories, \(domains) domains, \(urls) URL keys, \(patterns) "
                + "patterns, \(lists.diagnostics.count) warning(s) in \(elapsed)"
        )
    }
}
