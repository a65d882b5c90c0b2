import CShims
import Classifier
import Glibc
import Incidents
import LogFormats
import Logging
import Pipeline
import ServiceLifecycle
import SystemSupport
import Threads
import UnixSignals

/// Wires the daemon together and runs it until SIGTERM or SIGINT.
///
/// Signals, one owner each: SIGTERM/SIGINT the `ServiceGroup` (graceful shutdown),
/// SIGHUP the reload service. Shutdown runs in reverse order of start: ingest stops
/// accepting and drains every connection, then the control socket closes, then the sink.
public enum EsafetyDaemon {
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Loads and checks configuration and lists: what `--check-config` runs, and the
    /// daemon's first step.
    public static func prepare(
        _ configuration: DaemonConfiguration
    ) throws(StartError) -> (ListSource, CompiledLists, Double) {
        let started = Clock.monotonic()
        let source: ListSource
        let lists: CompiledLists
        do {
            source = try configuration.listSource()
            lists = try source.load()
        } catch {
            throw StartError(description: error.description)
        }
        let canaries = SelfTest.canaries(lists)
        if !canaries.isEmpty {
            throw StartError(description: "self-test failed: " + canaries.map(\.description).joined(separator: "; "))
        }
        let problems = configuration.environmentProblems(lists: lists)
        if !problems.isEmpty { throw StartError(description: problems.map(\.description).joined(separator: "; ")) }
        return (source, lists, Clock.monotonic() - started)
    }

    public static func run(
        configuration: DaemonConfiguration,
        logger: Logger,
        overrides: @escaping @Sendable (inout DaemonConfiguration) -> Void
    ) async throws {
        let notify = SystemdNotify()
        // Trap SIGHUP before anything can announce readiness: an early SIGHUP must reload,
        // never kill the daemon with the default action.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let (source, lists, seconds) = try prepare(configuration)
        for d in lists.diagnostics.prefix(20) {
            logger.warning(
                "list warning",
                metadata: ["list.file": "\(d.file)", "list.line": "\(d.line ?? 0)", "list.message": "\(d.message)"]
            )
        }
        if lists.diagnostics.count > 20 {
            logger.warning(
                "more list warnings not shown; run esafety lint",
                metadata: ["lists.warnings": "\(lists.diagnostics.count)"]
            )
        }
        let holder = GenerationHolder(Generation(number: 1, lists: lists, loadedAt: Clock.now(), loadSeconds: seconds))
        let stats = IngestStats()
        let incidentLog = IncidentLog(
            path: configuration.incidentLog,
            group: configuration.incidentLogGroup,
            syncInterval: configuration.incidentSyncInterval,
            bound: configuration.incidentQueue,
            spillDirectory: configuration.stateDirectory,
            logger: logger
        )
        do { try incidentLog.open() } catch {
            throw StartError(description: "\(configuration.incidentLog): cannot open the incident log: \(error)")
        }
        var devices: [String: String] = [:]
        var users: [String: String] = [:]
        do {
            if let f = configuration.deviceMap { devices = try MappingFile.load(f) }
            if let f = configuration.userMap { users = try MappingFile.load(f) }
        } catch {
            throw StartError(description: error.description)
        }
        let countersFolder = configuration.countersPath.split(separator: "/", omittingEmptySubsequences: false)
            .dropLast().joined(separator: "/")
        if !countersFolder.isEmpty && !FileSystem.isDirectory(countersFolder) {
            _ = FileSystem.makeDirectories(countersFolder)
        }
        let counters = CounterRecorder(
            path: configuration.countersPath,
            interval: configuration.countersInterval,
            stats: stats,
            logger: logger
        )
        let alerts = AlertDispatcher(settings: configuration.alerts, logger: logger) { command, ok, error in
            counters.event(.alert(.init(time: Clock.rfc3339(Clock.now()), command: command, ok: ok, error: error)))
        }
        alerts.start()
        // Acknowledgements written by `esafety incidents ...` stop overdue re-alerts.
        incidentLog.foreignLine = { alerts.workflowLine($0) }
        incidentLog.start()
        let incidents = IncidentSink(
            log: incidentLog,
            policy: configuration.policy,
            suffixes: PublicSuffix.load(),
            devices: devices,
            users: users,
            alerts: alerts,
            maxPeople: configuration.maxPeople
        )
        // Incident work runs on its own thread, off the ingest workers' path.
        let queued = QueuedSink(next: incidents)
        queued.start()
        let sink = queued
        let usr1 = await UnixSignalsSequence(trapping: .sigusr1)

        let sockets = try openSockets(configuration, logger: logger)
        let streams = sockets.streams
        let datagrams = sockets.datagrams
        let controlFD = sockets.control
        let controlOwned = sockets.controlOwned

        let reloader = Reloader(
            holder: holder,
            stats: stats,
            configuration: configuration,
            logger: logger,
            notify: notify,
            overrides: overrides,
            applied: { incidents.update(policy: $0.policy) }
        )
        let ingest = IngestServer(
            streams: streams,
            datagrams: datagrams,
            workers: configuration.workers,
            holder: holder,
            sink: sink,
            stats: stats,
            maxLine: configuration.maxLineLength,
            maxConnections: configuration.maxConnections,
            logger: logger
        )
        let control = ControlServer(
            fd: controlFD,
            path: configuration.controlSocket,
            ownsPath: controlOwned,
            stats: stats,
            holder: holder,
            reloader: reloader,
            adminGroup: configuration.controlGroup,
            logger: logger
        )

        let socketNames = (streams + datagrams).map { $0.socket.path.isEmpty ? $0.socket.name : $0.socket.path }
        control.extra.withLock {
            $0["reopen"] = {
                incidentLog.reopen()
                return #"{"ok":true}"#
            }
        }
        let alertCommands = configuration.alerts.commands.count
        control.health.withLock {
            $0 = {
                let h = incidentLog.status
                let a = alerts.status
                return (
                    StatusReport.IncidentLogHealth(
                        writing: h.writing,
                        queued: h.queued,
                        lost: h.lost,
                        written: h.written,
                        lastError: h.lastError,
                        chainHead: h.head,
                        tampering: h.tampering,
                        timesAhead: incidents.futureTimes.load(ordering: .relaxed),
                        people: incidents.peopleKept,
                        peopleEvicted: incidents.evictions.load(ordering: .relaxed),
                        matchesHandled: incidents.handled.load(ordering: .relaxed)
                    ),
                    {
                        var h = StatusReport.AlertHealth(
                            commands: alertCommands,
                            sent: a.sent,
                            failed: a.failed,
                            retried: a.retried,
                            rateLimited: a.rateLimited,
                            queued: a.queued,
                            overdueAlerts: a.overdueAlerts,
                            lastError: a.lastError
                        )
                        h.spool = configuration.alerts.spool
                        return h
                    }()
                )
            }
        }
        // Services stop in reverse order: ingest drains first, the counters record last.
        let services: [any Service] = [
            CounterService(recorder: counters),
            IndexService(logPath: configuration.incidentLog, logger: logger),
            AlertService(alerts: alerts),
            IncidentLogService(log: incidentLog, queue: queued, sink: incidents, signals: usr1),
            ReloadService(reloader: reloader, signals: hangups),
            ControlService(server: control),
            WatchdogService(notify: notify),
            IngestService(
                server: ingest,
                notify: notify,
                logger: logger,
                ready: {
                    let entries = lists.counts.reduce(0) { $0 + $1.total }
                    logger.info(
                        "esafetyd ready",
                        metadata: [
                            "lists": "\(source)", "lists.entries": "\(entries)", "lists.seconds": "\(seconds)",
                            "ingest.sockets": "\(socketNames)", "control.socket": "\(configuration.controlSocket)",
                            "workers": "\(configuration.workers)",
                        ]
                    )
                    notify.ready(status: "generation 1, \(entries) entries")
                }
            ),
        ]
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        let totals = stats.totals
        logger.info(
            "esafetyd stopped",
            metadata: [
                "lines.received": "\(totals.received)", "lines.parsed": "\(totals.parsed)",
                "lines.matched": "\(totals.matched)",
            ]
        )
    }
}

struct OpenedSockets {
    var streams: [IngestServer.Listener] = []
    var datagrams: [IngestServer.Listener] = []
    var control: Int32 = -1
    var controlOwned = true
}

/// Sockets: systemd's if it passed any (by `FileDescriptorName=`: `control`, or an ingest
/// socket's name), else bound from the configuration.
func openSockets(_ configuration: DaemonConfiguration, logger: Logger) throws(EsafetyDaemon.StartError) -> OpenedSockets
{
    var out = OpenedSockets()
    let activated = Sockets.activated()
    for a in activated {
        if a.name == "control" {
            out.control = a.fd
            out.controlOwned = false
            continue
        }
        let kind: DaemonConfiguration.IngestSocket.Kind = a.type == Int32(SOCK_DGRAM.rawValue) ? .datagram : .stream
        let configured =
            configuration.ingest.first { $0.name == a.name && $0.kind == kind }
            ?? configuration.ingest.first { $0.kind == kind }
        let socket = configured ?? .init(path: "", kind: kind, format: nil, name: a.name)
        let listener = IngestServer.Listener(fd: a.fd, socket: socket, ownsPath: false)
        if kind == .datagram { out.datagrams.append(listener) } else { out.streams.append(listener) }
    }
    if !activated.isEmpty {
        logger.info("using sockets from systemd", metadata: ["sockets": "\(activated.map(\.name))"])
    } else {
        for s in configuration.ingest {
            let type = s.kind == .stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
            let fd: Int32
            do { fd = try Sockets.bind(path: s.path, type: type, mode: s.mode, group: s.group) } catch {
                throw EsafetyDaemon.StartError(description: error.description)
            }
            let l = IngestServer.Listener(fd: fd, socket: s, ownsPath: true)
            if s.kind == .stream { out.streams.append(l) } else { out.datagrams.append(l) }
        }
    }
    if out.control < 0 {
        do {
            out.control = try Sockets.bind(
                path: configuration.controlSocket,
                type: Int32(SOCK_STREAM.rawValue),
                mode: configuration.controlMode,
                group: configuration.controlGroup
            )
        } catch {
            throw EsafetyDaemon.StartError(description: error.description)
        }
    }
    return out
}

struct IngestService: Service {
    let server: IngestServer
    let notify: SystemdNotify
    let logger: Logger
    let ready: @Sendable () -> Void

    func run() async throws {
        server.start()
        ready()
        try? await gracefulShutdown()
        notify.stopping()
        logger.info("stopping: no new connections; draining every connection")
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            _ = PosixThread(name: "esafety-drain") {
                server.stop()
                c.resume()
            }
        }
    }
}

/// Owns the incident log: SIGUSR1 reopens it (logrotate); on shutdown, after ingest has
/// drained, the open windows are closed and everything is written and fsync'd.
struct IncidentLogService: Service {
    let log: IncidentLog
    let queue: QueuedSink
    let sink: IncidentSink
    let signals: UnixSignalsSequence
    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() { log.reopen() }
        // Ingest has drained by now (it stops first): hand over what is queued, then close.
        queue.stop()
        sink.closeAll()
        log.stop()
    }
}

struct AlertService: Service {
    let alerts: AlertDispatcher
    func run() async throws {
        try? await gracefulShutdown()
        alerts.stop()
    }
}

struct ControlService: Service {
    let server: ControlServer
    func run() async throws {
        server.start()
        try? await gracefulShutdown()
        server.stop()
    }
}

struct ReloadService: Service {
    let reloader: Reloader
    let signals: UnixSignalsSequence
    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            _ = await reloader.reload(reason: "SIGHUP")
        }
    }
}

struct WatchdogService: Service {
    let notify: SystemdNotify
    func run() async throws {
        guard let interval = notify.watchdogInterval else {
            try? await gracefulShutdown()
            return
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            notify.send("WATCHDOG=1")
            // Woken by the shutdown too: a plain sleep held every stop up to half the
            // watchdog interval (15 s under the shipped unit), seen under a real systemd.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int(interval * 1000))) }
        }
    }
}
