import CShims
import Classifier
import Foundation
import Glibc
import LogFormats
import Logging
import Synchronization
import SystemSupport
import Threads

/// The append-only incident log: JSON Lines, one owner thread, each line sealed into the
/// hash chain and written with one `write` on an `O_APPEND` descriptor.
///
/// Durability: critical incidents are written and fsync'd at once (with group commit); high
/// ones are fsync'd within `promptInterval` (a quarter second: an fsync per high incident
/// would cost a busy school's disk a hundred a second); others within `syncInterval`. No torn
/// line stays: a line only partly written (disk full) is cut off again at once; a partial
/// last line left by a writer killed mid-write (`kill -9` can stop a write of several pages
/// part way) is cut before anything else is appended: on open, and under the lock by every
/// writer. Readers skip a last line without its newline. When the file cannot be written, records wait in a
/// bounded queue and are retried every second; the failure is logged and shown in status;
/// if the queue ever overflows, a `lost` event with the count is the first line written
/// when writing resumes. A file that becomes shorter than esafetyd left it, or is deleted,
/// gets a `truncated` event (a deleted file's lines are copied out first), and the chain's
/// head goes to esafetyd's own log hourly, so lines removed from the end can be shown.
public final class IncidentLog: @unchecked Sendable {
    /// How soon a record must be on disk.
    public enum Durability: Sendable {
        /// Written and fsync'd at once (critical incidents, `lost` events).
        case now
        /// Fsync'd within `promptInterval` (high incidents).
        case prompt
        /// Fsync'd within `syncInterval`.
        case interval
    }

    public struct Health: Sendable {
        public var writing = true
        public var lastError: String?
        public var queued = 0
        public var lost = 0
        public var written = 0
        /// The chain value of the last line esafetyd wrote or read (the head to keep).
        public var head: String?
        /// What esafetyd last found done to the file behind its back (lines removed, the
        /// file deleted), with when; nil while nothing was.
        public var tampering: String?
    }

    let path: String
    let mode: mode_t
    let group: String?
    let syncInterval: Double
    /// The longest a `.prompt` record waits for its fsync.
    let promptInterval: Double
    let bound: Int
    let logger: Logger
    /// `signalled`: the writer has been woken and has not drained yet, so further records
    /// need no system call to wake it. `dropped`: who and what the dropped incidents were.
    let state = Mutex<
        (
            queue: [([UInt8], Durability)], lost: Int, dropped: DroppedIncidents, stop: Bool, reopen: Bool,
            signalled: Bool
        )
    >(
        ([], 0, DroppedIncidents(), false, false, false)
    )
    /// Group commit: after an urgent wake-up the writer waits this long for more records,
    /// so a burst of urgent incidents costs one write and one fsync, not one each.
    let commitDelay: Double
    let health = Mutex(Health())
    private let wakeup = Wakeup()
    private var thread: PosixThread?
    var fd: Int32 = -1
    var lastChain = HashChain.genesis
    var firstLineInFile = true
    /// The file's size after our last write: if it differs when we next write, another
    /// writer (the coordinator's `esafety incidents ack`...) appended, and the chain
    /// continues from its last line.
    var expectedSize: Int64 = 0
    /// How often the chain's head goes to esafetyd's own log (the journal), when it moved.
    let headInterval: Double
    /// Where records that could not be written before a stop are saved when the file beside
    /// the log cannot take them either (the state folder).
    let spillDirectory: String?
    /// Spill files whose records were queued first at open: removed once a write cycle has
    /// written everything it took (the spilled records lead every batch until then).
    var spilled: [String] = []
    public init(
        path: String,
        mode: UInt32 = 0o640,
        group: String? = nil,
        syncInterval: Double = 5,
        promptInterval: Double = 0.25,
        bound: Int = 100_000,
        commitDelay: Double = 0.01,
        headInterval: Double = 3600,
        spillDirectory: String? = nil,
        logger: Logger
    ) {
        self.spillDirectory = spillDirectory
        self.headInterval = headInterval
        self.promptInterval = min(promptInterval, syncInterval)
        self.commitDelay = commitDelay
        self.path = path
        self.mode = mode_t(mode)
        self.group = group
        self.syncInterval = syncInterval
        self.bound = bound
        self.logger = logger
    }

    /// Counters, with `queued` read from the queue itself.
    public var status: Health {
        var h = health.withLock { $0 }
        h.queued = state.withLock { $0.queue.count }
        return h
    }

    /// Called on the writer thread with each line another writer appended (the coordinator's
    /// workflow events), so the daemon learns of acknowledgements without rereading the log.
    public var foreignLine: (@Sendable (Substring) -> Void)?

    /// Opens (creating 0640) and finds where the chain continues. Throws when the file
    /// cannot be opened at all at start-up.
    public func open() throws(FileSystem.Error) {
        try openFile()
        takeSpill()
    }

    func openFile() throws(FileSystem.Error) {
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        // A non-root user's default (~/.local/state/esafety) may lack its parents too.
        if !folder.isEmpty && !FileSystem.isDirectory(folder) { _ = FileSystem.makeDirectories(folder) }
        // O_NOFOLLOW: a symbolic link put where the log should be is refused, so no record (and
        // no chmod or chown) goes through it to another file.
        let newFD = Glibc.open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode)
        guard newFD >= 0 else {
            let e = errno
            if e == ELOOP {
                throw FileSystem.Error(
                    path: path,
                    errno: e,
                    reason: "a symbolic link, not the incident log; refusing it"
                )
            }
            throw FileSystem.Error(path: path, errno: e)
        }
        fchmod(newFD, mode)
        if let group { FileSystem.setGroup(fd: newFD, group) }
        // Cut a torn tail (a crash mid-write), then continue the chain from the last line,
        // or, in an empty file, from before it.
        let torn = Self.cutTornTail(fd: newFD)
        if torn > 0 {
            logger.warning(
                "incident log ended in a partial line; removed it",
                metadata: ["incidents.file": "\(path)", "bytes": "\(torn)"]
            )
        }
        if Self.size(of: newFD) > 0 {
            lastChain = Self.lastChainValue(fd: newFD) ?? lastChain
            firstLineInFile = false
        } else if fd >= 0 {
            // A reopen: the file esafetyd had open (rotated under any name, or deleted) is
            // still open, and its last line, whoever wrote it, is what the new file follows.
            lastChain = Self.lastChainValue(fd: fd) ?? lastChain
            firstLineInFile = true
        } else {
            lastChain = Self.chainBefore(emptyLog: path)
            firstLineInFile = true
        }
        if fd >= 0 { close(fd) }
        fd = newFD
        expectedSize = Self.size(of: newFD)
    }

    public func start() {
        thread = PosixThread(name: "esafety-log") { [self] in loop() }
    }

    /// Queues a record (a JSON object without its chain, as UTF-8 bytes). Never blocks for
    /// long: when the queue is full the record is counted as lost and reported when writing
    /// resumes.
    public func append(bytes object: [UInt8], durability: Durability) {
        let urgent = durability == .now
        // A full queue while the log is being written: wait for room (the incident thread
        // slows, and with it ingestion: backpressure, not loss). Only while the log cannot be
        // written is a medium, low or info record dropped, counted exactly; a critical or high
        // one is always kept.
        while durability == .interval, state.withLock({ $0.queue.count >= bound && !$0.stop }),
            health.withLock({ $0.writing })
        {
            wakeup.signal()
            usleep(1000)
        }
        let (accepted, signal) = state.withLock { s -> (Bool, Bool) in
            if s.queue.count >= bound && durability == .interval {
                s.lost += 1
                s.dropped.add(object)
                return (false, false)
            }
            s.queue.append((object, durability))
            // Urgent records wake the writer at once; others are picked up within 100 ms (or
            // when a thousand are waiting), so a busy school day costs few context switches.
            guard urgent || s.queue.count >= 1024, !s.signalled else { return (true, false) }
            s.signalled = true
            return (true, true)
        }
        if !accepted { health.withLock { $0.lost += 1 } }
        if signal { wakeup.signal() }
    }

    /// Asks the writer to reopen the file (after logrotate moved it).
    public func reopen() {
        state.withLock { $0.reopen = true }
        wakeup.signal()
    }

    /// Writes everything queued, fsyncs, and stops the writer thread.
    public func stop() {
        state.withLock { $0.stop = true }
        wakeup.signal()
        thread?.join()
        thread = nil
    }

    func loop() {
        var lastSync = Clock.monotonic()
        var unsynced = false
        /// A `.prompt` record is written but not yet fsync'd.
        var promptUnsynced = false
        var failing = false
        var text: [UInt8] = []
        var noted = (chain: lastChain, at: Clock.monotonic())
        var lastDeletedTry = -Double.infinity
        /// A deleted file already copied out, whose new file could not be started yet.
        var unfinishedDeletion: (size: Int64, chain: String, recovered: String?)? = nil
        while true {
            wakeup.wait(milliseconds: failing ? 1000 : Int32(min(100, syncInterval * 1000)))
            if !failing { readForeignLines() }
            if wakeup.drain(), commitDelay > 0, !failing {
                usleep(UInt32(commitDelay * 1e6))
            }
            let (batch, lost, dropped, stop, reopen) = state.withLock {
                s -> ([([UInt8], Durability)], Int, DroppedIncidents, Bool, Bool) in
                defer {
                    s.queue.removeAll(keepingCapacity: true)
                    s.lost = 0
                    s.dropped = DroppedIncidents()
                    s.reopen = false
                    s.signalled = false
                }
                return (s.queue, s.lost, s.dropped, s.stop, s.reopen)
            }
            // The file deleted while open (its last link gone): what esafetyd wrote there would
            // go with it when the file is closed, so its lines are copied out first (it is
            // still open), and a new log starts with an event that names the copy.
            // One look at the file per wake-up: deleted, or shorter than esafetyd left it.
            // The copy is made once; starting the new file is tried again each second until it can.
            let file = !failing && fd >= 0 ? Self.fileState(of: fd) : nil
            var deleted: (size: Int64, chain: String, recovered: String?)? = nil
            if let file, file.deleted, unfinishedDeletion == nil {
                if unsynced {
                    fsync(fd)
                    unsynced = false
                }
                let recovered = recoverDeleted()
                unfinishedDeletion = (expectedSize, lastChain, recovered)
                deleted = unfinishedDeletion
                lastDeletedTry = Clock.monotonic()
                health.withLock {
                    $0.tampering =
                        "\(Clock.rfc3339(Clock.now())): the log was deleted; "
                        + (recovered.map { "its lines are saved in \($0)" } ?? "its lines could not be saved")
                }
                logger.critical(
                    Logger.Message(
                        stringLiteral:
                            "THE INCIDENT LOG WAS DELETED while esafetyd was writing it; its lines are saved in the "
                            + "recovered file, and a new log starts with a `truncated` event that names it"
                    ),
                    metadata: [
                        "incidents.file": "\(path)", "recovered": "\(recovered ?? "NOTHING: the copy failed")",
                        "expected_bytes": "\(expectedSize)", "incidents.chain": "\(lastChain)",
                    ]
                )
            } else if let file, file.deleted, Clock.monotonic() - lastDeletedTry >= 1 {
                lastDeletedTry = Clock.monotonic()
                deleted = unfinishedDeletion
            }
            var shrunk = file.map { !$0.deleted && $0.size < expectedSize } ?? false
            if reopen || deleted != nil {
                shrunk = false  // a new file: nothing of it was written yet
                if unsynced {
                    fsync(fd)
                    unsynced = false
                }
                noteHead(&noted)
                saveChain()
                do {
                    try openFile()
                    unfinishedDeletion = nil
                    logger.info("incident log reopened", metadata: ["incidents.file": "\(path)"])
                } catch {
                    logger.error(
                        "cannot reopen the incident log",
                        metadata: ["incidents.file": "\(path)", "error": "\(error)"]
                    )
                    deleted = nil  // the event waits for the new file
                }
            }
            var pending = batch
            if let deleted {
                pending.insert(
                    (
                        Self.truncatedEvent(
                            size: 0,
                            expected: deleted.size,
                            lastChain: deleted.chain,
                            recovered: deleted.recovered,
                            reason: "the incident log was deleted while esafetyd was writing it"
                        ), .now
                    ),
                    at: 0
                )
            }
            // A backlog (the log could not be written): critical and high first, as soon as there
            // is room (a stable partition: a record's later events are ordinary, so they still
            // follow it); then the rest in order. Otherwise records go in the order they came.
            if failing, pending.contains(where: { $0.1 == .interval }), pending.contains(where: { $0.1 != .interval }) {
                pending = pending.filter { $0.1 != .interval } + pending.filter { $0.1 == .interval }
            }
            let lostReported = lost > 0
            if lostReported {
                pending.insert(
                    (Self.lostEvent(count: lost, dropped: dropped, reason: health.withLock { $0.lastError }), .now),
                    at: 0
                )
            }
            var urgent = false
            var prompt = false
            var written = 0
            /// This cycle wrote every record it took.
            var wroteAll = false
            // Seal the batch, then write it with one system call (whole lines only), holding
            // the file's lock: the coordinator's tool appends workflow events to the same
            // file under the same lock, and the chain continues from whoever wrote last.
            // A file shorter than esafetyd left it had lines removed: checked again under the lock.
            if !pending.isEmpty || shrunk {
                flock(fd, LOCK_EX)
                readForeignLines()
                var size = Self.size(of: fd)
                if size < expectedSize {
                    health.withLock {
                        $0.tampering =
                            "\(Clock.rfc3339(Clock.now())): the log was cut short (\(size) bytes, esafetyd had left "
                            + "\(expectedSize)); lines were removed"
                    }
                    logger.critical(
                        Logger.Message(
                            stringLiteral:
                                "THE INCIDENT LOG WAS CUT SHORT: it is shorter than esafetyd left it, so lines were "
                                + "removed; "
                                + "a `truncated` event records it"
                        ),
                        metadata: [
                            "incidents.file": "\(path)", "bytes": "\(size)", "expected_bytes": "\(expectedSize)",
                            "incidents.chain": "\(lastChain)",
                        ]
                    )
                    pending.insert(
                        (
                            Self.truncatedEvent(
                                size: size,
                                expected: expectedSize,
                                lastChain: lastChain,
                                recovered: nil,
                                reason: "the incident log was shorter than esafetyd left it: lines were removed"
                            ), .now
                        ),
                        at: 0
                    )
                    // An emptied file: the event starts it, naming the chain value it follows.
                    if size == 0 { firstLineInFile = true }
                }
                // Another writer (the coordinator's tool) was killed mid-write: cut its
                // partial line, or this batch would be joined to it.
                if size != expectedSize, size > 0, Self.cutTornTail(fd: fd) > 0 {
                    logger.warning(
                        "incident log ended in a partial line another writer left; removed it",
                        metadata: ["incidents.file": "\(path)"]
                    )
                    size = Self.size(of: fd)
                }
                if size != expectedSize, size > 0, let chain = Self.lastChainValue(fd: fd) {
                    lastChain = chain
                    firstLineInFile = false
                    expectedSize = size
                }
                text.removeAll(keepingCapacity: true)
                var chainAfter = lastChain
                var first = firstLineInFile
                /// Where each sealed line ends in `text`, and its chain value.
                var ends: [(end: Int, chain: String)] = []
                ends.reserveCapacity(pending.count)
                for (object, durability) in pending {
                    var obj = object
                    if first && chainAfter != HashChain.genesis {
                        obj.removeLast()
                        obj.append(contentsOf: ",\"prev\":\"\(chainAfter)\"}".utf8)
                    }
                    chainAfter = HashChain.seal(bytes: obj, previous: chainAfter, appendingTo: &text)
                    ends.append((text.count, chainAfter))
                    first = false
                    urgent = urgent || durability == .now
                    prompt = prompt || durability == .prompt
                }
                // One write for the batch; when that fails (a full disk), line by line, so
                // what fits is written (a batch bigger than the space left was never written).
                var done = writeLine(text) ? pending.count : 0
                if done == 0 {
                    var start = 0
                    while done < ends.count, writeLine(Array(text[start..<ends[done].end])) {
                        start = ends[done].end
                        done += 1
                    }
                }
                expectedSize = Self.size(of: fd)
                flock(fd, LOCK_UN)
                wroteAll = done == pending.count
                if done > 0 {
                    lastChain = ends[done - 1].chain
                    firstLineInFile = false
                    written = done
                    unsynced = true
                    promptUnsynced = promptUnsynced || prompt
                }
                if done < pending.count {
                    // Keep the rest, in order, and retry. A `lost` event not written is not
                    // kept as a line: its count goes back, to be reported once, exactly.
                    var rest = Array(pending[done...])
                    if lostReported && done == 0 { rest.removeFirst() }
                    let restoredLost = lostReported && done == 0 ? lost : 0
                    let droppedNow = state.withLock { s -> Int in
                        s.lost += restoredLost
                        if restoredLost > 0 {
                            // The older tally goes first: it was dropped before what came since.
                            var older = dropped
                            older.merge(s.dropped)
                            s.dropped = older
                        }
                        let urgentRest = rest.filter { $0.1 != .interval }
                        let room = max(0, bound - s.queue.count - urgentRest.count)
                        let ordinary = rest.filter { $0.1 == .interval }
                        s.queue.insert(contentsOf: urgentRest + ordinary.prefix(room), at: 0)
                        let kept = min(ordinary.count, room)
                        for record in ordinary[kept...] { s.dropped.add(record.0) }
                        s.lost += ordinary.count - kept
                        return ordinary.count - kept
                    }
                    if droppedNow > 0 { health.withLock { $0.lost += droppedNow } }
                    if !failing {
                        logger.critical(
                            Logger.Message(
                                stringLiteral:
                                    "INCIDENTS ARE NOT BEING WRITTEN: the incident log cannot be written; retrying "
                                    + "every "
                                    + "second"
                            ),
                            metadata: [
                                "incidents.file": "\(path)", "error": "\(health.withLock { $0.lastError ?? "" })",
                            ]
                        )
                    }
                    failing = true
                    if done == 0 { urgent = false }
                }
            }
            if written > 0 && failing && state.withLock({ $0.queue.isEmpty }) {
                failing = false
                let error = health.withLock { h -> String? in
                    defer { h.lastError = nil }
                    return h.lastError
                }
                logger.notice(
                    "incident log writable again; everything queued is written",
                    metadata: ["incidents.file": "\(path)", "error.was": "\(error ?? "")"]
                )
            }
            let t = Clock.monotonic()
            if unsynced
                && (urgent || stop || t - lastSync >= syncInterval
                    || (promptUnsynced && t - lastSync >= promptInterval))
            {
                fsync(fd)
                unsynced = false
                promptUnsynced = false
                lastSync = t
            }
            if t - noted.at >= headInterval { noteHead(&noted) }
            let queued = state.withLock { $0.queue.count }
            let head = lastChain
            health.withLock {
                $0.written += written
                $0.writing = !failing
                $0.head = head
            }
            if wroteAll && !spilled.isEmpty {
                if unsynced {
                    fsync(fd)
                    unsynced = false
                }
                for p in spilled { unlink(p) }
                logger.notice(
                    "records saved at the last stop are now in the incident log",
                    metadata: ["spill": "\(spilled)"]
                )
                spilled = []
            }
            if stop && (queued == 0 || failing) { break }
        }
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
        noteHead(&noted)
        saveChain()
        spillLeftovers()
    }

    /// One `write` per batch of whole lines; a short write is undone so no torn line remains.
    func writeLine(_ text: [UInt8]) -> Bool {
        text.withUnsafeBytes { bytes in
            var st = stat()
            fstat(fd, &st)
            let before = st.st_size
            let n = write(fd, bytes.baseAddress, bytes.count)
            if n == bytes.count { return true }
            let e = n < 0 ? errno : ENOSPC
            if n > 0 { ftruncate(fd, before) }
            health.withLock {
                $0.lastError = String(cString: strerror(e))
                $0.writing = false
            }
            return false
        }
    }
}
