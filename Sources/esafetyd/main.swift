import ArgumentParser
import Classifier

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's entry point: parse flags, then hand over to the service.
struct EsafetyDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esafetyd",
        abstract: "The esafety daemon: classifies proxy and DNS log lines and records e-safety incidents."
    )

    @Flag(name: .customLong("check-config"), help: "Load and validate the configuration and lists, run the canary self-test, and exit.")
    var checkConfig = false

    @Option(name: .customLong("lists"), help: ArgumentHelp("A list root (repeatable). Default: the bundled Blocklists/.", valueName: "dir"))
    var lists: [String] = []

    @Option(help: ArgumentHelp("A compiled snapshot instead of list folders.", valueName: "file"))
    var snapshot: String?

    func run() throws {
        let source: ListSource
        let compiled: CompiledLists
        do {
            source = try ListSource.resolve(lists: lists, snapshot: snapshot)
            compiled = try source.load()
        } catch {
            Self.fail(error.description)
        }
        let failures = SelfTest.canaries(compiled)
        if !failures.isEmpty {
            Self.fail(failures.map(\.description).joined(separator: "; "))
        }
        if checkConfig {
            let entries = compiled.counts.reduce(0) { $0 + $1.total }
            print("esafetyd: configuration OK: \(source): \(compiled.categories.count) categories, \(entries) entries, \(compiled.diagnostics.count) warning(s)")
            return
        }
        Self.fail("the daemon is not built yet; only --check-config works in this version")
    }

    static func fail(_ message: String) -> Never {
        var line = "esafetyd: error: " + Terminal.escape(message) + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        Glibc.exit(1)
    }
}

EsafetyDaemon.main()
