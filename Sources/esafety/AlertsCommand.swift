import ArgumentParser
import Daemon
import Glibc
import Incidents
import SystemSupport

struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "Instant alerts that esafetyd spooled (alerts.spool).",
        subcommands: [DeliverCommand.self]
    )
}

struct DeliverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliver",
        abstract: "Run the configured alert command for every spooled alert, then remove it.",
        discussion: """
            Started by esafety-alert.path when the spool is not empty, outside esafetyd's sandbox, so
            that a command may use the network (curl) or a setgid program (sendmail). Each outcome is
            added to esafetyd's counters file (the report's alert lines); an alert whose every attempt
            failed is kept in SPOOL.failed, and the command exits 1.
            """
    )

    @Option(help: ArgumentHelp("esafetyd's configuration file.", valueName: "file"))
    var config: String?

    func run() throws {
        let file =
            config ?? (FileSystem.exists(DaemonConfiguration.defaultPath) ? DaemonConfiguration.defaultPath : nil)
        let configuration: DaemonConfiguration
        do { configuration = try file.map(DaemonConfiguration.load(path:)) ?? DaemonConfiguration() } catch {
            throw CommandFailure(error.description, status: 2)
        }
        let settings = configuration.alerts
        guard let folder = settings.spool else {
            throw CommandFailure(
                "no alerts.spool in \(file ?? "the configuration"): esafetyd runs the commands",
                status: 2
            )
        }
        let counters = configuration.countersPath
        let failed = AlertSpool(folder: folder).deliver(
            commands: settings.commands,
            timeout: settings.timeout,
            retries: settings.retries,
            backoff: settings.backoff
        ) { command, ok, error, incident in
            let line =
                CounterRecord.alert(.init(time: Clock.rfc3339(Clock.now()), command: command, ok: ok, error: error))
                .text + "\n"
            let fd = open(counters, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            if fd >= 0 {
                _ = Array(line.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
            let what = ok ? "alert delivered" : "ALERT NOT SENT"
            FileOutput.stderr(
                Terminal.escape("\(what): \(command) for \(incident)\(error.map { ": " + $0 } ?? "")") + "\n"
            )
        }
        if failed > 0 { throw CommandFailure("\(failed) alert(s) not sent; kept in \(folder).failed", status: 1) }
    }
}
