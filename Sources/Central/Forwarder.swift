import Foundation
import Glibc
import Incidents
import Logging
import PostgresNIO
import SystemSupport

/// `esafety forward`: follows a site's incident log (its rotations too) and ships every line
/// to the central store, in order, verifying the hash chain as it goes.
///
/// At least once and idempotent: lines go in transactions of up to `batch`; the position
/// (file, offset, line count, chain value) is saved only after the transaction commits, so a
/// crash or a lost connection ships a batch again, and a line already there (its site and
/// chain value) is passed over, with its effects (an incident's row, a state change) applied
/// only with the line's first arrival. A line that does not follow the chain is shipped
/// marked, with a `tamper` row centrally and a critical log line here.
public final class Forwarder: @unchecked Sendable {
    public struct Settings: Sendable {
        public var logPath: String
        public var site: String
        public var positionPath: String
        public var batch = 500
        public var poll = 0.5
        public var maxBackoff = 30.0
        /// A connection or a batch with no answer for this long is given up and tried again.
        public var timeout = 30.0
        public init(logPath: String, site: String, positionPath: String) {
            (self.logPath, self.site, self.positionPath) = (logPath, site, positionPath)
        }
    }

    /// How far the site's log has been shipped.
    public struct Position: Codable, Sendable, Equatable {
        public var inode: UInt64 = 0
        public var offset: Int64 = 0
        public var seq: Int64 = 0
        public var chain: String?
        /// When the last batch committed (seconds since 1970), and the bytes then still unread.
        public var shipped: Double?
        public var behind: Int64?
        public var lastError: String?

        enum CodingKeys: String, CodingKey {
            case inode, offset, seq, chain, shipped, behind
            case lastError = "last_error"
        }
    }

    /// The forwarders' positions beside a log (`forward-SITE.position`), as lines for
    /// `esafety status`: the site, when it last shipped, how much of the log is not yet shipped,
    /// and, while batches fail (the store away, its disk full, rows it passes over), the last
    /// failure.
    public static func summary(besideLog log: String, now: Double = Clock.now()) -> [String] {
        let folder = log.lastIndex(of: "/").map { String(log[..<$0]) } ?? "."
        let names = ((try? FileSystem.listDirectory(folder)) ?? []).filter {
            $0.hasPrefix("forward-") && $0.hasSuffix(".position")
        }.sorted()
        return names.compactMap { name in
            guard let text = try? FileSystem.readText(folder + "/" + name),
                let p = try? JSONDecoder().decode(Position.self, from: Data(text.utf8))
            else { return nil }
            let site = name.dropFirst("forward-".count).dropLast(".position".count)
            let when = p.shipped.map { "last shipped \(Int(now - $0)) s ago" } ?? "nothing shipped yet"
            let error = p.lastError.map { "; not shipping, trying again: \($0)" } ?? ""
            return "forwarding site \(site) to the central store: line \(p.seq), \(when), "
                + "\(p.behind ?? 0) byte(s) of the log not yet shipped\(error)"
        }
    }

    public static func validSite(_ s: String) -> Bool { PlainName.matches(s, longest: 64, also: "-._") }

    let settings: Settings
    let database: CentralDatabase
    let logger: Logger
    public private(set) var position: Position
    /// A position file that is there but not one this esafety can read (damaged, cut, edited):
    /// the log is shipped again from its start, what the store holds passed over.
    public let positionUnreadable: Bool

    public init(settings: Settings, database: CentralDatabase, logger: Logger) {
        self.settings = settings
        self.database = database
        self.logger = logger
        let saved = (try? FileSystem.readText(settings.positionPath)).flatMap {
            try? JSONDecoder().decode(Position.self, from: Data($0.utf8))
        }
        position = saved ?? Position()
        positionUnreadable = saved == nil && access(settings.positionPath, F_OK) == 0
    }

    func save() {
        guard let data = try? JSONEncoder().encode(position) else { return }
        do {
            try data.withUnsafeBytes { try FileSystem.writeAtomically(settings.positionPath, bytes: $0, mode: 0o640) }
        } catch {
            logger.error("forward: \(settings.positionPath): cannot save the position: \(error)")
        }
    }

    static func inode(_ path: String) -> (inode: UInt64, size: Int64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_ino), Int64(st.st_size))
    }

    /// One line read and checked, ready to ship.
    struct Line {
        var seq: Int64
        var text: String
        var chain: String
        var intact: Bool
        var event: String
        var id: String
        var time: String
        /// What the incidents table keeps of an incident line.
        var incident: IncidentFields?
        var end: Int64
        /// The chain value the next line follows: this line's, or (when it has none) the last
        /// line's that had one.
        var carried: String?
        /// Why the line is kept as text (an `unreadable` record of it), not as the site wrote it:
        /// the store would refuse it (`StoredText.refusedByJSONB`, or PostgreSQL's own refusal).
        var refused: String? = nil

        /// The head found by position and an incident's fields read without decoding the whole
        /// record; a line in any other shape is decoded whole.
        static func fields(_ text: String) -> (event: String, id: String, time: String, incident: IncidentFields?) {
            if let h = LogLine.head(text), let time = LogLine.time(text) {
                guard h.event == "incident" else { return (String(h.event), String(h.id), time, nil) }
                if let f = IncidentFields(line: text) { return ("incident", f.id, f.time, f) }
            }
            guard let record = LogRecord(line: text) else { return ("unreadable", "", "", nil) }
            guard case .incident(let r) = record else { return (record.event, record.id ?? "", record.time, nil) }
            return (record.event, r.id, r.time.text, IncidentFields(r))
        }
    }

    /// The next lines after the position, from the file it names or the files after it: at
    /// most `batch`, all from one file.
    func nextLines() -> (file: String, inode: UInt64, lines: [Line], remaining: Int64) {
        let files = IncidentStore.withRotations(settings.logPath)
        let stats = files.map { Self.inode($0) }
        var index = stats.firstIndex { $0?.inode == position.inode }
        var offset = position.offset
        if index == nil {
            index = 0
            offset = 0
            if position.inode != 0 {
                // The file is gone, but its lines may not be: a log restored from the store, or
                // copied to a new disk, holds the line shipped last, known by its chain value.
                if let chain = position.chain, let found = Self.find(chain: chain, in: files) {
                    let message =
                        "forward: the file shipped last (inode \(position.inode)) is gone; the line shipped last is "
                        + "found in \(files[found.index]) (the log restored or copied): going on after it"
                    logger.notice("\(message)")
                    (index, offset) = (found.index, found.end)
                    position.inode = stats[found.index]?.inode ?? 0
                    position.offset = found.end
                } else {
                    let message =
                        "forward: the file shipped last (inode \(position.inode)) is gone, and the line shipped last "
                        + "is in no file of the log; reading \(files.first ?? "") on"
                    logger.warning("\(message)")
                    // Taken as the place to read from, so that the files are not searched again
                    // (nor this said again) at each try while the store is away.
                    position.inode = stats.first??.inode ?? 0
                    position.offset = 0
                }
            }
        }
        guard var i = index else { return ("", 0, [], 0) }
        // Bytes after the position that make no line yet (one being written, or one that will
        // never end): shown as not yet shipped, never as caught up.
        var unread: Int64 = 0
        while i < files.count {
            guard let st = stats[i] else {
                i += 1
                continue
            }
            var start = offset
            if st.size < start {
                logger.critical(
                    "forward: \(files[i]) is shorter than what was shipped from it: it was cut; reading it again"
                )
                start = 0
            }
            if st.size > start {
                let lines = read(files[i], from: start)
                // What is left unread once these lines are shipped: this file's rest and the files after it.
                let remaining = stats[i...].compactMap { $0?.size }.reduce(0, +) - (lines.last?.end ?? start)
                if !lines.isEmpty { return (files[i], st.inode, lines, remaining) }
                unread += st.size - start
            }
            i += 1
            offset = 0
        }
        return ("", 0, [], unread)
    }

    /// The longest line read whole; a longer one (esafetyd writes none: a log damaged or
    /// edited) is shipped as an `unreadable` record of its start and its length, marked.
    static let longestLine = 64 << 20

    /// A batch's first read, and the most read at once (a line longer than that is read on
    /// its own, up to `longestLine`).
    static let firstRead = 1 << 16
    static let largestRead = 1 << 22

    func read(_ path: String, from offset: Int64) -> [Line] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        // Not zeroed first: only the bytes pread fills are read. A batch's lines are a small part
        // of the largest read (500 of esafetyd's lines are about 200 KB): the read starts small
        // and grows four times over, up to `largestRead`, reading only the bytes after those it
        // holds, while it holds fewer than a batch of lines and the file has more (reading 4 MiB
        // for every batch cost each forwarder about a fifteenth of its CPU, in the kernel's
        // copies and page faults).
        var size = Self.firstRead
        var buffer: [UInt8] = []
        var (ends, scanned) = (0, 0)
        while true {
            let held = buffer
            buffer = [UInt8](unsafeUninitializedCapacity: size) { b, count in
                _ = UnsafeMutableBufferPointer(rebasing: b[..<held.count]).initialize(fromContentsOf: held)
                let got = pread(fd, b.baseAddress! + held.count, size - held.count, off_t(offset) + off_t(held.count))
                count = held.count + max(0, got)
            }
            guard buffer.count == size, size < Self.largestRead else { break }
            while ends < settings.batch, let j = Self.nextNewline(buffer, from: scanned) {
                (ends, scanned) = (ends + 1, j + 1)
            }
            if ends >= settings.batch { break }
            size = min(size * 4, Self.largestRead)
        }
        let n = buffer.count
        guard n > 0 else { return [] }
        var lines: [Line] = []
        var seq = position.seq
        var chain = position.chain
        func add(_ text: String, end: Int64, length: Int? = nil) {
            seq += 1
            let checked = length == nil ? HashChain.follows(Substring(text), previous: chain) : nil
            let value = checked?.chain ?? ""
            let unreadable: (event: String, id: String, time: String, incident: IncidentFields?) = (
                "unreadable", "", "", nil
            )
            var f = length == nil ? Line.fields(text) : unreadable
            var stored = text
            // A line that breaks the chain may not even be JSON (a corrupted byte), and one that is
            // JSON may hold what PostgreSQL's jsonb does not take (half a surrogate pair, a number
            // beyond its range): PostgreSQL would refuse the whole batch, and the forwarder would
            // try it for ever. It is shipped marked, its bytes kept as a string in an
            // `unreadable` record.
            let refused = length == nil ? StoredText.refusedByJSONB(text).map { $0 + Self.whose(f.event, f.id) } : nil
            if length != nil || refused != nil
                || (!(checked?.intact ?? false) && (try? JSONSerialization.jsonObject(with: Data(text.utf8))) == nil)
            {
                stored = Self.unreadable(text, bytes: length, refused: refused)
                f = unreadable
            }
            // What PostgreSQL cannot hold (a NUL) made storable, after the chain was checked on
            // the line's own bytes.
            lines.append(
                Line(
                    seq: seq,
                    text: StoredText.json(stored),
                    chain: value.isEmpty ? "unsealed-\(seq)" : value,
                    intact: (checked?.intact ?? false) && refused == nil,
                    event: StoredText.column(f.event),
                    id: StoredText.key(f.id),
                    time: StoredText.key(f.time),
                    incident: f.incident.map(StoredText.fields),
                    end: end,
                    carried: value.isEmpty ? chain : value,
                    refused: refused
                )
            )
            if !value.isEmpty { chain = value }
        }
        var start = 0
        while lines.count < settings.batch, let j = Self.nextNewline(buffer, from: start) {
            let text = String(decoding: buffer[start..<j], as: UTF8.self)
            let end = offset + Int64(j + 1)
            start = j + 1
            if text.isEmpty { continue }
            add(text, end: end)
        }
        // No end of line in a full buffer: a line longer than it, read whole up to
        // `longestLine` (found by its end of line; one still being written is waited for).
        if start == 0, n == Self.largestRead, let newline = Self.newline(fd, from: offset + Int64(n)) {
            let length = Int(newline - offset)
            if length <= Self.longestLine {
                let whole = [UInt8](unsafeUninitializedCapacity: length) { b, count in
                    count = max(0, pread(fd, b.baseAddress, length, off_t(offset)))
                }
                if whole.count == length { add(String(decoding: whole, as: UTF8.self), end: newline + 1) }
            } else {
                add(String(decoding: buffer.prefix(4096), as: UTF8.self), end: newline + 1, length: length)
            }
        }
        return lines
    }

    /// The file (its index in `files`, the newest searched first) holding the line whose chain
    /// value is `chain`, and the offset just after that line's end.
    static func find(chain: String, in files: [String]) -> (index: Int, end: Int64)? {
        let pattern = Array("\"chain\":\"\(chain)\"".utf8)
        let size = 1 << 22
        var buffer = [UInt8](repeating: 0, count: size)
        for i in files.indices.reversed() {
            let fd = open(files[i], O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var offset: Int64 = 0
            while true {
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, off_t(offset)) }
                guard n >= pattern.count else { break }
                let at = buffer.withUnsafeBytes { b in
                    pattern.withUnsafeBytes { firstIndex(of: $0, in: UnsafeRawBufferPointer(rebasing: b[..<n])) }
                }
                if let at {
                    guard let newline = newline(fd, from: offset + Int64(at)) else { return nil }
                    return (i, newline + 1)
                }
                if n < size { break }
                // The next read overlaps this one by a pattern's length less one: a match cut by
                // the buffer's end is found whole.
                offset += Int64(n - pattern.count + 1)
            }
        }
        return nil
    }

    /// The offset of the first end of line in `buffer` at or after `from` (memchr).
    static func nextNewline(_ buffer: [UInt8], from: Int) -> Int? {
        guard from < buffer.count else { return nil }
        return buffer.withUnsafeBufferPointer { b in
            memchr(b.baseAddress! + from, 0x0A, b.count - from).map {
                UnsafePointer<UInt8>($0.assumingMemoryBound(to: UInt8.self)) - b.baseAddress!
            }
        }
    }

    /// Where the next end of line is at or after `offset`, if the file has one.
    static func newline(_ fd: Int32, from offset: Int64) -> Int64? {
        var at = offset
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let got = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(at)) }
            guard got > 0 else { return nil }
            if let i = chunk[..<got].firstIndex(of: 0x0A) { return at + Int64(i) }
            at += Int64(got)
        }
    }

    struct Timeout: Error, CustomStringConvertible {
        var what: String
        var seconds: Double
        var description: String { "no answer in \(Int(seconds)) s while \(what)" }
    }

    /// The result of `work`, or a `Timeout` once `seconds` pass without one. The work is left
    /// to finish (or never) on its own: a PostgreSQL that died mid-answer is not waited for.
    static func within<T: Sendable>(
        _ seconds: Double,
        _ what: String,
        _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let once = Once<T>()
        return try await withCheckedThrowingContinuation { continuation in
            once.set(continuation)
            Task {
                do { once.resume(.success(try await work())) } catch { once.resume(.failure(error)) }
            }
            Task {
                try? await Task.sleep(for: .seconds(seconds))
                once.resume(.failure(Timeout(what: what, seconds: seconds)))
            }
        }
    }

    /// An error in words that hold no query text or values (a child's record must not reach the
    /// journal): PostgreSQL's code and message, or the connection's failure.
    public static func describe(_ error: any Error) -> String {
        // A failure inside a transaction (a migration, a batch): the statement's own error.
        if let t = error as? PostgresTransactionError,
            let inner = t.beginError ?? t.closureError ?? t.commitError ?? t.rollbackError
        {
            return describe(inner)
        }
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] {
                let state = e.serverInfo?[.sqlState]
                // A column of another type, or a table, column or function not there: the store's
                // schema is older than this esafety (a school upgraded before its trust's store).
                let older = ["42804", "42P01", "42703", "42883"].contains(state ?? "")
                return "\(state.map { "SQLSTATE \($0): " } ?? "")\(message)"
                    + (older
                        ? " (the central store's schema is older than this esafety: its administrator runs "
                            + "`esafety central init` on it first)" : "")
            }
            return "\(e.code)\(e.underlying.map { ": \($0)" } ?? "")"
        }
        return String(describing: error).prefix(200).description
    }

    /// Ships lines until `stop` says so: reconnecting with back-off when the store is away.
    public func run(stop: @escaping @Sendable () -> Bool) async {
        var backoff = 1.0
        var connection: PostgresConnection?
        while !stop() {
            do {
                if connection == nil {
                    let (database, logger) = (self.database, self.logger)
                    let c = try await Self.within(settings.timeout, "connecting") {
                        try await database.connect(logger: logger)
                    }
                    connection = c
                    // Not within the timeout: going back through a long log for the store's last
                    // line takes a while, and is done once.
                    let held = try await Self.within(settings.timeout, "reading the store's head") {
                        try await self.held(c)
                    }
                    reconcile(with: held)
                    if position.lastError != nil {
                        logger.notice("forward: connected to \(database) again; catching up")
                        position.lastError = nil
                        save()
                    }
                    backoff = 1
                }
                let c = connection!
                switch try await Self.within(settings.timeout, "shipping a batch", { try await self.batch(c) }) {
                case .shipped(let count): if count == 0 { try await Task.sleep(for: .seconds(settings.poll)) }
                case .behind(let held): rewind(to: held)
                }
            } catch {
                let message = "\(database): \(Self.describe(error))"
                if position.lastError != message {
                    logger.error("forward: \(message); retrying every \(Int(settings.maxBackoff)) s at most")
                }
                position.lastError = message
                save()
                // Dropped, not awaited: a connection to a server that died may never answer.
                if let dropped = connection { Task { try? await dropped.close() } }
                connection = nil
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(backoff * 2, settings.maxBackoff)
            }
        }
        try? await connection?.close()
    }

    /// The store's last line of this site, as `esafety.heads` has it: its line count and chain
    /// value, 0 and nil when the store holds none of the site's lines. Thrown by a batch that
    /// finds the store holding fewer lines than come before it.
    struct Held: Error, Equatable {
        var seq: Int64 = 0
        var chain: String?
    }

    /// Compares what the store holds of this site with what was shipped to it, on each new
    /// connection: a store restored from last night's backup, made anew, or whose rows of the
    /// site were removed holds fewer lines than the position says were shipped, and the
    /// forwarder would go on from its position, leaving them out for ever. It goes back to the
    /// store's last line instead (`rewind`), said as critical.
    public func resume(_ c: PostgresConnection) async throws {
        reconcile(with: try await held(c))
    }

    /// What the store holds of the site against what was shipped: behind, the position set
    /// back (`rewind`); ahead (a batch committed before a crash saved the position, or a log
    /// older than what was shipped), its last line looked for in the log, and when no file
    /// holds it, said as critical: the log was put back from an older copy (or is another
    /// site's), and the lines esafetyd writes on it fork the chain the store holds.
    func reconcile(with held: Held) {
        if held.seq < position.seq {
            rewind(to: held)
        } else if held.seq > position.seq, let chain = held.chain, chain.utf8.count == HashChain.valueLength,
            Self.find(chain: chain, in: IncidentStore.withRotations(settings.logPath)) == nil
        {
            let site = settings.site
            let message =
                "forward: the central store holds site \(site)'s lines up to line \(held.seq), and its last line is in "
                + "no file of this log, shipped up to line \(position.seq): the log is older than what was shipped "
                + "(put back from an older copy) or another site's. Put the log back from the store (docs/CENTRAL.md, "
                + "Backups) before esafetyd writes on: lines written now fork the chain the store holds"
            logger.critical("\(message)")
        }
    }

    func held(_ c: PostgresConnection) async throws -> Held {
        let rows = try await c.query(
            "SELECT seq, chain FROM esafety.heads WHERE site = \(settings.site)",
            logger: logger
        )
        var held = Held()
        for try await (seq, chain) in rows.decode((Int64, String).self) { held = Held(seq: seq, chain: chain) }
        return held
    }

    /// The position set back to just after the store's last line of this site, found in the log
    /// by its line count and checked by its chain value; to the log's start when the store holds
    /// none, or when its last line is not this log's (another log shipped as this site, or this
    /// one replaced): the lines the store holds are passed over as they are shipped again.
    func rewind(to held: Held) {
        let shipped = position.seq
        let error = position.lastError
        position = Position()
        var found = held.seq == 0
        while !found {
            let (_, inode, lines, remaining) = nextLines()
            guard let last = lines.last else { break }
            guard let line = lines.first(where: { $0.seq == held.seq }) else {
                moved(inode, last, remaining)
                continue
            }
            found = line.chain == held.chain
            if found { moved(inode, line, remaining + (last.end - line.end)) }
            break
        }
        if !found { position = Position() }
        position.lastError = error
        save()
        let site = settings.site
        let holds = held.seq == 0 ? "none of site \(site)'s lines" : "site \(site)'s lines up to line \(held.seq) only"
        let again =
            found
            ? (held.seq == 0
                ? "shipping the log again from its start" : "shipping them again from line \(held.seq + 1)")
            : "and its line \(held.seq) is not this log's (another log shipped as site \(site), or this one "
                + "replaced): shipping the log again from its start, the lines the store holds passed over"
        let why = "(restored from a backup, made anew, a standby promoted, or rows removed)"
        logger.critical(
            "forward: the central store holds \(holds), but lines up to \(shipped) were shipped to it \(why); \(again)"
        )
    }

    /// One batch: read, ship in one transaction, then advance and save the position; or, when
    /// the store was found behind, the position set back. The lines shipped (1 after a rewind).
    public func shipOnce(_ c: PostgresConnection) async throws -> Int {
        switch try await batch(c) {
        case .shipped(let count): return count
        case .behind(let held):
            rewind(to: held)
            return 1
        }
    }

    enum Batch: Sendable {
        case shipped(Int)
        /// The store holds fewer of the site's lines than come before the batch (found in its
        /// transaction, rolled back).
        case behind(Held)
    }

    func batch(_ c: PostgresConnection) async throws -> Batch {
        do {
            return .shipped(try await shipNext(c))
        } catch let held as Held {
            try await c.query("ROLLBACK", logger: logger)
            return .behind(held)
        }
    }

    func shipNext(_ c: PostgresConnection) async throws -> Int {
        let (file, inode, lines, remaining) = nextLines()
        guard let last = lines.last else {
            if position.behind != remaining {
                position.behind = remaining
                save()
            }
            return 0
        }
        // A batch is new but after a crash or a lost answer: it goes in without `ON CONFLICT`
        // (whose check before each row cost PostgreSQL about 5 us a line). A batch stored before
        // fails on the lines' key (or stores fewer rows than given: `Uncounted`); the server
        // answered, so it is rolled back here and the batch goes in again, passing over what is
        // there.
        do {
            let tampered: [Line]
            do {
                tampered = try await ship(c, lines, from: file, last: last, again: false)
            } catch let error where (error as? PSQLError)?.serverInfo?[.sqlState] == "23505" || error is Uncounted {
                if error is Uncounted {
                    logger.warning("forward: \(error); shipping the batch again, passing over what is stored")
                }
                try await c.query("ROLLBACK", logger: logger)
                tampered = try await ship(c, lines, from: file, last: last, again: true)
            }
            said(tampered, file)
            advance(inode, last, remaining)
        } catch let error as PSQLError where Self.refusal(error) != nil {
            // The store refuses the batch for what a line holds, and would refuse it again at
            // every try: the batch goes line by line, and a line refused alone is shipped as
            // text, marked and flagged, so the site's forwarding never stops on it.
            try await c.query("ROLLBACK", logger: logger)
            for line in lines {
                do {
                    said(try await ship(c, [line], from: file, last: line, again: true), file)
                } catch let error as PSQLError {
                    guard let refusal = Self.refusal(error) else { throw error }
                    try await c.query("ROLLBACK", logger: logger)
                    let kept = Self.refused(line, "refused by the central store: " + refusal)
                    said(try await ship(c, [kept], from: file, last: kept, again: true), file)
                }
                advance(inode, line, remaining + (last.end - line.end))
            }
        }
        return lines.count
    }

    /// Each line flagged centrally (not following the chain, or kept as text), said once it
    /// is stored (not for a try rolled back), once for each line.
    func said(_ flagged: [Line], _ file: String) {
        for line in flagged {
            let what =
                line.refused.map { "was kept as text (\($0)), not as the site wrote it" }
                ?? "does not follow the hash chain: changed, removed or inserted"
            let message =
                "forward: \(file): line \(line.seq) of site \(settings.site) \(what); shipped marked, "
                + "and flagged centrally"
            logger.critical("\(message)")
        }
    }

    /// The position after `line`, saved.
    func advance(_ inode: UInt64, _ line: Line, _ remaining: Int64) {
        moved(inode, line, remaining)
        position.shipped = Clock.now()
        save()
    }

    /// The position after `line`, not yet saved.
    func moved(_ inode: UInt64, _ line: Line, _ remaining: Int64) {
        position.inode = inode
        position.offset = line.end
        position.seq = line.seq
        position.chain = line.carried
        position.behind = max(0, remaining)
    }

    /// PostgreSQL's refusal of what a statement holds, in words without the values: its
    /// SQLSTATE and message when it is one a line's own content causes (class 22, data: a JSON
    /// escape jsonb does not take, a number out of its range; class 54, a limit: an index entry
    /// too long, JSON nested too deep; a value a constraint of the store refuses: 23502 not
    /// null, 23514 a check); nil for any other failure (the store away, its disk full, a key
    /// already there), which is tried again.
    static func refusal(_ error: PSQLError) -> String? {
        guard let state = error.serverInfo?[.sqlState],
            state.hasPrefix("22") || state.hasPrefix("54") || state == "23502" || state == "23514"
        else { return nil }
        // A message may quote the value it refused (`invalid input syntax for type ...: "..."`):
        // cut before its first quotation mark, so no child's record reaches the journal; the
        // table, column and constraint named by their own fields instead.
        let message = (error.serverInfo?[.message] ?? "").prefix { $0 != "\"" }
        let names = [
            ("table", PSQLError.ServerInfo.Field.tableName), ("column", .columnName), ("constraint", .constraintName),
        ]
        .compactMap { name, field in error.serverInfo?[field].map { "\(name) \($0)" } }
        return "SQLSTATE \(state): \(message.trimmingCharacters(in: CharacterSet(charactersIn: " :")))"
            + (names.isEmpty ? "" : " (\(names.joined(separator: ", ")))")
    }

    /// A line kept as text: an `unreadable` record of it as a JSON string (which any store takes),
    /// with its whole length when only its start is kept, and why when the store would refuse it.
    static func unreadable(_ text: String, bytes: Int? = nil, refused: String? = nil) -> String {
        var j = JSONText(capacity: text.utf8.count + 128)
        j.beginObject()
        j.field("event", .string("unreadable"))
        j.field("text", .string(text))
        if let bytes { j.field("bytes", .int(bytes)) }
        if let refused { j.field("refused", .string(refused)) }
        j.endObject()
        return String(decoding: j.bytes, as: UTF8.self)
    }

    /// What a line kept as text was, for its flag: `; it was the incident line of inc-...` (the
    /// trust then knows an incident is there whose row the store does not hold). Said only when
    /// the event and the id look like esafetyd's (an edited line's may hold anything).
    static func whose(_ event: String, _ id: String) -> String {
        guard PlainName.matches(event, longest: 32, also: "-_"), event != "unreadable" else { return "" }
        return "; it was the \(event) line" + (PlainName.isID(id) ? " of \(id)" : "")
    }

    /// A line the store refused, as it is kept there: an `unreadable` record of its text (a
    /// JSON string, which any store takes), marked; its chain value and place are the line's.
    static func refused(_ line: Line, _ why: String) -> Line {
        let why = why + whose(line.event, line.id)
        var kept = line
        kept.text = unreadable(line.text, refused: why)
        (kept.event, kept.id, kept.time, kept.incident, kept.intact) = ("unreadable", "", "", nil, false)
        kept.refused = why
        return kept
    }

    /// One batch in one transaction; `again`: some of it may be stored already. Returns the
    /// lines flagged here as not following the chain.
    func ship(
        _ c: PostgresConnection,
        _ lines: [Line],
        from file: String,
        last: Line,
        again: Bool
    ) async throws
        -> [Line]
    {
        let site = settings.site
        let log = logger
        // BEGIN and COMMIT by hand: after a failure the connection is dropped, not asked to roll
        // back (a server that died mid-batch never answers a ROLLBACK; it rolls back itself).
        try await c.query("BEGIN", logger: logger)
        do {
            // Every line of the batch in one statement; what comes back are the lines new here
            // (a batch shipped again finds its lines present, and applies nothing twice).
            let fresh = try await inserted(InsertLines(site: site, lines: lines), again: again, on: c)
            let new = fresh.count == lines.count ? lines : lines.filter { fresh.contains($0.chain) }
            // Every line that does not follow the chain is flagged, whether its bytes are new here
            // or not (a line copied within the log has the chain value of the line it copies, and
            // is stored once); what comes back are the flags new here.
            let broken = lines.filter { !$0.intact }
            var flagged = Set<Int64>()
            if !broken.isEmpty {
                let rows = try await c.query(
                    """
                    INSERT INTO esafety.tamper (site, seq, detail)
                    SELECT \(site), s, 'line ' || s || ' (' || \(file) || ') '
                        || coalesce('kept as text (' || nullif(r, '') || ')', 'does not follow the chain')
                    FROM unnest(\(broken.map(\.seq))::bigint[], \(broken.map { $0.refused ?? "" })::text[]) AS u(s, r)
                    ON CONFLICT DO NOTHING RETURNING seq
                    """,
                    logger: log
                )
                for try await seq in rows.decode(Int64.self) { flagged.insert(seq) }
            }
            // The batch's new incidents in one statement, each in the state the batch's own
            // actions leave it (an action always follows its incident in the log, so an incident
            // whose line is in the batch starts `new`); a row updated later would be written
            // twice, with every index of the table.
            var folded: [String: IncidentView.State] = [:]
            for l in new {
                if l.incident != nil {
                    if folded[l.id] == nil { folded[l.id] = .new }
                } else if let action = Workflow.Action(rawValue: l.event), let now = folded[l.id],
                    case .success(let next) = Workflow.next(now, action)
                {
                    folded[l.id] = next
                }
            }
            let incidents = InsertIncidents(
                site: site,
                incidents: new.compactMap { l in
                    l.incident.map { ($0, l.text, (folded[$0.id] ?? .new).rawValue) }
                }
            )
            let stored = incidents.incidents.isEmpty ? [] : try await inserted(incidents, again: again, on: c)
            // The actions on incidents the store already held, folded in order over the states
            // it holds: one SELECT ... FOR UPDATE and one UPDATE for the whole batch, not two per
            // action.
            let actions: [(id: String, action: Workflow.Action)] = new.compactMap { l in
                guard !stored.contains(l.id) else { return nil }
                return Workflow.Action(rawValue: l.event).map { (l.id, $0) }
            }
            if !actions.isEmpty {
                var names: [String] = []
                var seen = Set<String>()
                for a in actions where seen.insert(a.id).inserted { names.append(a.id) }
                let rows = try await c.query(
                    """
                    SELECT id, state FROM esafety.incidents WHERE site = \(site) AND id = ANY(\(names)::text[])
                    FOR UPDATE
                    """,
                    logger: log
                )
                var before: [String: IncidentView.State] = [:]
                for try await (id, state) in rows.decode((String, String).self) {
                    before[id] = IncidentView.State(rawValue: state)
                }
                var after = before
                for a in actions {
                    guard let now = after[a.id], case .success(let next) = Workflow.next(now, a.action) else {
                        continue
                    }
                    after[a.id] = next
                }
                let changed = after.filter { before[$0.key] != $0.value }.sorted { $0.key < $1.key }
                if !changed.isEmpty {
                    try await c.query(
                        """
                        UPDATE esafety.incidents AS i SET state = u.s
                        FROM unnest(\(changed.map(\.key))::text[], \(changed.map(\.value.rawValue))::text[]) AS u(i, s)
                        WHERE i.site = \(site) AND i.id = u.i
                        """,
                        logger: log
                    )
                }
            }
            // The head moved on, and the one the store held read in the same statement: a store
            // that holds fewer of the site's lines than come before this batch lost them (restored
            // from a backup, its rows removed) while this forwarder was connected.
            let heads = try await c.query(
                """
                WITH held AS (SELECT seq, chain FROM esafety.heads WHERE site = \(site)),
                moved AS (
                    INSERT INTO esafety.heads (site, seq, chain) VALUES (\(site), \(last.seq), \(last.chain))
                    ON CONFLICT (site) DO UPDATE SET seq = excluded.seq, chain = excluded.chain, updated = now()
                    WHERE esafety.heads.seq <= excluded.seq
                )
                SELECT seq, chain FROM held
                """,
                logger: log
            )
            var held = Held()
            for try await (seq, chain) in heads.decode((Int64, String).self) { held = Held(seq: seq, chain: chain) }
            if let first = lines.first, held.seq < first.seq - 1 { throw held }
            try await c.query("COMMIT", logger: logger)
            return broken.filter { flagged.contains($0.seq) }
        }
    }
}

/// A continuation resumed once, by whichever result comes first.
final class Once<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    private var done = false
    private var early: Result<T, any Error>?

    func set(_ c: CheckedContinuation<T, any Error>) {
        lock.lock()
        if let early {
            lock.unlock()
            c.resume(with: early)
            return
        }
        continuation = c
        lock.unlock()
    }

    func resume(_ result: Result<T, any Error>) {
        lock.lock()
        if done {
            lock.unlock()
            return
        }
        done = true
        guard let c = continuation else {
            early = result
            lock.unlock()
            return
        }
        continuation = nil
        lock.unlock()
        c.resume(with: result)
    }
}
