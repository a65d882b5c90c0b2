import ArgumentParser
import Classifier
import Daemon
import Incidents

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the incident log's hash chain; name the first line changed, removed or inserted.",
        discussion: "With one LOG, its rotated predecessors (LOG.N ... LOG.1, uncompressed) are checked first. Exit 1 when the chain is broken."
    )

    @Argument(help: ArgumentHelp("Incident log files, oldest first. Default: the configured incident log.", valueName: "log"))
    var logs: [String] = []

    func run() throws {
        var files = logs
        if files.isEmpty { files = [DaemonConfiguration().incidentLog] }
        if files.count == 1 { files = IncidentStore.withRotations(files[0]) }
        var inputs: [(String, String)] = []
        for f in files {
            do { inputs.append((f, try FileSystem.readText(f))) } catch {
                CLI.fail("\(f): cannot read: \(error)", status: 2)
            }
        }
        let (failure, checked) = HashChain.verify(files: inputs)
        if let failure {
            print(Terminal.escape("BROKEN: " + failure.description))
            print("\(checked) line(s) before it verified")
            throw ExitCode(1)
        }
        print("OK: \(checked) line(s) in \(files.count) file(s) verified")
    }
}
