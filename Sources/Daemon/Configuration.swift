import Classifier
import Glibc
import Incidents
import LogFormats
import Logging
import SystemSupport
import Yams

/// Everything esafetyd can be told, with a default for every option, so that `esafetyd`
/// with no file runs on the bundled lists. Loaded and validated by `load(path:)`, which
/// the daemon, `--check-config` and `esafety status` all call.
public struct DaemonConfiguration: Sendable, Equatable {
    /// A socket log lines arrive on.
    public struct IngestSocket: Sendable, Equatable {
        public enum Kind: String, Sendable { case stream, datagram }
        public var path: String
        public var kind: Kind
        /// Pins the format of every line on this socket; nil detects per line.
        public var format: LogFormat?
        public var mode: UInt32 = 0o660
        /// Group that may write (the proxy's and resolver's); nil keeps the daemon's group.
        public var group: String?
        /// Name used in status and incidents (`ingest`, `dns`...).
        public var name: String

        public init(
            path: String,
            kind: Kind,
            format: LogFormat?,
            mode: UInt32 = 0o660,
            group: String? = nil,
            name: String
        ) {
            self.path = path
            self.kind = kind
            self.format = format
            self.mode = mode
            self.group = group
            self.name = name
        }
    }

    public var lists: [String] = []
    public var snapshot: String?
    public var ingest: [IngestSocket]
    public var controlSocket: String
    var controlMode: UInt32 = 0o660
    /// Group allowed to use the control socket (status, reload); nil: the daemon's group.
    var controlGroup: String?
    var maxLineLength = 65536
    /// Stream connections open at once, over all ingest sockets; more are closed at once and
    /// counted (`connections_refused` in status).
    var maxConnections = 1000
    public var incidentLog: String
    var stateDirectory: String
    /// Monitoring counters for the report (lines per source per minute, reloads, restarts);
    /// nil: `counters.jsonl` in the state directory.
    var countersFile: String?
    var countersInterval = 60.0
    /// Instant alerts: commands run with each new incident of the alerted severities.
    public var alerts = AlertDispatcher.Settings()
    public var countersPath: String { countersFile ?? stateDirectory + "/counters.jsonl" }
    /// A reload is refused when a locked category loses more than this fraction of entries.
    var maxLockedShrink = 0.5
    /// Ingest worker threads.
    public var workers = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    public var logLevel: Logger.Level = .info
    /// Groups, severities, windows and deadlines for incidents.
    public var policy = Policy()
    /// Group that may read the incident log (mode 0640); nil keeps the daemon's group.
    public var incidentLogGroup: String?
    /// Seconds within which incidents below high severity (and events) are fsync'd.
    var incidentSyncInterval = 5.0
    /// People whose recent requests are kept in memory at most (about 2 KB each).
    public var maxPeople = 200_000
    /// Records waiting to be written, at most (`incidents.queue`): past it the incident path
    /// waits (and so ingest); only while the log cannot be written are lower ones dropped, counted.
    public var incidentQueue = 100_000
    /// `address device-name` and `address user` mapping files.
    var deviceMap: String?
    var userMap: String?
    /// The file this configuration came from, if any.
    public var path: String?

    public init() {
        let run = Self.defaultRuntimeDirectory()
        let state = Self.defaultStateDirectory()
        ingest = [
            IngestSocket(path: run + "/ingest.sock", kind: .stream, format: nil, name: "ingest"),
            IngestSocket(path: run + "/ingest.dgram", kind: .datagram, format: nil, name: "syslog"),
        ]
        controlSocket = run + "/control.sock"
        incidentLog = state + "/incidents.jsonl"
        stateDirectory = state
    }

    /// The system daemon's paths (the installed service runs with these).
    public static let systemControlSocket = "/run/esafety/control.sock"
    public static let systemStateDirectory = "/var/lib/esafety"

    /// The defaults as the tools should see them: a normal account's own paths when it runs
    /// its own esafetyd, else the system daemon's (its control socket, its incident log and
    /// counters), so `esafety status` and `esafety incidents` from a coordinator's account find
    /// the installed service without flags. `exists` is asked of paths (tests give their own).
    public static func forTools(exists: (String) -> Bool = { FileSystem.exists($0) }) -> DaemonConfiguration {
        var c = DaemonConfiguration()
        if !exists(c.controlSocket) && exists(systemControlSocket) { c.controlSocket = systemControlSocket }
        let systemLog = systemStateDirectory + "/incidents.jsonl"
        if !exists(c.incidentLog) && exists(systemLog) {
            c.incidentLog = systemLog
            c.stateDirectory = systemStateDirectory
        }
        return c
    }

    /// `$RUNTIME_DIRECTORY` (systemd), else `/run/esafety` for root, else
    /// `$XDG_RUNTIME_DIR/esafety` or `/tmp/esafety-UID`.
    static func defaultRuntimeDirectory() -> String {
        if let d = getenv("RUNTIME_DIRECTORY") {
            return String(cString: d).split(separator: ":").first.map(String.init) ?? "/run/esafety"
        }
        if getuid() == 0 { return "/run/esafety" }
        if let x = getenv("XDG_RUNTIME_DIR") { return String(cString: x) + "/esafety" }
        return "/tmp/esafety-\(getuid())"
    }

    /// `$STATE_DIRECTORY` (systemd), else `/var/lib/esafety` for root, else
    /// `$XDG_STATE_HOME/esafety` or `~/.local/state/esafety`.
    static func defaultStateDirectory() -> String {
        if let d = getenv("STATE_DIRECTORY") {
            return String(cString: d).split(separator: ":").first.map(String.init) ?? "/var/lib/esafety"
        }
        if getuid() == 0 { return "/var/lib/esafety" }
        if let x = getenv("XDG_STATE_HOME") { return String(cString: x) + "/esafety" }
        if let h = getenv("HOME") { return String(cString: h) + "/.local/state/esafety" }
        return "/tmp/esafety-\(getuid())-state"
    }

    /// The default configuration file, `/etc/esafety/esafetyd.yaml`, when it exists.
    public static let defaultPath = "/etc/esafety/esafetyd.yaml"

    /// A configuration problem, naming the file, line and option.
    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public var file: String
        public var line: Int?
        var option: String?
        public var message: String
        public var description: String {
            let place = line.map { "\(file):\($0)" } ?? file
            return option.map { "\(place): option `\($0)`: \(message)" } ?? "\(place): \(message)"
        }
    }

    /// Reads and validates a YAML configuration; unknown options are errors.
    public static func load(path: String) throws(Error) -> DaemonConfiguration {
        let text: String
        do { text = try FileSystem.readText(path, limit: 16 << 20) } catch {
            throw Error(file: path, line: nil, option: nil, message: "cannot read: \(error)")
        }
        var c = try parse(text, file: path)
        c.path = path
        return c
    }

    public static func parse(_ text: String, file: String) throws(Error) -> DaemonConfiguration {
        var c = DaemonConfiguration()
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw Error(file: file, line: nil, option: nil, message: "not valid YAML: \(error)")
        }
        guard let root else { return c }
        guard case .mapping(let map) = root else {
            throw Error(file: file, line: root.mark?.line, option: nil, message: "expected a mapping of options")
        }
        let r = Reader(file: file)
        for (keyNode, value) in map {
            let key = keyNode.string ?? ""
            switch key {
            case "lists": c.lists = try r.strings(value, key)
            case "snapshot": c.snapshot = try r.optionalString(value, key)
            case "ingest":
                guard case .sequence(let seq) = value else { throw r.error(value, key, "expected a list of sockets") }
                c.ingest = []
                for (i, item) in seq.enumerated() { c.ingest.append(try r.ingestSocket(item, "ingest[\(i)]")) }
                var seen = Set<String>()
                for s in c.ingest where !seen.insert(s.path).inserted {
                    throw r.error(value, key, "socket path \(s.path) is listed twice")
                }
            case "control_socket":
                guard case .mapping(let m) = value else { throw r.error(value, key, "expected path, mode, group") }
                for (k, v) in m {
                    let name = "control_socket.\(k.string ?? "")"
                    switch k.string ?? "" {
                    case "path": c.controlSocket = try r.string(v, name)
                    case "mode": c.controlMode = try r.mode(v, name)
                    case "group": c.controlGroup = try r.optionalString(v, name)
                    default: throw r.error(k, name, "unknown option")
                    }
                }
            case "max_line_length":
                c.maxLineLength = try r.int(value, key)
                guard (256...(16 << 20)).contains(c.maxLineLength) else {
                    throw r.error(value, key, "must be between 256 and 16777216")
                }
            case "max_connections": c.maxConnections = try r.int(value, key, 1...100_000)
            case "incident_log": c.incidentLog = try r.string(value, key)
            case "state_directory": c.stateDirectory = try r.string(value, key)
            case "counters_file": c.countersFile = try r.string(value, key)
            case "counters_interval":
                c.countersInterval = try r.double(value, key)
                guard (1...3600).contains(c.countersInterval) else {
                    throw r.error(value, key, "must be between 1 and 3600 seconds")
                }
            case "max_locked_shrink":
                c.maxLockedShrink = try r.double(value, key)
                guard (0...1).contains(c.maxLockedShrink) else {
                    throw r.error(value, key, "must be a fraction between 0 and 1")
                }
            case "workers":
                c.workers = try r.int(value, key)
                guard (1...64).contains(c.workers) else { throw r.error(value, key, "must be between 1 and 64") }
            case "incidents": try r.incidents(value, &c)
            case "alerts": try r.alerts(value, &c)
            case "log_level":
                let s = try r.string(value, key)
                guard let level = Logger.Level(rawValue: s) else {
                    throw r.error(
                        value,
                        key,
                        "unknown level \"\(s)\" (trace, debug, info, notice, warning, error, critical)"
                    )
                }
                c.logLevel = level
            default:
                throw r.error(keyNode, key, "unknown option")
            }
        }
        return c
    }

    struct Reader {
        let file: String
        func error(_ node: Node, _ option: String, _ message: String) -> Error {
            Error(file: file, line: node.mark?.line, option: option, message: message)
        }
        func string(_ n: Node, _ k: String) throws(Error) -> String {
            guard case .scalar(let s) = n else { throw error(n, k, "expected a string") }
            return s.string
        }
        func optionalString(_ n: Node, _ k: String) throws(Error) -> String? {
            if case .scalar(let s) = n, s.string == "null" || s.string == "~" || s.string.isEmpty { return nil }
            return try string(n, k)
        }
        func strings(_ n: Node, _ k: String) throws(Error) -> [String] {
            if case .scalar = n { return [try string(n, k)] }
            guard case .sequence(let seq) = n else { throw error(n, k, "expected a list of strings") }
            var out: [String] = []
            for item in seq { out.append(try string(item, k)) }
            return out
        }
        func int(_ n: Node, _ k: String) throws(Error) -> Int {
            guard let v = Int(try string(n, k)) else { throw error(n, k, "expected a whole number") }
            return v
        }
        func double(_ n: Node, _ k: String) throws(Error) -> Double {
            guard let v = Double(try string(n, k)), v.isFinite else { throw error(n, k, "expected a number") }
            return v
        }
        /// A number of seconds within `range`: every duration is range-checked, so no value
        /// that passes `--check-config` can overflow a time or turn a rule inside out.
        func seconds(_ n: Node, _ k: String, _ range: ClosedRange<Double>) throws(Error) -> Double {
            let v = try double(n, k)
            guard range.contains(v) else {
                throw error(
                    n,
                    k,
                    "must be between \(Self.text(range.lowerBound)) and \(Self.text(range.upperBound)) seconds"
                )
            }
            return v
        }
        func int(_ n: Node, _ k: String, _ range: ClosedRange<Int>) throws(Error) -> Int {
            let v = try int(n, k)
            guard range.contains(v) else {
                throw error(n, k, "must be between \(range.lowerBound) and \(range.upperBound)")
            }
            return v
        }
        static func text(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
        func mode(_ n: Node, _ k: String) throws(Error) -> UInt32 {
            let s = try string(n, k)
            guard let v = UInt32(s.hasPrefix("0o") ? String(s.dropFirst(2)) : s, radix: 8), v <= 0o777 else {
                throw error(n, k, "expected an octal file mode like \"0660\"")
            }
            return v
        }
        func severity(_ n: Node, _ k: String) throws(Error) -> Severity {
            let s = try string(n, k)
            guard let v = Severity(name: s) else {
                throw error(n, k, "unknown severity \"\(s)\" (critical, high, medium, low, info)")
            }
            return v
        }

        func routes(_ n: Node, _ k: String) throws(Error) -> [Severity: [String]] {
            guard case .mapping(let m) = n else { throw error(n, k, "expected severity: [roles]") }
            var out: [Severity: [String]] = [:]
            for (key, v) in m { out[try severity(key, k)] = try strings(v, "\(k).\(key.string ?? "")") }
            return out
        }

        func group(_ n: Node, _ k: String) throws(Error) -> Policy.Group {
            guard case .mapping(let m) = n else {
                throw error(
                    n,
                    k,
                    "expected name, networks, users, categories, severity_shift, minimum_severity, routes"
                )
            }
            var g = Policy.Group(name: "")
            for (key, v) in m {
                let name = "\(k).\(key.string ?? "")"
                switch key.string ?? "" {
                case "name": g.name = try string(v, name)
                case "networks":
                    for text in try strings(v, name) {
                        guard let net = Policy.network(text) else {
                            throw error(v, name, "not an IPv4 or IPv6 network: \(text)")
                        }
                        g.networks.append(net)
                    }
                case "users": g.users = try strings(v, name)
                case "severity_shift":
                    g.severityShift = try int(v, name)
                    guard (-4...4).contains(g.severityShift) else { throw error(v, name, "must be between -4 and 4") }
                case "minimum_severity": g.minimumSeverity = try severity(v, name)
                case "categories": g.categories = Set(try strings(v, name))
                case "routes": g.routes = try routes(v, name)
                case "windows":
                    guard case .sequence(let seq) = v else { throw error(v, name, "expected a list of time windows") }
                    for (i, item) in seq.enumerated() { g.windows.append(try window(item, "\(name)[\(i)]")) }
                default: throw error(key, name, "unknown option")
                }
            }
            guard !g.name.isEmpty else { throw error(n, k + ".name", "every group needs a name") }
            return g
        }

        static let dayNames = ["mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7]

        func minutes(_ n: Node, _ k: String) throws(Error) -> Int {
            let s = try string(n, k)
            let parts = s.split(separator: ":")
            guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...24).contains(h),
                (0..<60).contains(m), h * 60 + m <= 1440
            else {
                throw error(n, k, "expected a time like \"08:30\"")
            }
            return h * 60 + m
        }

        func window(_ n: Node, _ k: String) throws(Error) -> Policy.TimeWindow {
            guard case .mapping(let m) = n else {
                throw error(n, k, "expected name, days, start, end, severity_shift, routes")
            }
            var w = Policy.TimeWindow(name: "")
            for (key, v) in m {
                let name = "\(k).\(key.string ?? "")"
                switch key.string ?? "" {
                case "name": w.name = try string(v, name)
                case "days":
                    var days = Set<Int>()
                    for d in try strings(v, name) {
                        guard let n = Self.dayNames[String(d.lowercased().prefix(3))] else {
                            throw error(v, name, "unknown day \(d)")
                        }
                        days.insert(n)
                    }
                    w.days = days
                case "start": w.start = try minutes(v, name)
                case "end": w.end = try minutes(v, name)
                case "severity_shift": w.severityShift = try int(v, name, -4...4)
                case "routes": w.routes = try routes(v, name)
                default: throw error(key, name, "unknown option")
                }
            }
            guard !w.name.isEmpty else { throw error(n, k + ".name", "every window needs a name") }
            return w
        }

        func alerts(_ n: Node, _ c: inout DaemonConfiguration) throws(Error) {
            guard case .mapping(let m) = n else { throw error(n, "alerts", "expected a mapping") }
            for (key, v) in m {
                let name = "alerts.\(key.string ?? "")"
                switch key.string ?? "" {
                case "severities":
                    guard case .sequence(let seq) = v else { throw error(v, name, "expected a list of severities") }
                    var set = Set<Severity>()
                    for item in seq { set.insert(try severity(item, name)) }
                    c.alerts.severities = set
                case "rate_limit": c.alerts.rateLimit = try seconds(v, name, 0...86400)
                case "timeout":
                    c.alerts.timeout = try double(v, name)
                    guard c.alerts.timeout > 0 && c.alerts.timeout <= 300 else {
                        throw error(v, name, "must be between 0 and 300 seconds")
                    }
                case "retries":
                    c.alerts.retries = try int(v, name)
                    guard (0...10).contains(c.alerts.retries) else { throw error(v, name, "must be between 0 and 10") }
                case "backoff": c.alerts.backoff = try seconds(v, name, 0.1...3600)
                case "spool":
                    let folder = try string(v, name)
                    guard folder.hasPrefix("/") else { throw error(v, name, "must be an absolute path") }
                    c.alerts.spool = folder
                case "overdue_repeat":
                    c.alerts.overdueRepeat = try double(v, name)
                    guard c.alerts.overdueRepeat == 0 || c.alerts.overdueRepeat >= 1 else {
                        throw error(v, name, "must be 0 (off) or at least 1 second")
                    }
                case "commands":
                    guard case .sequence(let seq) = v else {
                        throw error(v, name, "expected a list of {name, command}")
                    }
                    c.alerts.commands = []
                    for (i, item) in seq.enumerated() {
                        let where_ = "\(name)[\(i)]"
                        guard case .mapping(let cm) = item else {
                            throw error(item, where_, "expected name and command")
                        }
                        var command = AlertDispatcher.Command(name: "", argv: [])
                        for (ck, cv) in cm {
                            switch ck.string ?? "" {
                            case "name": command.name = try string(cv, where_ + ".name")
                            case "command": command.argv = try strings(cv, where_ + ".command")
                            default: throw error(ck, where_, "unknown option (expected name, command)")
                            }
                        }
                        guard !command.argv.isEmpty else {
                            throw error(
                                item,
                                where_ + ".command",
                                "every alert needs a command (a list: program and arguments)"
                            )
                        }
                        // esafetyd runs commands with a fixed PATH and no shell: name the program.
                        guard command.argv[0].hasPrefix("/") else {
                            throw error(
                                item,
                                where_ + ".command",
                                "the program must be an absolute path (such as /usr/local/bin/esafety-alert-mail), "
                                    + "not \(command.argv[0])"
                            )
                        }
                        if command.name.isEmpty { command.name = command.argv[0] }
                        c.alerts.commands.append(command)
                    }
                default: throw error(key, name, "unknown option")
                }
            }
        }

        func incidents(_ n: Node, _ c: inout DaemonConfiguration) throws(Error) {
            guard case .mapping(let m) = n else { throw error(n, "incidents", "expected a mapping") }
            for (key, v) in m {
                let name = "incidents.\(key.string ?? "")"
                switch key.string ?? "" {
                case "deduplication_window": c.policy.deduplicationWindow = try seconds(v, name, 1...86400)
                case "repetition_hits": c.policy.repetitionHits = try int(v, name, 1...1000)
                case "repetition_window": c.policy.repetitionWindow = try seconds(v, name, 1...604_800)
                case "context_window":
                    c.policy.contextWindow = try double(v, name)
                    guard (0...7200).contains(c.policy.contextWindow) else {
                        throw error(v, name, "must be between 0 and 7200 seconds")
                    }
                case "log_group": c.incidentLogGroup = try optionalString(v, name)
                case "sync_interval":
                    c.incidentSyncInterval = try double(v, name)
                    guard (0.25...300).contains(c.incidentSyncInterval) else {
                        throw error(v, name, "must be between 0.25 and 300 seconds")
                    }
                case "max_people": c.maxPeople = try int(v, name, 100...10_000_000)
                case "queue": c.incidentQueue = try int(v, name, 1_000...10_000_000)
                case "devices": c.deviceMap = try optionalString(v, name)
                case "users": c.userMap = try optionalString(v, name)
                case "deadlines":
                    guard case .mapping(let dm) = v else { throw error(v, name, "expected severity: seconds") }
                    for (sk, sv) in dm {
                        // A minute to a year: a due time is always a real time.
                        c.policy.deadlines[try severity(sk, name)] = try seconds(
                            sv,
                            "\(name).\(sk.string ?? "")",
                            60...31_536_000
                        )
                    }
                case "routes": c.policy.defaultRoutes = try routes(v, name)
                case "default_group": c.policy.defaultGroup = try group(v, name)
                case "groups":
                    guard case .sequence(let seq) = v else { throw error(v, name, "expected a list of groups") }
                    c.policy.groups = []
                    for (i, item) in seq.enumerated() { c.policy.groups.append(try group(item, "\(name)[\(i)]")) }
                default: throw error(key, name, "unknown option")
                }
            }
        }

        func ingestSocket(_ n: Node, _ k: String) throws(Error) -> IngestSocket {
            guard case .mapping(let m) = n else { throw error(n, k, "expected path, type, format, mode, group, name") }
            var path: String? = nil
            var socket = IngestSocket(path: "", kind: .stream, format: nil, name: "")
            for (key, v) in m {
                let name = "\(k).\(key.string ?? "")"
                switch key.string ?? "" {
                case "path": path = try string(v, name)
                case "type":
                    guard let kind = IngestSocket.Kind(rawValue: try string(v, name)) else {
                        throw error(v, name, "expected stream or datagram")
                    }
                    socket.kind = kind
                case "format":
                    let f = try string(v, name)
                    if f != "auto" {
                        guard let format = LogFormat(name: f) else {
                            throw error(
                                v,
                                name,
                                "unknown format \"\(f)\" (auto, squid, squid-common, dnsmasq, bind, unbound, json)"
                            )
                        }
                        socket.format = format
                    }
                case "mode": socket.mode = try mode(v, name)
                case "group": socket.group = try optionalString(v, name)
                case "name": socket.name = try string(v, name)
                default: throw error(key, name, "unknown option")
                }
            }
            guard let path, !path.isEmpty else { throw error(n, k + ".path", "every ingest socket needs a path") }
            socket.path = path
            if socket.name.isEmpty { socket.name = socket.kind == .stream ? "ingest" : "syslog" }
            return socket
        }
    }

    /// The list source: a snapshot wins, then `lists`, then the bundled `Blocklists/`.
    func listSource() throws(ListSource.LoadError) -> ListSource {
        try ListSource.resolve(lists: lists, snapshot: snapshot)
    }
}

extension Node {
    var string: String? { if case .scalar(let s) = self { return s.string } else { return nil } }
}
