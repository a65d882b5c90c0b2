import Classifier
import CShims
import Foundation
import LogFormats
import Logging
import Synchronization

import Glibc
import SystemSupport

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
    /// need no system call to wake it.
    private let state = Mutex<(queue: [([UInt8], Durability)], lost: Int, stop: Bool, reopen: Bool, signalled: Bool)>(([], 0, false, false, false))
    /// Group commit: after an urgent wake-up the writer waits this long for more records,
    /// so a burst of urgent incidents costs one write and one fsync, not one each.
    let commitDelay: Double
    private let health = Mutex(Health())
    private let wakeup = Wakeup()
    private var thread: PosixThread?
    private var fd: Int32 = -1
    private(set) var lastChain = HashChain.genesis
    private var firstLineInFile = true
    /// The file's size after our last write: if it differs when we next write, another
    /// writer (the coordinator's `esafety incidents ack`...) appended, and the chain
    /// continues from its last line.
    private var expectedSize: Int64 = 0
    /// How often the chain's head goes to esafetyd's own log (the journal), when it moved.
    let headInterval: Double
    public init(path: String, mode: UInt32 = 0o640, group: String? = nil, syncInterval: Double = 5, promptInterval: Double = 0.25,
                bound: Int = 100_000, commitDelay: Double = 0.01, headInterval: Double = 3600, logger: Logger) {
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
    }

    private func openFile() throws(FileSystem.Error) {
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !folder.isEmpty && !FileSystem.isDirectory(folder) { mkdir(folder, 0o750) }
        let newFD = Glibc.open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, mode)
        guard newFD >= 0 else { throw FileSystem.Error(path: path, errno: errno) }
        fchmod(newFD, mode)
        if let group, let gr = getgrnam(group) { fchown(newFD, uid_t.max, gr.pointee.gr_gid) }
        // Cut a torn tail (a crash mid-write), then continue the chain from the last line,
        // or, in an empty file, from before it.
        let torn = Self.cutTornTail(fd: newFD)
        if torn > 0 {
            logger.warning("incident log ended in a partial line; removed it", metadata: ["incidents.file": "\(path)", "bytes": "\(torn)"])
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

    /// Removes a partial last line (a writer killed mid-write: `kill -9` can stop a write
    /// of several pages part way). Only under the file's lock, when no writer is mid-write.
    /// The bytes removed (0 when the file ends in a newline).
    @discardableResult
    static func cutTornTail(fd: Int32) -> Int {
        let size = size(of: fd)
        var last: UInt8 = 0
        guard size > 0, pread(fd, &last, 1, off_t(size - 1)) == 1, last != 0x0A else { return 0 }
        let torn = tornTail(fd: fd)
        guard torn > 0, ftruncate(fd, off_t(size - Int64(torn))) == 0 else { return 0 }
        return torn
    }

    /// Where the whole lines of a log end (its size less any partial last line), reading
    /// only its tail; 0 when it cannot be read.
    public static func endOfWholeLines(_ path: String) -> Int {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        return Int(size(of: fd)) - tornTail(fd: fd)
    }

    /// Bytes after the last newline of a regular file (a line whose write was cut short).
    static func tornTail(fd: Int32) -> Int {
        let size = Int(size(of: fd))
        let n = min(size, 1 << 20)
        guard n > 0 else { return 0 }
        var tail = [UInt8](repeating: 0, count: n)
        guard tail.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, n, off_t(size - n)) }) == n else { return 0 }
        guard let lastNewline = tail.lastIndex(of: 0x0A) else { return n }
        return n - lastNewline - 1
    }

    /// Where the chain stands before an empty log (just rotated): the rotated file's last
    /// line, else the value saved at the last reopen or close, else the start.
    static func chainBefore(emptyLog path: String) -> String {
        if let previous = lastChainValue(ofFile: path + ".1") { return previous }
        if let saved = try? FileSystem.readText(path + ".chain"), saved.count == 64, saved.allSatisfy(\.isHexDigit) { return saved }
        return HashChain.genesis
    }

    /// Copies a deleted log (still open) to `LOG.recovered-<UTC time>` beside it, with the
    /// log's mode and group; returns that path, or nil when the copy failed.
    private func recoverDeleted() -> String? {
        let stamp = Clock.rfc3339(Clock.now()).filter { $0 != "-" && $0 != ":" }.prefix(15)  // 20261121T201500
        let target = "\(path).recovered-\(stamp)Z"
        let out = Glibc.open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard out >= 0 else { return nil }
        defer { close(out) }
        fchmod(out, mode)
        if let group, let gr = getgrnam(group) { fchown(out, uid_t.max, gr.pointee.gr_gid) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n == 0 { break }
            guard n > 0, buffer.withUnsafeBytes({ write(out, $0.baseAddress, n) }) == n else { return nil }
            offset += off_t(n)
        }
        return fsync(out) == 0 ? target : nil
    }

    /// An open regular file's size, and whether it has no name left (deleted); nil for
    /// anything else (a device such as /dev/full).
    static func fileState(of fd: Int32) -> (size: Int64, deleted: Bool)? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return (Int64(st.st_size), st.st_nlink == 0)
    }

    static func size(of fd: Int32) -> Int64 {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? Int64(st.st_size) : 0
    }

    /// Lines another writer appended since our last write: passed to `foreignLine`, and the
    /// chain continues from the last of them. At most 1 MiB is read at a time.
    private func readForeignLines() {
        let size = Self.size(of: fd)
        guard size > expectedSize, fd >= 0 else { return }
        let n = Int(min(size - expectedSize, 1 << 20))
        var bytes = [UInt8](repeating: 0, count: n)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, n, off_t(expectedSize)) }
        guard got > 0, let lastNewline = bytes[0..<got].lastIndex(of: 0x0A) else { return }
        let text = String(decoding: bytes[0...lastNewline], as: UTF8.self)
        for line in text.split(separator: "\n") {
            foreignLine?(line)
            if let (_, chain) = HashChain.split(line) { lastChain = chain; firstLineInFile = false }
        }
        expectedSize += Int64(lastNewline + 1)
    }

    /// The chain value of a file's last complete line, if it has one.
    static func lastChainValue(ofFile path: String) -> String? {
        let rfd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard rfd >= 0 else { return nil }
        defer { close(rfd) }
        return lastChainValue(fd: rfd)
    }

    static func lastChainValue(fd rfd: Int32) -> String? {
        var st = stat()
        guard fstat(rfd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0 else { return nil }
        let size = Int(st.st_size)
        let n = min(size, 1 << 16)
        var tail = [UInt8](repeating: 0, count: n)
        guard tail.withUnsafeMutableBytes({ pread(rfd, $0.baseAddress, n, off_t(size - n)) }) == n else { return nil }
        var end = n
        while end > 0 && tail[end - 1] != 0x0A { end -= 1 }
        guard end > 0 else { return nil }
        var start = end - 1
        while start > 0 && tail[start - 1] != 0x0A { start -= 1 }
        return HashChain.split(Substring(String(decoding: tail[start..<(end - 1)], as: UTF8.self)))?.chain
    }

    /// Saves the chain value beside the log, so a file that is empty after rotation still
    /// continues the chain (written when the file is reopened and when the log closes).
    private func saveChain() {
        var chain = lastChain
        chain.withUTF8 { try? FileSystem.writeAtomically(path + ".chain", bytes: UnsafeRawBufferPointer($0), mode: mode) }
    }

    public func start() {
        thread = PosixThread(name: "esafety-log") { [self] in loop() }
    }

    /// Queues a record (a JSON object without its chain, as UTF-8 bytes). Never blocks for
    /// long: when the queue is full the record is counted as lost and reported when writing
    /// resumes.
    public func append(bytes object: [UInt8], durability: Durability) {
        let urgent = durability == .now
        let (accepted, signal) = state.withLock { s -> (Bool, Bool) in
            if s.queue.count >= bound { s.lost += 1; return (false, false) }
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

    private func loop() {
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
            let (batch, lost, stop, reopen) = state.withLock { s -> ([([UInt8], Durability)], Int, Bool, Bool) in
                defer { s.queue.removeAll(keepingCapacity: true); s.lost = 0; s.reopen = false; s.signalled = false }
                return (s.queue, s.lost, s.stop, s.reopen)
            }
            // The file deleted while open (its last link gone): what esafetyd wrote there would
            // go with it when the file is closed, so its lines are copied out first (it is
            // still open), and a new log starts with an event that names the copy.
            // One look at the file per wake-up: deleted, or shorter than esafetyd left it.
            // The copy is made once; starting the new file is tried again each second until it can.
            let file = !failing && fd >= 0 ? Self.fileState(of: fd) : nil
            var deleted: (size: Int64, chain: String, recovered: String?)? = nil
            if let file, file.deleted, unfinishedDeletion == nil {
                if unsynced { fsync(fd); unsynced = false }
                let recovered = recoverDeleted()
                unfinishedDeletion = (expectedSize, lastChain, recovered)
                deleted = unfinishedDeletion
                lastDeletedTry = Clock.monotonic()
                health.withLock { $0.tampering = "\(Clock.rfc3339(Clock.now())): the log was deleted; " + (recovered.map { "its lines are saved in \($0)" } ?? "its lines could not be saved") }
                logger.critical("THE INCIDENT LOG WAS DELETED while esafetyd was writing it; its lines are saved in the recovered file, and a new log starts with a `truncated` event that names it",
                                metadata: ["incidents.file": "\(path)", "recovered": "\(recovered ?? "NOTHING: the copy failed")",
                                           "expected_bytes": "\(expectedSize)", "incidents.chain": "\(lastChain)"])
            } else if let file, file.deleted, Clock.monotonic() - lastDeletedTry >= 1 {
                lastDeletedTry = Clock.monotonic()
                deleted = unfinishedDeletion
            }
            var shrunk = file.map { !$0.deleted && $0.size < expectedSize } ?? false
            if reopen || deleted != nil {
                shrunk = false  // a new file: nothing of it was written yet
                if unsynced { fsync(fd); unsynced = false }
                noteHead(&noted)
                saveChain()
                do {
                    try openFile()
                    unfinishedDeletion = nil
                    logger.info("incident log reopened", metadata: ["incidents.file": "\(path)"])
                } catch {
                    logger.error("cannot reopen the incident log", metadata: ["incidents.file": "\(path)", "error": "\(error)"])
                    deleted = nil  // the event waits for the new file
                }
            }
            var pending = batch
            if let deleted {
                pending.insert((Self.truncatedEvent(size: 0, expected: deleted.size, lastChain: deleted.chain, recovered: deleted.recovered,
                                                    reason: "the incident log was deleted while esafetyd was writing it"), .now), at: 0)
            }
            if lost > 0 { pending.insert((Self.lostEvent(count: lost), .now), at: 0) }
            var urgent = false, prompt = false
            var written = 0
            // Seal the batch, then write it with one system call (whole lines only), holding
            // the file's lock: the coordinator's tool appends workflow events to the same
            // file under the same lock, and the chain continues from whoever wrote last.
            // A file shorter than esafetyd left it had lines removed: checked again under the lock.
            if !pending.isEmpty || shrunk {
                flock(fd, LOCK_EX)
                readForeignLines()
                var size = Self.size(of: fd)
                if size < expectedSize {
                    health.withLock { $0.tampering = "\(Clock.rfc3339(Clock.now())): the log was cut short (\(size) bytes, esafetyd had left \(expectedSize)); lines were removed" }
                    logger.critical("THE INCIDENT LOG WAS CUT SHORT: it is shorter than esafetyd left it, so lines were removed; a `truncated` event records it",
                                    metadata: ["incidents.file": "\(path)", "bytes": "\(size)", "expected_bytes": "\(expectedSize)",
                                               "incidents.chain": "\(lastChain)"])
                    pending.insert((Self.truncatedEvent(size: size, expected: expectedSize, lastChain: lastChain, recovered: nil,
                                                        reason: "the incident log was shorter than esafetyd left it: lines were removed"), .now), at: 0)
                    // An emptied file: the event starts it, naming the chain value it follows.
                    if size == 0 { firstLineInFile = true }
                }
                // Another writer (the coordinator's tool) was killed mid-write: cut its
                // partial line, or this batch would be joined to it.
                if size != expectedSize, size > 0, Self.cutTornTail(fd: fd) > 0 {
                    logger.warning("incident log ended in a partial line another writer left; removed it", metadata: ["incidents.file": "\(path)"])
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
                for (object, durability) in pending {
                    var obj = object
                    if first && chainAfter != HashChain.genesis {
                        obj.removeLast()
                        obj.append(contentsOf: ",\"prev\":\"\(chainAfter)\"}".utf8)
                    }
                    chainAfter = HashChain.seal(bytes: obj, previous: chainAfter, appendingTo: &text)
                    first = false
                    urgent = urgent || durability == .now
                    prompt = prompt || durability == .prompt
                }
                let ok = writeLine(text)
                expectedSize = Self.size(of: fd)
                flock(fd, LOCK_UN)
                if ok {
                    lastChain = chainAfter
                    firstLineInFile = false
                    written = pending.count
                    unsynced = true
                    promptUnsynced = promptUnsynced || prompt
                } else {
                    // Keep the batch, in order, and retry.
                    state.withLock { s in
                        let room = max(0, bound - s.queue.count)
                        s.queue.insert(contentsOf: pending.prefix(room), at: 0)
                        s.lost += pending.count - min(pending.count, room)
                    }
                    if !failing {
                        logger.critical("INCIDENTS ARE NOT BEING WRITTEN: the incident log cannot be written; retrying every second",
                                        metadata: ["incidents.file": "\(path)", "error": "\(health.withLock { $0.lastError ?? "" })"])
                    }
                    failing = true
                    urgent = false
                }
            }
            if written > 0 && failing && state.withLock({ $0.queue.isEmpty }) {
                failing = false
                logger.notice("incident log writable again", metadata: ["incidents.file": "\(path)"])
            }
            let t = Clock.monotonic()
            if unsynced && (urgent || stop || t - lastSync >= syncInterval || (promptUnsynced && t - lastSync >= promptInterval)) {
                fsync(fd)
                unsynced = false
                promptUnsynced = false
                lastSync = t
            }
            if t - noted.at >= headInterval { noteHead(&noted) }
            let queued = state.withLock { $0.queue.count }
            let head = lastChain
            health.withLock { $0.written += written; $0.writing = !failing; $0.head = head }
            if stop && (queued == 0 || failing) { break }
        }
        if fd >= 0 { fsync(fd); close(fd) }
        noteHead(&noted)
        saveChain()
    }

    /// `{"event":"lost","count":N}`: records the bounded queue could not keep while the
    /// log could not be written; the first line written when writing resumes.
    static func lostEvent(count: Int) -> [UInt8] {
        LogRecord.lost(LostRecord(time: Clock.rfc3339(Clock.now()), count: count,
                                  reason: "the incident queue overflowed while the log could not be written")).bytes
    }

    /// `{"event":"truncated",...}`: esafetyd found the file shorter than it left it, or
    /// deleted; `last_chain` is the chain value of the last line it had written there, and
    /// `recovered` the copy it saved of a deleted file. `esafety verify` fails at this line.
    static func truncatedEvent(size: Int64, expected: Int64, lastChain: String, recovered: String?, reason: String) -> [UInt8] {
        LogRecord.truncated(TruncatedRecord(time: Clock.rfc3339(Clock.now()), size: Int(size),
                                            expectedSize: Int(expected), lastChain: lastChain, recovered: recovered,
                                            reason: reason)).bytes
    }

    /// Writes the chain's head to esafetyd's own log (the journal, which the service
    /// account cannot edit): hourly, before a reopen and at exit, when it moved. A hash
    /// chain cannot show that lines were removed from its end; `esafety verify --head`
    /// with a value from the journal can.
    private func noteHead(_ noted: inout (chain: String, at: Double)) {
        noted.at = Clock.monotonic()
        guard lastChain != noted.chain else { return }
        noted.chain = lastChain
        logger.notice("incident log chain head", metadata: ["incidents.file": "\(path)", "incidents.chain": "\(lastChain)"])
    }

    public struct ActFailure: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// 1: refused (a workflow rule, an unknown id); 2: cannot (permissions, no log).
        public var status: Int32
    }

    /// Appends workflow events to a log the daemon may be writing at the same moment: the
    /// file is locked, the incidents are read as they stand, `decide` returns the event
    /// lines (or refuses), and they are sealed onto the chain after the last line, whoever
    /// wrote it, and fsync'd before the lock is released.
    public static func appendEvents(path: String, group: String?,
                                    _ decide: ([IncidentView]) throws(Workflow.Refusal) -> [ActionRecord]) throws(ActFailure) {
        let fd = Glibc.open(path, O_RDWR | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            switch e {
            case ENOENT: throw ActFailure(description: "\(path): no incident log here (see `incidents.incident_log` in esafetyd's configuration)", status: 2)
            case EACCES, EPERM, EROFS:
                throw ActFailure(description: "you may not act on incidents: \(path) can be written only by the esafety service account; run the command with sudo as a member of the group \(group ?? "esafety-admin")", status: 2)
            default: throw ActFailure(description: "\(path): cannot open: \(String(cString: strerror(e)))", status: 2)
            }
        }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        // A writer killed mid-write (the daemon, or another `esafety incidents`) can leave a
        // partial last line; the events go after the last whole line, not joined to it.
        cutTornTail(fd: fd)
        let views: [IncidentView]
        do { views = try IncidentStore.load(path, group: group) } catch { throw ActFailure(description: error.description, status: 2) }
        let objects: [String]
        do { objects = try decide(views).map { LogRecord.action($0).text } } catch { throw ActFailure(description: error.description, status: 1) }
        guard !objects.isEmpty else { return }
        var previous: String
        var first = false
        if size(of: fd) > 0 {
            guard let chain = lastChainValue(fd: fd) else {
                throw ActFailure(description: "\(path): the last line has no chain value; run `esafety verify` before acting", status: 2)
            }
            previous = chain
        } else {
            first = true
            previous = chainBefore(emptyLog: path)
        }
        var text: [UInt8] = []
        for object in objects {
            var obj = object
            if first && previous != HashChain.genesis {
                obj = String(decoding: obj.utf8.dropLast(), as: UTF8.self) + ",\"prev\":\"\(previous)\"}"
            }
            first = false
            previous = HashChain.seal(obj, previous: previous, appendingTo: &text)
        }
        let before = size(of: fd)
        let n = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n != text.count {
            let e = n < 0 ? errno : ENOSPC
            if n > 0 { ftruncate(fd, off_t(before)) }
            throw ActFailure(description: "\(path): cannot write: \(String(cString: strerror(e))); nothing was recorded", status: 2)
        }
        fsync(fd)
    }

    /// One `write` per batch of whole lines; a short write is undone so no torn line remains.
    private func writeLine(_ text: [UInt8]) -> Bool {
        text.withUnsafeBytes { bytes in
            var st = stat()
            fstat(fd, &st)
            let before = st.st_size
            let n = write(fd, bytes.baseAddress, bytes.count)
            if n == bytes.count { return true }
            let e = n < 0 ? errno : ENOSPC
            if n > 0 { ftruncate(fd, before) }
            health.withLock { $0.lastError = String(cString: strerror(e)); $0.writing = false }
            return false
        }
    }
}
