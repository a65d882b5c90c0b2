import CShims
import Classifier
import Glibc
import LogFormats
import Logging
import Pipeline
import Synchronization
import SystemSupport
import Threads

/// Reads log lines from the ingest sockets and runs them through the pipeline.
///
/// Why threads and `poll`, not SwiftNIO: the ingest path needs two things NIO hides: on
/// shutdown, reading each connection until the kernel says "would block" (so every line
/// already sent is drained), and the count of bytes still queued in a socket (so `status`
/// can name the clients we are behind on). Both are one system call on a file descriptor.
/// Backpressure is structural: a worker reads only when it has processed the last read,
/// so when classification falls behind, lines wait in the kernel's socket buffer and the
/// sender blocks; nothing is dropped.
final class IngestServer: @unchecked Sendable {
    struct Listener {
        var fd: Int32
        var socket: DaemonConfiguration.IngestSocket
        /// False for sockets systemd passed us: systemd owns their path.
        var ownsPath: Bool
    }

    let streams: [Listener]
    let datagrams: [Listener]
    let workers: [IngestWorker]
    let stats: IngestStats
    let logger: Logger
    /// Open stream connections allowed at once, over all stream sockets.
    let maxConnections: Int
    private let stopping = Atomic<Bool>(false)
    private let wakeup = Wakeup()
    private var acceptor: PosixThread?
    private let nextID = Atomic<Int>(1)

    init(
        streams: [Listener],
        datagrams: [Listener],
        workers count: Int,
        holder: GenerationHolder,
        sink: MatchSink,
        stats: IngestStats,
        maxLine: Int,
        maxConnections: Int = 1000,
        logger: Logger
    ) {
        // Keep 64 descriptors for the rest (the log, the lists, control clients, reloads), so
        // that a flood of clients can never leave the control socket unable to answer.
        var limit = rlimit()
        let available =
            getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0
            ? Int(clamping: limit.rlim_cur) - 64 : maxConnections
        self.maxConnections = max(1, min(maxConnections, available))
        self.streams = streams
        self.datagrams = datagrams
        self.stats = stats
        self.logger = logger
        var workers: [IngestWorker] = []
        for i in 0..<max(1, count) {
            workers.append(
                IngestWorker(
                    index: i,
                    holder: holder,
                    sink: sink,
                    stats: stats,
                    maxLine: maxLine,
                    datagrams: i == 0 ? datagrams : [],
                    logger: logger
                )
            )
        }
        self.workers = workers
    }

    func start() {
        for w in workers { w.start() }
        acceptor = PosixThread(name: "esafety-accept") { [self] in acceptLoop() }
    }

    private func acceptLoop() {
        var fds = streams.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        fds.append(pollfd(fd: wakeup.fd, events: Int16(POLLIN), revents: 0))
        var next = 0
        // A descriptor kept in reserve: when the process is out of them (EMFILE), it is freed
        // to take one waiting connection and close it, so the sender learns at once, and the
        // listeners rest for a moment instead of waking this thread in a loop.
        var spare = open("/dev/null", O_RDONLY | O_CLOEXEC)
        var restUntil = 0.0
        var lastWarning = -Double.infinity
        func refuse(_ fd: Int32, _ why: String) {
            close(fd)
            stats.refusedConnections.wrappingAdd(1, ordering: .relaxed)
            if Clock.monotonic() - lastWarning >= 60 {
                lastWarning = Clock.monotonic()
                logger.warning(
                    "ingest connection refused",
                    metadata: [
                        "reason": "\(why)", "refused.total": "\(stats.refusedConnections.load(ordering: .relaxed))",
                    ]
                )
            }
        }
        // Accepts every connection waiting on a listener; the worker with the fewest
        // connections takes each.
        func acceptWaiting(_ listener: Listener) {
            while true {
                let fd = esafety_accept(listener.fd)
                if fd < 0 {
                    guard errno == EMFILE || errno == ENFILE else { break }
                    if spare >= 0 { close(spare) }
                    let shed = esafety_accept(listener.fd)
                    spare = open("/dev/null", O_RDONLY | O_CLOEXEC)
                    if shed >= 0 { refuse(shed, "out of file descriptors (raise LimitNOFILE)") }
                    restUntil = Clock.monotonic() + 0.1
                    break
                }
                let open = workers.reduce(0) { $0 + $1.connectionCount }
                if open >= maxConnections {
                    refuse(fd, "max_connections (\(maxConnections)) reached")
                    continue
                }
                let (peer, _) = Sockets.peer(fd)
                let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
                let worker = workers.min { $0.connectionCount < $1.connectionCount } ?? workers[next % workers.count]
                next += 1
                worker.adopt(fd: fd, id: id, socket: listener.socket, peer: peer)
            }
        }
        while !stopping.load(ordering: .acquiring) {
            let resting = Clock.monotonic() < restUntil
            for i in streams.indices { fds[i].events = resting ? 0 : Int16(POLLIN) }
            let rc = poll(&fds, nfds_t(fds.count), resting ? 100 : 1000)
            if rc < 0 && errno != EINTR {
                logger.error("poll failed", metadata: ["error": "\(Sockets.errnoText())"])
                break
            }
            if stopping.load(ordering: .acquiring) { break }
            for (i, listener) in streams.enumerated() where fds[i].revents & Int16(POLLIN) != 0 {
                acceptWaiting(listener)
            }
        }
        // A sender whose connect completed before the stop has had its connection made by
        // the kernel, and may already have written: take those still waiting too, so the
        // workers drain their lines with the rest.
        for listener in streams { acceptWaiting(listener) }
        if spare >= 0 { close(spare) }
        // Stop accepting: close the listeners and remove the paths we created.
        for l in streams {
            close(l.fd)
            if l.ownsPath { Sockets.removeIfOurs(l.socket.path) }
        }
    }

    /// Stops accepting, drains every connection and datagram socket, and returns when all
    /// workers have finished. Blocking.
    func stop() {
        stopping.store(true, ordering: .releasing)
        wakeup.signal()
        acceptor?.join()
        for w in workers { w.stop() }
        for w in workers { w.join() }
        for l in datagrams {
            close(l.fd)
            if l.ownsPath { Sockets.removeIfOurs(l.socket.path) }
        }
    }
}

/// One ingest thread: its connections, the datagram sockets (worker 0), a pipeline each.
final class IngestWorker: @unchecked Sendable {
    final class Connection {
        let fd: Int32
        let id: Int
        let pipeline: LinePipeline
        /// A datagram socket's receive buffer (streams read into the worker's `readBuffer`).
        let buffer: UnsafeMutableRawBufferPointer
        /// A stream's line begun in an earlier read and not yet ended.
        var carry: [UInt8] = []
        var skipping = false
        var lines = 0
        var bytes = 0
        var fullReads = 0
        var queued = 0
        /// The peer closed (or the read failed): nothing more will come.
        var ended = false
        let isDatagram: Bool
        /// Whether the first bytes were looked at for `FollowProtocol.hello`.
        var helloChecked = false
        /// A follower's connection: esafetyd tells it how many bytes it has processed.
        var acknowledges = false
        /// Bytes received after the hello (all reads, not reset by `flush`).
        var received = 0

        init(fd: Int32, id: Int, pipeline: LinePipeline, capacity: Int, isDatagram: Bool) {
            self.fd = fd
            self.id = id
            self.pipeline = pipeline
            self.buffer = .allocate(byteCount: max(capacity, 1), alignment: 16)
            self.isDatagram = isDatagram
        }

        deinit { buffer.deallocate() }
    }

    let index: Int
    let holder: GenerationHolder
    let sink: MatchSink
    let stats: IngestStats
    let maxLine: Int
    let capacity: Int
    /// One read buffer for all of this worker's stream connections.
    let readBuffer: UnsafeMutableRawBufferPointer
    let logger: Logger
    private let pending = Mutex<[(Int32, Int, DaemonConfiguration.IngestSocket, String)]>([])
    private let count = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let wakeup = Wakeup()
    private var thread: PosixThread?
    private var connections: [Connection] = []
    private let datagramListeners: [IngestServer.Listener]

    init(
        index: Int,
        holder: GenerationHolder,
        sink: MatchSink,
        stats: IngestStats,
        maxLine: Int,
        datagrams: [IngestServer.Listener],
        logger: Logger
    ) {
        self.index = index
        self.holder = holder
        self.sink = sink
        self.stats = stats
        self.maxLine = maxLine
        self.capacity = max(256 * 1024, maxLine * 2)
        self.readBuffer = .allocate(byteCount: max(256 * 1024, maxLine * 2), alignment: 16)
        self.datagramListeners = datagrams
        self.logger = logger
    }

    deinit { readBuffer.deallocate() }

    var connectionCount: Int { count.load(ordering: .relaxed) }

    func start() {
        for l in datagramListeners {
            let pipeline = LinePipeline(
                source: "\(l.socket.name):datagram",
                format: l.socket.format,
                holder: holder,
                sink: sink
            )
            connections.append(Connection(fd: l.fd, id: 0, pipeline: pipeline, capacity: 256 * 1024, isDatagram: true))
        }
        thread = PosixThread(name: "esafety-ingest\(index)") { [self] in
            loop()
        }
    }

    func adopt(fd: Int32, id: Int, socket: DaemonConfiguration.IngestSocket, peer: String) {
        count.wrappingAdd(1, ordering: .relaxed)
        stats.opened(IngestStats.Connection(id: id, socket: socket.name, peer: peer, connectedAt: Clock.now()))
        pending.withLock { $0.append((fd, id, socket, peer)) }
        wakeup.signal()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wakeup.signal()
    }

    func join() { thread?.join() }

    private func loop() {
        var fds: [pollfd] = []
        while true {
            let stop = stopping.load(ordering: .acquiring)
            for (fd, id, socket, peer) in pending.withLock({
                p -> [(Int32, Int, DaemonConfiguration.IngestSocket, String)] in
                defer { p.removeAll() }
                return p
            }) {
                let source = "\(socket.name):\(peer.split(separator: "[").first.map(String.init) ?? peer)"
                let pipeline = LinePipeline(source: source, format: socket.format, holder: holder, sink: sink)
                connections.append(Connection(fd: fd, id: id, pipeline: pipeline, capacity: 0, isDatagram: false))
            }
            if stop { break }
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeup.fd, events: Int16(POLLIN), revents: 0))
            for c in connections { fds.append(pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)) }
            let rc = poll(&fds, nfds_t(fds.count), 1000)
            if rc < 0 {
                if errno == EINTR { continue }
                logger.error("poll failed", metadata: ["error": "\(Sockets.errnoText())"])
                break
            }
            if fds[0].revents != 0 { wakeup.drain() }
            var closed: [Int] = []
            for (i, c) in connections.enumerated() {
                let ev = fds[i + 1].revents
                guard ev != 0 else { continue }
                if !service(c, drain: false) { closed.append(i) }
            }
            flush()
            for i in closed.reversed() { finish(connections.remove(at: i)) }
        }
        // Shutting down: read every connection until the kernel has nothing more, until all
        // of them have been quiet together for 200 ms (a sender may be in the middle of a
        // write), each closing as its peer does. One poll over all of them, so idle
        // connections cost one quiet period in all, not one each; five seconds at most.
        let deadline = Clock.monotonic() + 5
        var open = connections
        while !open.isEmpty && Clock.monotonic() < deadline {
            for c in open { while service(c, drain: true), Clock.monotonic() < deadline {} }
            for c in open where c.ended || c.isDatagram { finish(c, closeDatagram: false) }
            open.removeAll { $0.ended || $0.isDatagram }
            var fds = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if fds.isEmpty || poll(&fds, nfds_t(fds.count), 200) <= 0 { break }
        }
        for c in open { finish(c, closeDatagram: false) }
        connections.removeAll()
        flush()
    }

    /// Reads once (or, draining, until would-block) and processes. False when the peer
    /// closed or failed, or, draining, when nothing more is waiting.
    private func service(_ c: Connection, drain: Bool) -> Bool {
        let arrival = Clock.now()
        if c.isDatagram {
            var got = false
            for _ in 0..<256 {
                let n = recv(c.fd, c.buffer.baseAddress, c.buffer.count, Int32(MSG_DONTWAIT))
                if n <= 0 { break }
                got = true
                c.bytes += n
                var len = n
                while len > 0, c.buffer[len - 1] == 0x0A || c.buffer[len - 1] == 0x00 { len -= 1 }
                let message = UnsafeRawBufferPointer(rebasing: c.buffer[0..<len])
                let before = c.pipeline.counters.received
                let used = c.pipeline.processLines(message, arrival: arrival, maxLine: maxLine)
                if used < len {
                    let rest = UnsafeRawBufferPointer(rebasing: message[used...])
                    if rest.count > maxLine {
                        c.pipeline.countTooLong()
                    } else {
                        c.pipeline.processRecords(rest, arrival: arrival)
                    }
                }
                c.lines += c.pipeline.counters.received - before
            }
            return drain ? got : true
        }
        // Streams share the worker's read buffer; a connection keeps only the start of a line
        // that has not ended yet (`carry`), so an idle or quiet connection costs almost nothing.
        let k = c.carry.count
        if k > 0 {
            c.carry.withUnsafeBytes { readBuffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: k) }
        }
        let free = readBuffer.count - k
        let n = read(c.fd, readBuffer.baseAddress! + k, free)
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return !drain }
            logger.warning(
                "ingest read failed",
                metadata: ["connection": "\(c.id)", "error": "\(Sockets.errnoText())"]
            )
            c.ended = true
            return false
        }
        if n == 0 {
            // End of stream: a last line without a newline is still a line.
            if k > 0 && !c.skipping {
                c.pipeline.refreshGeneration()
                let line = UnsafeRawBufferPointer(rebasing: readBuffer[0..<k])
                if line.count > maxLine {
                    c.pipeline.countTooLong()
                } else {
                    c.pipeline.processRecords(line, arrival: arrival)
                }
                c.lines += 1
            }
            c.carry = []
            c.ended = true
            if c.acknowledges { acknowledge(c, bytes: c.received) }
            return false
        }
        c.bytes += n
        c.received += n
        if n == free {
            c.fullReads += 1
            c.queued = Sockets.queued(c.fd)
        } else {
            c.fullReads = 0
            c.queued = 0
        }
        let filled = k + n
        var start = 0
        if !c.helloChecked {
            // `esafety follow` opens with its hello and reads acknowledgements back.
            let hello = FollowProtocol.hello
            let m = min(filled, hello.count)
            let same = hello.withUnsafeBytes { memcmp(readBuffer.baseAddress!, $0.baseAddress!, m) == 0 }
            if same && filled < hello.count {
                c.carry = Array(UnsafeRawBufferPointer(rebasing: readBuffer[0..<filled]))
                return true
            }
            c.helloChecked = true
            if same {
                c.acknowledges = true
                c.received -= hello.count
                start = hello.count
            }
        }
        if c.skipping {
            guard let nl = memchr(readBuffer.baseAddress!, 0x0A, filled) else {
                c.carry.removeAll(keepingCapacity: false)
                return true
            }
            start = readBuffer.baseAddress!.distance(to: UnsafeMutableRawPointer(nl)) + 1
            c.skipping = false
        }
        let before = c.pipeline.counters.received
        let used = c.pipeline.processLines(
            UnsafeRawBufferPointer(rebasing: readBuffer[start..<filled]),
            arrival: arrival,
            maxLine: maxLine
        )
        c.lines += c.pipeline.counters.received - before
        let consumed = start + used
        let rest = filled - consumed
        if rest > maxLine {
            // Longer than the limit with no end in sight: count it, skip to the next newline.
            c.pipeline.countTooLong()
            c.lines += 1
            c.skipping = true
            c.carry.removeAll(keepingCapacity: false)
        } else if rest == 0 {
            c.carry.removeAll(keepingCapacity: c.carry.capacity <= 4096)
        } else {
            c.carry.removeAll(keepingCapacity: c.carry.capacity <= 4096 || rest > 4096)
            c.carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: readBuffer[consumed..<filled]))
        }
        if c.acknowledges { acknowledge(c, bytes: c.received - c.carry.count) }
        return true
    }

    /// Tells a follower that every line in its first `bytes` bytes has been processed (handed
    /// to the incident path): `ack N`. Never blocks: a follower that does not read its
    /// acknowledgements gets a later one, which covers the earlier.
    private func acknowledge(_ c: Connection, bytes: Int) {
        var text = Array("ack \(bytes)\n".utf8)
        _ = text.withUnsafeMutableBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
    }

    private func finish(_ c: Connection, closeDatagram: Bool = true) {
        stats.add(source: c.pipeline.source, c.pipeline.takeCounters())
        if !c.isDatagram {
            stats.update(connection: c.id, lines: c.lines, bytes: c.bytes, queued: 0, fullReads: 0)
            stats.closed(connection: c.id)
            close(c.fd)
            count.wrappingSubtract(1, ordering: .relaxed)
        }
    }

    private func flush() {
        for c in connections where c.lines > 0 || c.bytes > 0 {
            stats.add(source: c.pipeline.source, c.pipeline.takeCounters())
            if !c.isDatagram {
                stats.update(connection: c.id, lines: c.lines, bytes: c.bytes, queued: c.queued, fullReads: c.fullReads)
            }
            c.lines = 0
            c.bytes = 0
        }
    }
}
