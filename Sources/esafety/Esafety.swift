import ArgumentParser
import Classifier
import Glibc
import SystemSupport

@main
struct Esafety: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esafety",
        abstract:
            "Lists, the daemon, incidents and reports: the e-safety tool for network admins, coordinators and DSLs.",
        subcommands: [
            CheckCommand.self, LintCommand.self, CompileCommand.self, ReplayCommand.self, StatusCommand.self,
            ReloadCommand.self, ReopenCommand.self, VerifyCommand.self, IncidentsCommand.self, ReportCommand.self,
            FollowCommand.self, AlertsCommand.self, IndexCommand.self, WebCommand.self, CentralCommand.self,
            ForwardCommand.self,
        ]
    )

    /// A command's failure prints its one line and exits with its status; usage errors print
    /// one line and exit 2; help and the rest as ArgumentParser does.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CommandFailure {
            if let message = failure.message { FileOutput.stderr("esafety: error: " + Terminal.escape(message) + "\n") }
            Glibc.exit(failure.status)
        } catch {
            if exitCode(for: error) == .validationFailure {
                let message =
                    Self.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                FileOutput.stderr("esafety: error: " + Terminal.escape(message) + "\n")
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options shared by every command that reads lists.
struct ListOptions: ParsableArguments {
    @Option(
        name: .customLong("lists"),
        help: ArgumentHelp(
            "A list root in the squidGuard/UT1 layout (repeatable). Default: the bundled Blocklists/.",
            valueName: "dir"
        )
    )
    var lists: [String] = []

    @Option(
        help: ArgumentHelp("A compiled snapshot (from `esafety compile`) instead of list folders.", valueName: "file")
    )
    var snapshot: String?

    func load() throws -> CompiledLists {
        do {
            return try ListSource.resolve(lists: lists, snapshot: snapshot).load()
        } catch {
            throw CommandFailure(error.description, status: 2)
        }
    }
}

enum FileOutput {
    static func stderr(_ s: String) {
        var s = s
        s.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
