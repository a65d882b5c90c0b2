import ArgumentParser
import Classifier
import Daemon
import Incidents
import SystemSupport

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the incident log's hash chain; name the first line changed, removed or inserted.",
        discussion: """
            With one LOG, its rotated predecessors (LOG.N ... LOG.1, uncompressed) are checked first. \
            Exit 1 when the chain is broken. On success the last line's chain value (the head) is \
            printed: a chain alone cannot show that lines were removed from its end, so keep heads \
            outside the log (esafetyd writes its head to the journal hourly, at rotation and at \
            exit) and give them to --head later.
            """
    )

    @Argument(
        help: ArgumentHelp("Incident log files, oldest first. Default: the configured incident log.", valueName: "log")
    )
    var logs: [String] = []

    @Option(
        name: .customLong("head"),
        help: ArgumentHelp(
            "A chain value recorded earlier (at least its first 12 hex digits): some line must have it, or the lines "
                + "up to it were removed. Repeatable.",
            valueName: "hex"
        )
    )
    var heads: [String] = []

    func validate() throws {
        for h in heads where h.count < 12 || h.count > 64 || !h.allSatisfy(\.isHexDigit) {
            throw ValidationError("--head takes 12 to 64 hex digits of a chain value, not '\(Terminal.escape(h))'")
        }
    }

    func run() throws {
        var files = logs
        if files.isEmpty { files = [DaemonConfiguration.forTools().incidentLog] }
        if files.count == 1 { files = IncidentStore.withRotations(files[0]) }
        let result: HashChain.Verification
        do { result = try HashChain.check(paths: files, heads: heads) } catch {
            throw CommandFailure("\(error.path): cannot read: \(error)", status: 2)
        }
        if let failure = result.failure {
            print(Terminal.escape("BROKEN: " + failure.description))
            print("\(result.checked) line(s) before it verified")
            throw CommandFailure(nil, status: 1)
        }
        print(
            "OK: \(result.checked) line(s) in \(files.count) file(s) verified"
                + (heads.isEmpty ? "" : "; the recorded head(s) found")
        )
        if let head = result.head { print(Terminal.escape("head: \(head.chain) (\(head.file):\(head.line))")) }
    }
}
