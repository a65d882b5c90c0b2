import ArgumentParser
import Classifier
import Daemon
import Glibc
import Logging
import SystemSupport

/// esafetyd: flags, logging, then `EsafetyDaemon.run`. Nothing else lives here.
struct EsafetyDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esafetyd",
        abstract: "The esafety daemon: classifies proxy and DNS log lines streamed to its Unix sockets.",
        discussion: """
            Configuration: --config FILE, else /etc/esafety/esafetyd.yaml if present, else built-in defaults \
            (the bundled Blocklists/, sockets in the runtime directory). Flags override the file. \
            SIGHUP reloads configuration and lists; SIGTERM drains and stops.
            """
    )

    @Option(help: ArgumentHelp("Configuration file (YAML).", valueName: "file"))
    var config: String?

    @Flag(
        name: .customLong("check-config"),
        help: "Validate configuration and lists, run the canary self-test, and exit."
    )
    var checkConfig = false

    @Option(
        name: .customLong("lists"),
        help: ArgumentHelp("A list root (repeatable). Default: the bundled Blocklists/.", valueName: "dir")
    )
    var lists: [String] = []

    @Option(help: ArgumentHelp("A compiled snapshot instead of list folders.", valueName: "file"))
    var snapshot: String?

    @Option(help: ArgumentHelp("The stream socket for log lines.", valueName: "path"))
    var socket: String?

    @Option(
        name: .customLong("datagram-socket"),
        help: ArgumentHelp("The datagram socket (syslog forwarding).", valueName: "path")
    )
    var datagramSocket: String?

    @Option(name: .customLong("control-socket"), help: ArgumentHelp("The admin control socket.", valueName: "path"))
    var controlSocket: String?

    @Option(name: .customLong("incident-log"), help: ArgumentHelp("The incident log file.", valueName: "file"))
    var incidentLog: String?

    @Option(help: ArgumentHelp("Ingest worker threads.", valueName: "n"))
    var workers: Int?

    @Option(
        name: .customLong("log-level"),
        help: ArgumentHelp("trace, debug, info, notice, warning, error, critical.", valueName: "level")
    )
    var logLevel: String?

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
        if let workers, !(1...64).contains(workers) { throw ValidationError("--workers must be between 1 and 64") }
    }

    /// Flag values applied over a configuration (also after every reload of the file).
    var overrides: @Sendable (inout DaemonConfiguration) -> Void {
        let (lists, snapshot, socket, datagramSocket, controlSocket, incidentLog, workers, logLevel) =
            (
                self.lists, self.snapshot, self.socket, self.datagramSocket, self.controlSocket, self.incidentLog,
                self.workers, self.logLevel
            )
        return { c in
            if !lists.isEmpty {
                c.lists = lists
                c.snapshot = nil
            }
            if let snapshot { c.snapshot = snapshot }
            if let socket {
                if let i = c.ingest.firstIndex(where: { $0.kind == .stream }) {
                    c.ingest[i].path = socket
                } else {
                    c.ingest.append(.init(path: socket, kind: .stream, format: nil, name: "ingest"))
                }
            }
            if let datagramSocket {
                if let i = c.ingest.firstIndex(where: { $0.kind == .datagram }) {
                    c.ingest[i].path = datagramSocket
                } else {
                    c.ingest.append(.init(path: datagramSocket, kind: .datagram, format: nil, name: "syslog"))
                }
            }
            if let controlSocket { c.controlSocket = controlSocket }
            if let incidentLog { c.incidentLog = incidentLog }
            if let workers { c.workers = workers }
            if let logLevel, let level = Logger.Level(rawValue: logLevel) { c.logLevel = level }
        }
    }

    func run() async throws {
        var configuration: DaemonConfiguration
        do {
            if let config {
                configuration = try DaemonConfiguration.load(path: config)
            } else if FileSystem.exists(DaemonConfiguration.defaultPath) {
                configuration = try DaemonConfiguration.load(path: DaemonConfiguration.defaultPath)
            } else {
                configuration = DaemonConfiguration()
            }
        } catch {
            Self.fail(error.description)
        }
        overrides(&configuration)

        if checkConfig {
            do {
                let (source, lists, seconds) = try EsafetyDaemon.prepare(configuration)
                let entries = lists.counts.reduce(0) { $0 + $1.total }
                print(
                    "esafetyd: configuration OK (\(configuration.path ?? "built-in defaults")): \(source): "
                        + "\(lists.categories.count) categories, \(entries) entries, \(lists.diagnostics.count) "
                        + "warning(s), loaded in \(Int(seconds * 1000)) ms"
                )
                return
            } catch {
                Self.fail(error.description)
            }
        }

        // A file-size limit or a full disk must fail the write (EFBIG/ENOSPC), which the
        // incident log retries, not kill the daemon.
        signal(SIGXFSZ, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        // Each stream client holds a descriptor: use all the hard limit allows (systemd's
        // default soft limit is 1024).
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = DaemonLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "esafetyd")
        do {
            try await EsafetyDaemon.run(configuration: configuration, logger: logger, overrides: overrides)
        } catch let error as EsafetyDaemon.StartError {
            logger.critical("esafetyd cannot start", metadata: ["error": "\(error.description)"])
            Self.fail(error.description, status: 1)
        }
    }

    /// One line on standard error, then the exit status: 2 for what the admin gave (flags,
    /// a configuration that cannot be read or is invalid, lists that do not load), 1 for a
    /// start that failed.
    static func fail(_ message: String, status: Int32 = 2) -> Never {
        var line = "esafetyd: error: " + Terminal.escape(message) + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        Glibc.exit(status)
    }
}

@main
enum Main {
    /// Usage errors print one line and exit 2 (as the README promises); help as usual.
    static func main() async {
        do {
            var command = try EsafetyDaemonCommand.parseAsRoot()
            if var daemon = command as? EsafetyDaemonCommand {
                try await daemon.run()
            } else {
                try command.run()
            }
        } catch {
            if EsafetyDaemonCommand.exitCode(for: error) == .validationFailure {
                let message = EsafetyDaemonCommand.message(for: error).split(separator: "\n").first.map(String.init)
                EsafetyDaemonCommand.fail(message ?? "invalid arguments")
            }
            EsafetyDaemonCommand.exit(withError: error)
        }
    }
}
