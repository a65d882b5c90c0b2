import CShims
import Classifier
import Foundation
import Glibc
import LogFormats
import Logging
import Synchronization
import SystemSupport
import Threads

/// Instant alerts: for the configured severities, each configured command runs with the
/// incident record (JSON) on its standard input, on the alerts' own thread, so ingestion
/// never waits. A command that fails (non-zero exit, a signal, or longer than the timeout)
/// is retried with exponential backoff; at most one alert per (person, category) per
/// rate-limit interval. Results are counted for `status`, logged without the incident's
/// contents, and passed to `record` (the counters file, for the report).
public final class AlertDispatcher: @unchecked Sendable {
    public struct Command: Sendable, Equatable {
        public var name: String
        public var argv: [String]
        public init(name: String, argv: [String]) {
            self.name = name
            self.argv = argv
        }
    }

    public struct Settings: Sendable, Equatable {
        public var commands: [Command] = []
        public var severities: Set<Severity> = [.critical, .high]
        /// Seconds between alerts for one (person, category).
        public var rateLimit = 600.0
        public var timeout = 10.0
        /// Attempts after the first.
        public var retries = 3
        /// Seconds before the first retry; doubled for each one after.
        public var backoff = 5.0
        /// While an alerted incident is past its due time and not yet acknowledged, alert
        /// again this often (seconds); 0: never.
        public var overdueRepeat = 0.0
        /// When set, esafetyd does not run the commands itself: it writes each alert into this
        /// folder (an `AlertSpool`), and `esafety alerts deliver`, run by its own unit outside
        /// esafetyd's sandbox (no network, no setgid there), runs the commands. The alert counts
        /// as sent here once it is in the spool; the delivery's outcome is recorded there.
        public var spool: String?
        public init() {}
    }

    public struct Health: Sendable {
        public var sent = 0
        public var failed = 0
        public var retried = 0
        public var rateLimited = 0
        public var queued = 0
        public var overdueAlerts = 0
        public var lastError: String?
    }

    /// An alerted incident not yet acknowledged, with its due time (seconds since 1970).
    struct Awaiting {
        var record: String
        var due: Double
        var next: Double
    }

    struct Attempt {
        var payload: String
        var command: Command
        var number: Int
        var notBefore: Double
        var id: String
    }

    let settings: Settings
    let logger: Logger
    let record: @Sendable (_ command: String, _ ok: Bool, _ error: String?) -> Void
    private let state = Mutex<(pending: [Attempt], last: [String: Double], stop: Bool)>(([], [:], false))
    private let awaiting = Mutex<[String: Awaiting]>([:])
    private let health = Mutex(Health())
    private let wakeup = Wakeup()
    private var thread: PosixThread?
    static let bound = 1000

    public init(
        settings: Settings,
        logger: Logger,
        record: @escaping @Sendable (String, Bool, String?) -> Void = { _, _, _ in }
    ) {
        self.settings = settings
        self.logger = logger
        self.record = record
    }

    /// Counters, with `queued` read from the queue itself.
    public var status: Health {
        var h = health.withLock { $0 }
        h.queued = state.withLock { $0.pending.count }
        return h
    }

    public func start() {
        guard !settings.commands.isEmpty else { return }
        thread = PosixThread(name: "esafety-alerts") { [self] in loop() }
    }

    public func stop() {
        state.withLock { $0.stop = true }
        wakeup.signal()
        thread?.join()
        thread = nil
    }

    /// Whether an incident of this severity would be sent anywhere (so the caller can skip
    /// preparing its payload when no command is configured).
    func wants(_ severity: Severity) -> Bool {
        !settings.commands.isEmpty && settings.severities.contains(severity)
    }

    /// A new incident: queue an alert for each command, unless its severity is not alerted
    /// or this person and category were alerted within the rate limit.
    public func incident(
        _ record: String,
        id: String,
        severity: Severity,
        person: String,
        category: String,
        due: Double? = nil,
        now: Double = Clock.monotonic()
    ) {
        guard wants(severity) else { return }
        if settings.overdueRepeat > 0, let due {
            awaiting.withLock { a in if a.count < 10_000 { a[id] = Awaiting(record: record, due: due, next: due) } }
        }
        let key = person + "\u{0}" + category
        let outcome = state.withLock { s -> Int in
            if let last = s.last[key], now - last < settings.rateLimit { return 1 }
            if s.pending.count + settings.commands.count > Self.bound { return 2 }
            s.last[key] = now
            if s.last.count > 50_000 { s.last = s.last.filter { now - $0.value < settings.rateLimit } }
            for c in settings.commands {
                s.pending.append(Attempt(payload: record, command: c, number: 0, notBefore: 0, id: id))
            }
            return 0
        }
        switch outcome {
        case 1: health.withLock { $0.rateLimited += 1 }
        case 2:
            health.withLock {
                $0.failed += settings.commands.count
                $0.lastError = "alert queue full"
            }
            logger.error(
                "alert queue full: alert not sent (the incident is in the log)",
                metadata: ["incident": "\(id)"]
            )
        default: wakeup.signal()
        }
    }

    /// Someone acknowledged (escalated, resolved...) the incident: no more overdue alerts.
    func responded(id: String) {
        _ = awaiting.withLock { $0.removeValue(forKey: id) }
    }

    /// A workflow event line from the incident log (written by `esafety incidents ...`).
    public func workflowLine(_ line: Substring) {
        // Every line starts `{"event":"NAME","id":"ID"` (JSONText's fixed key order).
        let head = #"{"event":""#
        guard settings.overdueRepeat > 0, line.hasPrefix(head) else { return }
        let event = line.dropFirst(head.count).prefix { $0 != "\"" }
        guard let action = Workflow.Action(rawValue: String(event)), action.isResponse,
            let r = line.range(of: #""id":""#), let end = line[r.upperBound...].firstIndex(of: "\"")
        else { return }
        responded(id: String(line[r.upperBound..<end]))
    }

    /// Queues a repeat alert for each incident past its due time and still unacknowledged
    /// (the record, with `"alert":"overdue"` added). `now` is seconds since 1970.
    func checkOverdue(now: Double = Clock.now()) {
        guard settings.overdueRepeat > 0 else { return }
        let due = awaiting.withLock { a -> [(String, String)] in
            var out: [(String, String)] = []
            for (id, w) in a where now >= w.next {
                out.append((id, String(w.record.utf8.dropLast())! + ",\"alert\":\"overdue\"}"))
                a[id]!.next = now + settings.overdueRepeat
            }
            return out
        }
        guard !due.isEmpty else { return }
        state.withLock { s in
            for (id, payload) in due {
                for c in settings.commands where s.pending.count < Self.bound {
                    s.pending.append(Attempt(payload: payload, command: c, number: 0, notBefore: 0, id: id))
                }
            }
        }
        health.withLock { $0.overdueAlerts += due.count }
        logger.warning(
            "incidents overdue and not acknowledged; alerting again",
            metadata: ["incidents": "\(due.map(\.0))"]
        )
        wakeup.signal()
    }

    private func loop() {
        var nextOverdueCheck = 0.0
        while true {
            let now = Clock.monotonic()
            let (next, wait, stop) = state.withLock { s -> (Attempt?, Double, Bool) in
                if let i = s.pending.firstIndex(where: { $0.notBefore <= now }) {
                    return (s.pending.remove(at: i), 0, s.stop)
                }
                let soonest = s.pending.map(\.notBefore).min().map { $0 - now } ?? 60
                return (nil, soonest, s.stop)
            }
            if let a = next {
                run(a)
                continue
            }
            // Stopping: what is due has been tried; retries still waiting are given up, loudly.
            if stop {
                let left = state.withLock { s -> Int in
                    defer { s.pending.removeAll() }
                    return s.pending.count
                }
                if left > 0 {
                    health.withLock { $0.failed += left }
                    logger.error(
                        Logger.Message(
                            stringLiteral:
                                "stopping with alerts still waiting to be retried; they were not sent (the incidents "
                                + "are in "
                                + "the log)"
                        ),
                        metadata: ["alerts": "\(left)"]
                    )
                }
                break
            }
            if settings.overdueRepeat > 0 && Clock.monotonic() >= nextOverdueCheck {
                nextOverdueCheck = Clock.monotonic() + min(60, settings.overdueRepeat / 2)
                checkOverdue()
                continue
            }
            let untilCheck = settings.overdueRepeat > 0 ? max(0.01, nextOverdueCheck - Clock.monotonic()) : 60
            wakeup.wait(milliseconds: Int32(max(1, min(60_000, min(wait, untilCheck) * 1000))))
            wakeup.drain()
        }
    }

    private func run(_ a: Attempt) {
        let error: String?
        if let spool = settings.spool {
            error = AlertSpool(folder: spool).put(a.payload, command: a.command.name, incident: a.id)
        } else {
            error = ChildProcess.run(a.command.argv, input: a.payload, timeout: settings.timeout)
        }
        if error == nil {
            health.withLock { $0.sent += 1 }
            // A spooled alert's outcome is recorded by its delivery, not here (counted once).
            if settings.spool == nil { record(a.command.name, true, nil) }
            return
        }
        let why = error!
        if a.number < settings.retries {
            var retry = a
            retry.number += 1
            retry.notBefore = Clock.monotonic() + settings.backoff * Double(1 << (a.number))
            state.withLock { $0.pending.append(retry) }
            health.withLock {
                $0.retried += 1
                $0.lastError = "\(a.command.name): \(why)"
            }
            logger.warning(
                "alert command failed; will retry",
                metadata: [
                    "alert.command": "\(a.command.name)", "error": "\(why)", "attempt": "\(a.number + 1)",
                    "incident": "\(a.id)",
                ]
            )
            return
        }
        let message = "\(why) after \(a.number + 1) attempt(s)"
        health.withLock {
            $0.failed += 1
            $0.lastError = "\(a.command.name): \(message)"
        }
        record(a.command.name, false, message)
        logger.error(
            "ALERT NOT SENT: the alert command failed every attempt",
            metadata: ["alert.command": "\(a.command.name)", "error": "\(message)", "incident": "\(a.id)"]
        )
    }
}
