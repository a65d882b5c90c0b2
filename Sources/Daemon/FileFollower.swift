import Foundation
import Glibc
import Logging
import Synchronization
import SystemSupport

/// Streams a growing log file (Squid's `access.log`, a resolver's query log) into esafetyd's
/// stream socket without loss: `esafety follow`. It keeps its place in the file at the last
/// byte esafetyd acknowledged (`FollowProtocol`), saved in a position file, so that:
/// - a first start begins at the end of the file (old lines are not sent again as new
///   incidents), unless told to start at the beginning;
/// - a restart of the follower continues where it was acknowledged, even if the file was
///   rotated meanwhile (the rotated file `FILE.1` is finished first);
/// - while esafetyd is stopped or restarting it waits, and then sends again everything not
///   acknowledged; a rotation is followed (the old file is sent to its end and acknowledged
///   before the new one starts), and a truncated file (`copytruncate`) starts again at 0.
public final class FileFollower: @unchecked Sendable {
    public let path: String
    let socketPath: String
    let positionPath: String
    let fromStart: Bool
    let logger: Logger
    let stopping: Atomic<Bool>
    /// Largest block read from the file and sent at once.
    static let block = 256 * 1024

    /// The position file's content: which file (by inode) and how far was acknowledged.
    struct Position: Codable, Equatable {
        var path: String
        var inode: UInt64
        var offset: Int64
    }

    /// The file being sent.
    var fd: Int32 = -1
    var inode: UInt64 = 0
    /// Acknowledged up to here (the position file's offset).
    var committed: Int64 = 0
    /// Sent up to here on the current connection.
    var sent: Int64 = 0
    /// After the file being sent, the file at `path` (a restart found it rotated).
    var thenReopen = false
    var connection: Int32 = -1
    /// Bytes sent on the connection after the hello, and after each send the file offset it
    /// reached: an acknowledgement of N commits the offset of the last mark at or below N.
    var streamSent = 0
    var marks: [(stream: Int, file: Int64)] = []
    var acks: [UInt8] = []
    var lastSave = 0.0
    var savedOffset: Int64 = -1
    var waitingLogged = false
    /// What is read from the file and sent, and what esafetyd answers: allocated once.
    let block = UnsafeMutableRawBufferPointer.allocate(byteCount: FileFollower.block, alignment: 16)
    let answers = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)

    public init(path: String, socket: String, positionFile: String, fromStart: Bool, logger: Logger) {
        self.path = path
        self.socketPath = socket
        self.positionPath = positionFile
        self.fromStart = fromStart
        self.logger = logger
        self.stopping = Atomic(false)
    }

    deinit {
        block.deallocate()
        answers.deallocate()
    }

    public func stop() { stopping.store(true, ordering: .relaxed) }

    /// The position file for `file` in `folder`: the path with `/` made `_`.
    public static func positionFile(for file: String, in folder: String) -> String {
        folder + "/" + String(file.map { $0 == "/" ? "_" : $0 }) + ".position"
    }

    // MARK: - Running

    /// Follows until `stop()`; then waits (two seconds at most) for what was sent to be
    /// acknowledged and saves the position.
    public func run() throws(FollowError) {
        try openAtSavedPosition()
        var backoff = 0.1
        while !stopping.load(ordering: .relaxed) {
            if connection < 0 {
                guard connect() else {
                    if !waitingLogged {
                        logger.warning(
                            "waiting for esafetyd",
                            metadata: ["socket": "\(socketPath)", "error": "\(String(cString: strerror(errno)))"]
                        )
                        waitingLogged = true
                    }
                    sleep(seconds: backoff)
                    backoff = min(backoff * 2, 2)
                    continue
                }
                if waitingLogged { logger.notice("connected to esafetyd", metadata: ["socket": "\(socketPath)"]) }
                waitingLogged = false
                backoff = 0.1
            }
            let progressed = sendSome()
            readAcks(wait: progressed ? 0 : 250)
            if !progressed { followRotation() }
            saveIfDue(force: false)
        }
        // Stopping: give esafetyd a moment to acknowledge what is in flight.
        let deadline = Clock.monotonic() + 2
        while connection >= 0, !marks.isEmpty, Clock.monotonic() < deadline { readAcks(wait: 100) }
        saveIfDue(force: true)
        if connection >= 0 { close(connection) }
        if fd >= 0 { close(fd) }
    }

    /// Opens the file where the position file says (or at its end, or its start, the first
    /// time), finding a rotated file by its inode.
    func openAtSavedPosition() throws(FollowError) {
        let saved: Position? = (try? FileSystem.readBytes(positionPath, limit: 65536)).flatMap {
            try? JSONDecoder().decode(Position.self, from: Data($0))
        }
        try reopen()
        guard let saved else {
            committed = fromStart ? 0 : size()
            sent = committed
            logger.info(
                "following",
                metadata: ["file": "\(path)", "from": "\(fromStart ? "its start" : "its end, byte \(committed)")"]
            )
            return
        }
        if saved.inode == inode {
            committed = saved.offset <= size() ? saved.offset : 0
        } else if let rotated = Self.rotatedCandidates(path).first(where: { Self.inode(of: $0) == saved.inode }),
            case let old = open(rotated, O_RDONLY | O_CLOEXEC), old >= 0
        {
            // Rotated while the follower was stopped: finish the old file first.
            close(fd)
            fd = old
            inode = saved.inode
            committed = saved.offset
            thenReopen = true
            logger.notice(
                "finishing a rotated file first",
                metadata: ["file": "\(rotated)", "from": "\(saved.offset)"]
            )
        } else {
            committed = 0
            logger.warning(
                Logger.Message(stringLiteral: Self.replacedWhileStopped),
                metadata: ["file": "\(path)"]
            )
        }
        sent = committed
        logger.info("following", metadata: ["file": "\(path)", "from": "byte \(committed)"])
    }

    static let replacedWhileStopped =
        "the file was replaced while esafety follow was stopped and the old one is not found; "
        + "starting the new file from its beginning"

    /// Opens `path` as the file to send.
    func reopen() throws(FollowError) {
        let f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard f >= 0 else { throw FollowError(message: "\(path): cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        fstat(f, &st)
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(f)
            throw FollowError(message: "\(path): not a regular file")
        }
        if fd >= 0 { close(fd) }
        fd = f
        inode = UInt64(st.st_ino)
    }

    func size() -> Int64 {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
    }

    static func inode(of path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
    }

    /// Where logrotate puts the previous file: `FILE.1` (and `FILE-YYYYMMDD` with `dateext`).
    static func rotatedCandidates(_ path: String) -> [String] {
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let base = String(path.split(separator: "/").last ?? "")
        let dated = ((try? FileSystem.listDirectory(folder.isEmpty ? "." : folder)) ?? [])
            .filter { $0.hasPrefix(base + "-") && !$0.hasSuffix(".gz") }.sorted().reversed()
            .map { (folder.isEmpty ? "" : folder + "/") + $0 }
        return [path + ".1"] + dated
    }

    // MARK: - Sending

    func connect() -> Bool {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return false }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(s)
            errno = ENAMETOOLONG
            return false
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0, FollowProtocol.hello.withUnsafeBytes({ writeAll(s, $0) }) else {
            let e = errno
            close(s)
            errno = e
            return false
        }
        connection = s
        streamSent = 0
        marks = []
        acks = []
        sent = committed
        return true
    }

    func disconnect(_ why: String) {
        guard connection >= 0 else { return }
        close(connection)
        connection = -1
        if sent > committed {
            logger.notice(
                "esafetyd closed the connection; sending again what it had not acknowledged",
                metadata: ["reason": "\(why)", "bytes": "\(sent - committed)"]
            )
        }
        sent = committed
    }

    /// Sends the file's next complete lines; false when there was nothing new.
    func sendSome() -> Bool {
        let n = pread(fd, block.baseAddress, block.count, off_t(sent))
        guard n > 0 else { return false }
        // Complete lines only, unless one line fills the whole block (esafetyd counts it as too long).
        var end = n
        while end > 0, block[end - 1] != 0x0A { end -= 1 }
        if end == 0 {
            guard n == block.count else { return false }
            end = n
        }
        guard writeAll(connection, UnsafeRawBufferPointer(rebasing: block[0..<end])) else {
            disconnect(String(cString: strerror(errno)))
            return false
        }
        sent += Int64(end)
        streamSent += end
        marks.append((streamSent, sent))
        return true
    }

    func writeAll(_ s: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = send(s, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
            // Acknowledgements keep coming while a big backlog is sent: read them as we go.
            if offset < bytes.count { readAcks(wait: 0) }
        }
        return true
    }

    /// Reads acknowledgements (waiting up to `wait` ms for one) and commits what they cover.
    func readAcks(wait: Int32) {
        guard connection >= 0 else {
            if wait > 0 { sleep(seconds: Double(wait) / 1000) }
            return
        }
        var p = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, wait) > 0 else { return }
        let n = recv(connection, answers.baseAddress, answers.count, Int32(MSG_DONTWAIT))
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
            disconnect(n == 0 ? "closed" : String(cString: strerror(errno)))
            return
        }
        guard n > 0 else { return }
        acks.append(contentsOf: UnsafeRawBufferPointer(rebasing: answers[0..<n]))
        if acks.count > 65536 { acks.removeFirst(acks.count - 4096) }
        guard let acked = FollowProtocol.lastAck(in: &acks) else { return }
        while let m = marks.first, m.stream <= acked {
            committed = m.file
            marks.removeFirst()
        }
    }

    /// At the end of the file: a new file at `path` (rotation) is taken once everything of
    /// the old one was sent and acknowledged; a file shorter than what was sent was truncated.
    func followRotation() {
        let current = size()
        if current < sent {
            logger.notice("the file was truncated; following it from its start", metadata: ["file": "\(path)"])
            committed = 0
            sent = 0
            marks = []
            if connection >= 0 { disconnect("truncated") }
            return
        }
        let rotated = thenReopen || Self.inode(of: path).map { $0 != inode } == true
        guard rotated else { return }
        // A last line without a newline ends with the file.
        if current > sent, connection >= 0 {
            // The rest and a newline after what was read (the file is not read again).
            var rest = [UInt8](repeating: 0, count: Int(current - sent) + 1)
            let n = rest.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count - 1, off_t(sent)) }
            if n > 0 { rest[n] = 0x0A }
            if n > 0, rest.withUnsafeBytes({ writeAll(connection, UnsafeRawBufferPointer(rebasing: $0[0..<(n + 1)])) })
            {
                sent += Int64(n)
                streamSent += n + 1
                marks.append((streamSent, sent))
            }
            return
        }
        guard current == sent, committed == sent, FileSystem.exists(path) else { return }
        do {
            try reopen()
        } catch {
            return
        }
        thenReopen = false
        committed = 0
        sent = 0
        savedOffset = -1
        logger.info("the file was rotated; following the new one", metadata: ["file": "\(path)"])
        saveIfDue(force: true)
    }

    func saveIfDue(force: Bool) {
        guard committed != savedOffset, force || Clock.monotonic() - lastSave >= 1 else { return }
        var j = JSONText()
        j.beginObject()
        j.field("path", .string(path))
        j.field("inode", .int(Int(inode)))
        j.field("offset", .int(Int(committed)))
        j.endObject()
        let bytes = Array((j.text + "\n").utf8)
        let failure = bytes.withUnsafeBytes { b -> FileSystem.Error? in
            do {
                try FileSystem.writeAtomically(positionPath, bytes: b, mode: 0o600)
                return nil
            } catch {
                return error as? FileSystem.Error ?? FileSystem.Error(path: positionPath, errno: EIO)
            }
        }
        lastSave = Clock.monotonic()
        if let failure {
            logger.error("cannot save the position", metadata: ["file": "\(positionPath)", "error": "\(failure)"])
        } else {
            savedOffset = committed
        }
    }

    func sleep(seconds: Double) {
        var p = pollfd(fd: -1, events: 0, revents: 0)
        _ = poll(&p, 0, Int32(seconds * 1000))
    }
}

public struct FollowError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
