import ArgumentParser
import Daemon
import Glibc
import Logging
import Synchronization
import SystemSupport
import Threads

struct FollowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follow",
        abstract:
            "Stream growing log files (Squid's access.log...) into esafetyd without loss, across rotation "
            + "and restarts.",
        discussion: """
            Keeps its place in each file at the last byte esafetyd acknowledged, in a position file
            in the state folder. The first time, a file is followed from its end (its old lines are
            not new incidents) unless --from-start. While esafetyd is stopped it waits, then sends
            again what was not acknowledged. Stop it with SIGTERM (it saves its positions).
            """
    )

    @Argument(help: ArgumentHelp("The files to follow.", valueName: "file"))
    var files: [String]

    @Option(help: ArgumentHelp("esafetyd's stream ingest socket.", valueName: "path"))
    var socket: String?

    @Option(
        help: ArgumentHelp(
            "Where positions are kept. Default: $STATE_DIRECTORY (systemd), else /var/lib/esafety-follow "
                + "for root, else ~/.local/state/esafety/follow.",
            valueName: "dir"
        )
    )
    var state: String?

    @Flag(help: "The first time a file is followed, send it from its start instead of its end.")
    var fromStart = false

    func run() throws {
        let socketPath = socket ?? Self.defaultSocket()
        let stateDirectory = state ?? Self.defaultStateDirectory()
        guard FileSystem.makeDirectories(stateDirectory, mode: 0o700) == 0 || FileSystem.isDirectory(stateDirectory)
        else {
            throw CommandFailure("\(stateDirectory): cannot create the state folder", status: 1)
        }
        LoggingSystem.bootstrap { label in
            var handler = DaemonLogHandler(label: label)
            handler.logLevel = .info
            return handler
        }
        // One thread per file; this one waits for the signal to stop.
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, s) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let followers = files.map { file in
            FileFollower(
                path: file,
                socket: socketPath,
                positionFile: FileFollower.positionFile(for: file, in: stateDirectory),
                fromStart: fromStart,
                logger: Logger(label: "esafety-follow")
            )
        }
        let failed = Mutex<[String]>([])
        let threads = followers.map { f in
            PosixThread(name: "esafety-follow") {
                do { try f.run() } catch {
                    failed.withLock { $0.append("\(error)") }
                    kill(getpid(), SIGTERM)
                }
            }
        }
        var received: Int32 = 0
        sigwait(&signals, &received)
        for f in followers { f.stop() }
        for t in threads { t.join() }
        if let first = failed.withLock({ $0.first }) { throw CommandFailure(first, status: 1) }
    }

    static func defaultSocket() -> String {
        let system = "/run/esafety/ingest.sock"
        let own = DaemonConfiguration().ingest.first { $0.kind == .stream }?.path ?? system
        return FileSystem.exists(own) ? own : system
    }

    static func defaultStateDirectory() -> String {
        if let d = getenv("STATE_DIRECTORY") {
            return String(cString: d).split(separator: ":").first.map(String.init) ?? "/var/lib/esafety-follow"
        }
        if getuid() == 0 { return "/var/lib/esafety-follow" }
        if let h = getenv("HOME") { return String(cString: h) + "/.local/state/esafety/follow" }
        return "/tmp/esafety-follow-\(getuid())"
    }
}
