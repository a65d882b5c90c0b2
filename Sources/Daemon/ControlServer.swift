import CShims
import Classifier
import Dispatch
import Glibc
import LogFormats
import Logging
import Pipeline
import Synchronization
import SystemSupport

/// The admin-only control socket: one command line in, one JSON line out.
///
/// Commands: `status` (counters, generation, sources, slow clients, reloads), `reload`
/// (waits for the result), `ping`. The socket's mode and group decide who may ask.
final class ControlServer: @unchecked Sendable {
    let fd: Int32
    let path: String
    let ownsPath: Bool
    let stats: IngestStats
    let holder: GenerationHolder
    let reloader: Reloader
    let logger: Logger
    let rate = Status.RateSampler()
    /// Extra commands (the incident log's `reopen`), by name.
    let extra: Mutex<[String: @Sendable () -> String]> = Mutex([:])
    /// The incident log's and the alerts' health, for `status`, when the daemon has them.
    let health: Mutex<(@Sendable () -> (StatusReport.IncidentLogHealth?, StatusReport.AlertHealth?))?> = Mutex(nil)
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
        logger: Logger
    ) {
        self.fd = fd
        self.path = path
        self.ownsPath = ownsPath
        self.stats = stats
        self.holder = holder
        self.reloader = reloader
        self.logger = logger
    }

    func start() { thread = PosixThread(name: "esafety-control") { [self] in loop() } }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wakeup.signal()
        thread?.join()
        close(fd)
        if ownsPath { unlink(path) }
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
            if client < 0 { continue }
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
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
        let reply: String
        switch command {
        case "status":
            let (log, alerts) = health.withLock { $0 }?() ?? (nil, nil)
            reply = Status.report(stats: stats, holder: holder, rate: rate.rate, incidentLog: log, alerts: alerts).json
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
        var out = reply + "\n"
        out.withUTF8 { bytes in
            var off = 0
            while off < bytes.count {
                let w = write(client, bytes.baseAddress! + off, bytes.count - off)
                if w <= 0 { break }
                off += w
            }
        }
    }
}
