import ArgumentParser
import Central
import Classifier
import Daemon
import Foundation
import SystemSupport

/// Where the control socket is: the flag, else the configuration's, else the default.
struct ControlOptions: ParsableArguments {
    @Option(name: .customLong("control-socket"), help: ArgumentHelp("esafetyd's control socket.", valueName: "path"))
    var controlSocket: String?

    @Option(help: ArgumentHelp("esafetyd's configuration file, to find the control socket.", valueName: "file"))
    var config: String?

    func path() throws -> String {
        if let controlSocket { return controlSocket }
        let file =
            config ?? (FileSystem.exists(DaemonConfiguration.defaultPath) ? DaemonConfiguration.defaultPath : nil)
        if let file {
            do { return try DaemonConfiguration.load(path: file).controlSocket } catch {
                throw CommandFailure(error.description, status: 2)
            }
        }
        return DaemonConfiguration.forTools().controlSocket
    }

    /// The configuration these options name (or the default one), for the paths beside the socket.
    func configuration() throws -> DaemonConfiguration {
        let file =
            config ?? (FileSystem.exists(DaemonConfiguration.defaultPath) ? DaemonConfiguration.defaultPath : nil)
        guard let file else { return DaemonConfiguration.forTools() }
        return try DaemonConfiguration.load(path: file)
    }

    func send(_ command: String) throws -> String {
        let path = try path()
        do { return try ControlClient.send(command, to: path) } catch {
            throw CommandFailure(error.description, status: 1)
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show esafetyd's health: lines per source, parse errors, lists, reloads, slow clients."
    )

    @OptionGroup var control: ControlOptions

    @Flag(help: "The daemon's status as one JSON object.")
    var json = false

    func run() throws {
        let answer = try control.send("status")
        if json {
            print(answer)
            return
        }
        guard let status = try? StatusReport(json: answer) else {
            throw CommandFailure("unexpected answer from esafetyd", status: 1)
        }
        print(status.text)
        // The forwarder to a trust's central store runs apart from esafetyd: its lag is in the
        // position it keeps beside the incident log.
        let log = (try? control.configuration().incidentLog) ?? DaemonConfiguration.forTools().incidentLog
        for line in Forwarder.summary(besideLog: log) { print(Terminal.escape(line)) }
    }
}

struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Ask esafetyd to reload its configuration and lists (as SIGHUP does) and wait for the result."
    )

    @OptionGroup var control: ControlOptions

    func run() throws {
        let answer = try control.send("reload")
        guard let r = try? JSONDecoder().decode(StatusReport.Reload.self, from: Data(answer.utf8)) else {
            throw CommandFailure("unexpected answer from esafetyd", status: 1)
        }
        print(Terminal.escape((r.ok ? "reloaded: " : "reload refused: ") + r.message))
        if !r.ok { throw CommandFailure(nil, status: 1) }
    }
}

struct ReopenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reopen",
        abstract: "Ask esafetyd to reopen the incident log (after logrotate moved it), as SIGUSR1 does."
    )

    @OptionGroup var control: ControlOptions

    func run() throws {
        let answer = try control.send("reopen")
        guard answer.contains("\"ok\":true") else {
            throw CommandFailure("esafetyd did not reopen the incident log: \(answer)", status: 1)
        }
        print("incident log reopened")
    }
}
