import CShims
import Classifier
import Dispatch
import Glibc
import LogFormats
import Logging
import Pipeline
import Synchronization
import SystemSupport
import Threads

/// The admin-only control socket: one command line in, one JSON line out.
///
/// Commands: `status` (counters, generation, sources, slow clients, reloads), `reload`
/// (waits for the result), `ping`, and the incident log's `reopen`.
///
/// Who may ask is checked on every connection from the peer's credentials (SO_PEERCRED),
/// whatever the socket's mode: root, esafetyd's own account, and members of the admin
/// group (`control_socket.group`). Each client is served on a thread of its own with a short
/// deadline to send its command, so idle or slow clients, or a reload in progress, never
/// hold up anyone else's `status`.
final class ControlServer: @unchecked Sendable {
    let fd: Int32
    let path: String
    let ownsPath: Bool
    let stats: IngestStats
    let holder: GenerationHolder
    let reloader: Reloader
    let logger: Logger
    /// The group whose members may use the socket (besides root and esafetyd's account).
    let adminGroup: String?
    let rate = Status.RateSampler()
    /// Extra commands (the incident log's `reopen`), by name.
    let extra: Mutex<[String: @Sendable () -> String]> = Mutex([:])
    /// The incident log's and the alerts' health, for `status`, when the daemon has them.
    let health: Mutex<(@Sendable () -> (StatusReport.IncidentLogHealth?, StatusReport.AlertHealth?))?> = Mutex(nil)
    /// Clients refused for their credentials, and clients turned away because too many were
    /// being served at once.
    let refused = Atomic<Int>(0)
    let busy = Atomic<Int>(0)
    /// Clients being served now; at most `maxClients`.
    private let serving = Atomic<Int>(0)
    static let maxClients = 32
    /// How long a client has to send its command.
    static let commandDeadline = timeval(tv_sec: 2, tv_usec: 0)
    private let stopping = Atomic<Bool>(false)
    private let wakeup = Wakeup()
    private var thread: PosixThread?

    init(
        fd: Int32,
        path: String,
        ownsPath: Bool,
        stats: IngestStats,
        holder: GenerationHolder,
        reloader: Reloader,
        adminGroup: String?,
        logger: Logger
    ) {
        self.fd = fd
        self.path = path
        self.ownsPath = ownsPath
        self.stats = stats
        self.holder = holder
        self.reloader = reloader
        self.adminGroup = adminGroup
        self.logger = logger
    }

    func start() { thread = PosixThread(name: "esafety-control") { [self] in loop() } }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wakeup.signal()
        thread?.join()
        close(fd)
        if ownsPath { Sockets.removeIfOurs(path) }
    }

    private func loop() {
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeup.fd, events: Int16(POLLIN), revents: 0),
        ]
        var lastSample = 0.0
        while !stopping.load(ordering: .acquiring) {
            _ = poll(&fds, 2, 1000)
            let t = Clock.monotonic()
            if t - lastSample >= 5 {
                rate.sample(time: t, received: stats.totals.received)
                lastSample = t
            }
            if stopping.load(ordering: .acquiring) { break }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = esafety_accept_blocking(fd)
            if client < 0 {
                // Out of descriptors: wait for one to be freed rather than spin.
                if errno == EMFILE || errno == ENFILE { usleep(50_000) }
                continue
            }
            guard serving.wrappingAdd(1, ordering: .relaxed).newValue <= Self.maxClients else {
                serving.wrappingSubtract(1, ordering: .relaxed)
                busy.wrappingAdd(1, ordering: .relaxed)
                reply(#"{"error":"busy: too many control clients at once; try again"}"#, to: client)
                close(client)
                continue
            }
            PosixThread(name: "esafety-ctl-client") { [self] in
                defer { serving.wrappingSubtract(1, ordering: .relaxed) }
                handle(client, refusal: refusal(client))
                close(client)
            }.detach()
        }
    }

    /// Why this peer may not use the socket, as the JSON to answer with; nil when it may.
    private func refusal(_ client: Int32) -> String? {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        guard esafety_peercred(client, &pid, &uid, &gid) == 0 else {
            return #"{"error":"permission denied: the peer's credentials cannot be read"}"#
        }
        if uid == 0 || uid == getuid() { return nil }
        if let adminGroup, Self.isMember(uid: uid, primaryGID: gid, of: adminGroup) { return nil }
        refused.wrappingAdd(1, ordering: .relaxed)
        logger.warning(
            "control socket: a client was refused",
            metadata: ["peer.uid": "\(uid)", "peer.pid": "\(pid)", "control.group": "\(adminGroup ?? "none")"]
        )
        return #"{"error":"permission denied: the control socket is for root, esafetyd's account and the "#
            + #"administrators' group"}"#
    }

    /// Whether the account with `uid` belongs to `group` (its primary group or a supplementary one).
    static func isMember(uid: UInt32, primaryGID: UInt32, of group: String) -> Bool {
        guard let gr = getgrnam(group) else { return false }
        let gid = gr.pointee.gr_gid
        if primaryGID == gid { return true }
        guard let pw = getpwuid(uid), let name = pw.pointee.pw_name else { return false }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: 64)
        if getgrouplist(name, pw.pointee.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, pw.pointee.pw_gid, &groups, &count)
        }
        return groups.prefix(Int(max(0, count))).contains(gid)
    }

    private func reply(_ text: String, to client: Int32) {
        var out = text + "\n"
        out.withUTF8 { bytes in
            var off = 0
            while off < bytes.count {
                let w = send(client, bytes.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
                if w <= 0 { break }
                off += w
            }
        }
    }

    /// Reads the client's command, then answers it, or with `refusal` when it may not ask
    /// (after the command is read, so the client hears why rather than a closed socket).
    private func handle(_ client: Int32, refusal: String?) {
        var timeout = Self.commandDeadline
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 1024)
        var n = 0
        while n < buffer.count {
            let r = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress! + n, $0.count - n) }
            if r <= 0 { break }
            n += r
            if buffer[0..<n].contains(0x0A) { break }
        }
        let command =
            String(decoding: buffer[0..<n], as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init)?
            .trimmingCharacters(in: " \t") ?? ""
        if let refusal {
            self.reply(refusal, to: client)
            return
        }
        let reply: String
        switch command {
        case "status":
            let (log, alerts) = health.withLock { $0 }?() ?? (nil, nil)
            reply =
                Status.report(
                    stats: stats,
                    holder: holder,
                    rate: rate.rate,
                    incidentLog: log,
                    controlRefused: refused.load(ordering: .relaxed),
                    alerts: alerts
                ).json
        case "ping":
            reply = #"{"ok":true}"#
        case "reload":
            let box = Mutex<IngestStats.Reload?>(nil)
            let done = DispatchSemaphore(value: 0)
            let reloader = self.reloader
            Task {
                let r = await reloader.reload(reason: "control socket")
                box.withLock { $0 = r }
                done.signal()
            }
            done.wait()
            let r = box.withLock { $0 }!
            reply = StatusReport.Reload(r).json
        default:
            if let action = extra.withLock({ $0[command] }) {
                reply = action()
            } else {
                reply = #"{"error":"unknown command"}"#
            }
        }
        self.reply(reply, to: client)
    }
}
