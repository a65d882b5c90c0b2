import CSQLiteReset
import Classifier
import Foundation
import GRDB
import Glibc
import Incidents
import SystemSupport

/// An SQLite index of the incident log: derived from it, never its replacement. The log
/// (append-only, hash-chained) stays the source of truth; the index holds each incident's
/// searchable fields and the log's own lines (the record and every event naming it), so
/// the tools find incidents with a query and show them by folding those lines exactly as a
/// full read of the log would.
///
/// The index records how far it has read: the file (by inode), the byte offset after the last
/// whole line, and that line's chain value. `update()` goes on from there, through rotated
/// files (`LOG.N` ... `LOG.1`, `LOG`), and starts again from nothing when the log no longer
/// agrees with it: the file is gone (recovered, replaced), shorter than the offset, or the line
/// at the offset has another chain value. A missing, unreadable, corrupt or older-schema index
/// is rebuilt, never trusted.
public final class IncidentIndex: @unchecked Sendable {
    public let logPath: String
    public let path: String
    let db: DatabaseQueue
    /// 9: the full-text rows' text folded (`indexed`), so an index made before is made again.
    static let schemaVersion = "9"

    /// The index kept beside a log: `LOG.index.sqlite`.
    public static func path(forLog log: String) -> String { log + ".index.sqlite" }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Opens (making or remaking it when needed) the index of `logPath` for writing.
    public init(logPath: String, path: String? = nil) throws(Failure) {
        self.logPath = logPath
        self.path = path ?? Self.path(forLog: logPath)
        do {
            db = try Self.open(self.path)
        } catch {
            // Unreadable or not a database: made again from the log.
            for suffix in ["", "-journal", "-wal", "-shm"] { unlink(self.path + suffix) }
            do { db = try Self.open(self.path) } catch {
                throw Failure(description: "\(self.path): cannot create the incident index: \(error)")
            }
        }
    }

    /// Opens an index that this account may only read (a coordinator's, kept by esafetyd):
    /// nil unless it exists, is this version's, and has read the log to its end.
    public static func reading(logPath: String, path: String? = nil) -> IncidentIndex? {
        guard let index = readOnly(logPath: logPath, path: path), (try? index.isCurrent()) == true else { return nil }
        return index
    }

    /// The index beside a log opened only to read, whether or not it is current (nil when there
    /// is none, or it cannot be opened).
    static func readOnly(logPath: String, path: String?) -> IncidentIndex? {
        let file = path ?? Self.path(forLog: logPath)
        guard FileSystem.exists(file) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        guard let queue = try? DatabaseQueue(path: file, configuration: configuration) else { return nil }
        return IncidentIndex(logPath: logPath, path: file, queue: queue)
    }

    init(logPath: String, path: String, queue: DatabaseQueue) {
        (self.logPath, self.path, self.db) = (logPath, path, queue)
    }

    /// Whether the index has read every line of the log (the live file, to its end, and its
    /// line at the cursor agrees).
    public func isCurrent() throws -> Bool {
        try db.read { db in
            guard (try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema'")) == Self.schemaVersion,
                let c = try cursor(db)
            else { return false }
            var st = stat()
            guard stat(logPath, &st) == 0, UInt64(st.st_ino) == c.inode, Int64(st.st_size) == c.offset else {
                return false
            }
            return Self.chain(endingAt: c.offset, in: logPath) == c.chain
        }
    }

    static func open(_ path: String) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // Derived data: a crash may leave it behind or damaged, and then it is made again from
        // the log; so no fsync per commit, and a cache for the writer of 32 MB at most.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = OFF; PRAGMA cache_size = -32000; PRAGMA temp_store = MEMORY")
        }
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        chmod(path, 0o640)
        let version = try queue.read { db in
            try? String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema'")
        }
        if version != schemaVersion {
            // Another version's index, or none yet: emptied and made again (another process
            // doing the same at once empties an empty index; the schema is made only if absent).
            try empty(queue)
        }
        try queue.read { db in
            // A page the index cannot read is found here rather than in the middle of a query.
            _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM meta")
        }
        return queue
    }

    /// Empties the index to this version's schema and nothing else. SQLite's reset of the file
    /// (`esafety_sqlite_reset`: the file cut to one page, a journal of a few KB), not `DROP` or
    /// `DELETE`, which copy every page they free into the rollback journal first: over an index
    /// of ten million incidents (26 GB), 17 GB of journal for the drop of an older schema, on
    /// the disk that holds the log. The file shrinks to what it holds again.
    static func empty(_ queue: DatabaseQueue) throws {
        try queue.writeWithoutTransaction { db in
            let rc = esafety_sqlite_reset(UnsafeMutableRawPointer(db.sqliteConnection))
            guard rc == 0 else {
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: "emptying the index")
            }
            db.clearSchemaCache()
        }
        try queue.write { db in try createSchema(db) }
    }

    /// This version's tables and indexes, where they are not yet (two processes emptying an
    /// index at once both make it). The full-text table (`search`) has a row per incident,
    /// numbered by its place (`seq`): its site, URL and search term, then each note on it, a
    /// line each.
    static func createSchema(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS incidents (
                    seq INTEGER PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    time TEXT NOT NULL,
                    severity TEXT NOT NULL,
                    rank INTEGER NOT NULL,
                    category TEXT NOT NULL,
                    grp TEXT NOT NULL,
                    client TEXT NOT NULL,
                    user TEXT,
                    person TEXT NOT NULL,
                    host TEXT NOT NULL,
                    url TEXT,
                    search_term TEXT,
                    state TEXT NOT NULL,
                    due TEXT,
                    line TEXT NOT NULL,
                    hits TEXT,
                    verdict TEXT,
                    hit_count INTEGER NOT NULL
                );
                CREATE TABLE IF NOT EXISTS events (
                    seq INTEGER PRIMARY KEY, id TEXT NOT NULL, event TEXT NOT NULL, time TEXT, line TEXT, ref INTEGER
                );
                CREATE INDEX IF NOT EXISTS incidents_open ON incidents (state, rank, due);
                CREATE INDEX IF NOT EXISTS incidents_person ON incidents
                    (person, time, seq, severity, grp, category, host, state, hit_count, id);
                CREATE INDEX IF NOT EXISTS incidents_time ON incidents (time);
                CREATE INDEX IF NOT EXISTS incidents_category ON incidents (category, time);
                CREATE INDEX IF NOT EXISTS incidents_group ON incidents (grp, time);
                CREATE INDEX IF NOT EXISTS events_id ON events (id, seq);
                CREATE INDEX IF NOT EXISTS events_time ON events (time);
                CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5 (text);
                INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', '\(schemaVersion)');
                """
        )
    }

    // MARK: - Following the log

    /// Where the index has read to.
    struct Cursor: Equatable {
        var inode: UInt64
        var offset: Int64
        var chain: String
    }

    func cursor(_ db: Database) throws -> Cursor? {
        let rows = try Row.fetchAll(db, sql: "SELECT key, value FROM meta")
        var m: [String: String] = [:]
        for r in rows { m[r["key"]] = r["value"] }
        guard let inode = m["inode"].flatMap(UInt64.init), let offset = m["offset"].flatMap(Int64.init) else {
            return nil
        }
        return Cursor(inode: inode, offset: offset, chain: m["chain"] ?? "")
    }

    static func inode(of path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
    }

    /// What an update did.
    public struct Update: Sendable, Equatable {
        public var rebuilt: Bool
        public var lines: Int
        public var incidents: Int
    }

    /// Reads what the log has beyond the cursor into the index; rebuilds from the first
    /// rotated file when the log no longer agrees with the index.
    ///
    /// The work is committed every `step` lines with the cursor where it stopped, so a long
    /// read (a rebuild of millions of incidents takes minutes) keeps what it has done if the
    /// process stops or is killed, and the next update goes on from there. `shouldStop` is
    /// asked between steps: true ends the update early (the rest is read next time).
    /// `progress` is told the running total after each step that did not reach the end.
    @discardableResult
    public func update(
        step: Int = 200_000,
        shouldStop: () -> Bool = { false },
        progress: (Update) -> Void = { _ in }
    ) throws(Failure) -> Update {
        var total = Update(rebuilt: false, lines: 0, incidents: 0)
        var emptied = 0
        while true {
            guard let (u, finished) = try updateStep(lines: max(1, step)) else {
                // The log was cut, recovered or replaced: the index starts again, from nothing.
                // (Again only if another process filled it meanwhile from another log's state.)
                emptied += 1
                guard emptied <= 3 else {
                    throw Failure(description: "\(path): the log changed under the index three times in one update")
                }
                try empty()
                total.rebuilt = true
                continue
            }
            total.lines += u.lines
            total.incidents += u.incidents
            if finished || shouldStop() { return total }
            progress(total)
        }
    }

    /// One transaction of at most `limit` lines; whether it reached the end of the log. Nil,
    /// having read nothing, when the log no longer agrees with what the index holds (the
    /// caller empties it, outside a transaction, and goes on).
    func updateStep(lines limit: Int) throws(Failure) -> (Update, Bool)? {
        do {
            return try db.write { db -> (Update, Bool)? in
                let files = IncidentStore.withRotations(logPath).filter { FileSystem.exists($0) }
                var start = 0
                var offset: Int64 = 0
                var lastChain = ""
                if let c = try cursor(db), let k = files.firstIndex(where: { Self.inode(of: $0) == c.inode }),
                    Self.chain(endingAt: c.offset, in: files[k]) == c.chain
                {
                    start = k
                    offset = c.offset
                    lastChain = c.chain
                } else if try cursor(db) != nil
                    || (try Int.fetchOne(db, sql: "SELECT count(*) FROM incidents")) ?? 0 > 0
                {
                    return nil
                }
                var u = Update(rebuilt: false, lines: 0, incidents: 0)
                var pass = try Pass(db)
                var budget = limit
                for (i, file) in files.enumerated() where i >= start {
                    let from = i == start ? offset : 0
                    let (end, chain) = try pass.index(file, from: from, into: &u, budget: &budget)
                    // A file with nothing new keeps the chain value it ended with.
                    if let chain { lastChain = chain } else if end == 0 { lastChain = "" }
                    if let inode = Self.inode(of: file), end > from || i == files.count - 1 {
                        try setCursor(Cursor(inode: inode, offset: end, chain: lastChain), db)
                    }
                    if budget <= 0 {
                        try pass.flush()
                        return (u, false)
                    }
                }
                try pass.flush()
                return (u, true)
            }
        } catch let error as Failure {
            throw error
        } catch {
            throw Failure(description: "\(path): cannot update the incident index: \(error)")
        }
    }

    /// Deletes everything and reads the whole log again; `progress` as in `update`.
    @discardableResult
    public func rebuild(progress: (Update) -> Void = { _ in }) throws(Failure) -> Update {
        try empty()
        var u = try update(progress: progress)
        u.rebuilt = true
        return u
    }

    /// Empties the index (`empty(_:)`).
    func empty() throws(Failure) {
        do { try Self.empty(db) } catch {
            throw Failure(description: "\(path): cannot empty the incident index: \(error)")
        }
    }

    func setCursor(_ c: Cursor, _ db: Database) throws {
        for (k, v) in [("inode", String(c.inode)), ("offset", String(c.offset)), ("chain", c.chain)] {
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [k, v])
        }
    }

    /// How far an index has read its log: bytes read and bytes in the log and its rotations
    /// (what a long first build has done, while esafetyd builds it; the index is opened only to
    /// read). Nil when there is no index, or its place is in no file of the log (it will be
    /// made again from the start).
    public static func progress(logPath: String, path: String? = nil) -> (read: Int64, total: Int64)? {
        guard let index = readOnly(logPath: logPath, path: path),
            let cursor = try? index.db.read({ try index.cursor($0) })
        else { return nil }
        var read: Int64 = 0
        var total: Int64 = 0
        var found = false
        for f in IncidentStore.withRotations(logPath) {
            var st = stat()
            guard stat(f, &st) == 0 else { continue }
            total += Int64(st.st_size)
            if UInt64(st.st_ino) == cursor.inode {
                found = true
                read += min(cursor.offset, Int64(st.st_size))
            } else if !found {
                read += Int64(st.st_size)
            }
        }
        return found ? (read, total) : nil
    }

    /// How far behind the log an index may be for a tool or the console to bring it up to date
    /// itself: a few seconds' work. Beyond it (esafetyd building it, after an upgrade or on a
    /// first start) esafetyd's own thread does it, in committed steps, and the others wait.
    public static let catchUpLimit: Int64 = 64_000_000

    /// How many bytes of the log and its rotations the index beside it has read, and their
    /// size: none read when there is no index, or its place is in none of the files.
    static func read(logPath: String, path: String? = nil) -> (read: Int64, total: Int64) {
        progress(logPath: logPath, path: path) ?? (0, logBytes(logPath))
    }

    /// How many bytes of the log and its rotations the index beside it has not read.
    public static func unread(logPath: String, path: String? = nil) -> Int64 {
        let r = read(logPath: logPath, path: path)
        return r.total - r.read
    }

    /// The index beside `logPath` that can answer now: brought up to date here when this
    /// account may write it and it is at most `catchUpLimit` behind (`writable`), else opened
    /// only to read once it has read the whole log, waiting up to `wait` seconds for esafetyd
    /// (which reads what was appended once a second). Nil when none can: far behind (esafetyd
    /// building it, after an upgrade or on a first start, is left to do it), or not current
    /// within the wait. Opening it to write makes one where there is none.
    public static func answering(logPath: String, wait: Double = 0) -> (index: IncidentIndex, writable: Bool)? {
        if let writable = try? IncidentIndex(logPath: logPath) {
            guard unread(logPath: logPath) <= catchUpLimit else { return nil }
            if (try? writable.update()) != nil { return (writable, true) }
        }
        guard unread(logPath: logPath) <= catchUpLimit else { return nil }
        let deadline = Clock.now() + wait
        while true {
            if let current = reading(logPath: logPath) { return (current, false) }
            if Clock.now() >= deadline { return nil }
            usleep(100_000)
        }
    }

    /// Bytes as this module's messages (and `esafety index status`) give them: "12.3 MB".
    public static func megabytes(_ bytes: Int64) -> String { String(format: "%.1f MB", Double(bytes) / 1_000_000) }

    /// The size of a log and its rotations.
    public static func logBytes(_ logPath: String) -> Int64 {
        IncidentStore.withRotations(logPath).reduce(0) { total, file in
            var st = stat()
            return total + (stat(file, &st) == 0 ? Int64(st.st_size) : 0)
        }
    }

    /// Why an index that is not current cannot answer yet, in a reader's words: how much of the
    /// log it has read, and who brings it up to date.
    public static func behind(logPath: String, path: String? = nil) -> String {
        let (read, size) = read(logPath: logPath, path: path)
        let percent = size > 0 ? read * 100 / size : 0
        return "\(path ?? Self.path(forLog: logPath)): the incident index has read \(percent)% "
            + "of the log (\(megabytes(read)) of \(megabytes(size))); esafetyd brings it up to date on its own "
            + "thread, and incidents are answered from it once it has read the whole log (`esafety index status` "
            + "shows how far it is; with "
            + "esafetyd stopped, `esafety index rebuild` as its account makes it)"
    }

    /// The chain value of the line that ends at `offset` (nil at 0 or when there is none).
    static func chain(endingAt offset: Int64, in file: String) -> String? {
        guard offset > 0 else { return "" }
        let fd = Glibc.open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let size = min(offset, 1 << 20)
        var buffer = [UInt8](repeating: 0, count: Int(size))
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset - size)) }
        guard n == Int(size), buffer.last == 0x0A else { return nil }
        let body = buffer.dropLast()
        let start = body.lastIndex(of: 0x0A).map { $0 + 1 } ?? body.startIndex
        return HashChain.field(Substring(String(decoding: body[start...], as: UTF8.self)), "chain") ?? ""
    }

    // MARK: - Queries

    /// What the tools ask for; nil fields do not filter.
    public struct Query: Sendable {
        public var open = false
        /// One workflow state (`new`, `acknowledged`, `escalated`, `resolved`, `false-positive`).
        public var state: String?
        /// New (not acknowledged) and past its due time at `now`.
        public var overdueAt: String?
        public var severity: String?
        public var category: String?
        public var group: String?
        public var user: String?
        public var client: String?
        /// A pupil's history: incidents whose user, or address when there is no user, is this.
        public var person: String?
        public var since: String?
        public var until: String?
        /// Text in the host, URL or search term, or in a note on the incident.
        public var text: String?
        /// The newest this many (nil: all), newest first.
        public var limit: Int?
        /// Newest by when they were written to the log (tail), not by their time.
        public var lastWritten = false
        public init() {}
    }

    /// The incidents a query selects, newest first, each as a full read of the log shows it.
    public func incidents(_ q: Query) throws(Failure) -> [IncidentView] {
        try summaryViews(sql: select(Self.summaryColumns, q), arguments(q))
    }

    /// What a list prints of the incidents a query selects, newest first (`IncidentSummary`):
    /// read from the columns, no record decoded. A pupil's history is read from the person
    /// index alone, which holds these columns in the order printed, so its thousands of rows
    /// are read together rather than each from its own page of the table.
    public func summaries(_ q: Query) throws(Failure) -> [IncidentSummary] {
        let sql = select(Self.listColumns, q)  // which may count a search's rows first, a read of its own
        do {
            return try db.read { db in
                var out: [IncidentSummary] = []
                let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments(q))
                while let row = try rows.next() {
                    out.append(
                        IncidentSummary(
                            time: row[0],
                            severity: Severity(name: row[1]),
                            group: row[2],
                            person: row[3],
                            category: row[4],
                            host: row[5],
                            hits: row[6],
                            state: IncidentView.State(rawValue: row[7]) ?? .new,
                            id: row[8]
                        )
                    )
                }
                return out
            }
        } catch {
            throw Failure(description: "\(path): cannot read the incident index: \(error)")
        }
    }

    /// What a list prints, as columns (all of them in the person index).
    static let listColumns = "time, severity, grp, person, category, host, hit_count, state, id"

    /// A query's arguments, in the order of `select`'s placeholders.
    func arguments(_ q: Query) -> StatementArguments {
        var args: [(any DatabaseValueConvertible)?] = []
        if let now = q.overdueAt { args.append(now) }
        for value in [q.state, q.severity, q.category, q.group, q.user, q.client, q.person] {
            if let value { args.append(value) }
        }
        if let since = q.since { args.append(since) }
        if let until = q.until { args.append(until) }
        if let words = q.text.map(Self.fullTextQuery) { args.append(words) }
        return StatementArguments(args)
    }

    /// The SQL selecting `columns` of the incidents `q` selects, newest first.
    func select(_ columns: String, _ q: Query) -> String {
        var clauses: [String] = []
        if q.open { clauses.append("state IN ('new', 'acknowledged', 'escalated')") }
        if q.overdueAt != nil { clauses.append("state = 'new' AND due IS NOT NULL AND due < ?") }
        for (column, value) in [
            ("state", q.state), ("severity", q.severity), ("category", q.category), ("grp", q.group), ("user", q.user),
            ("client", q.client), ("person", q.person),
        ] where value != nil {
            clauses.append("\(column) = ?")
        }
        if q.since != nil { clauses.append("time >= ?") }
        if q.until != nil { clauses.append("time < ?") }
        let words = q.text.map(Self.fullTextQuery)
        if words != nil {
            // An incident's words (its own and its notes') are the full-text row numbered by its
            // place (`seq`): the incidents come from the full-text index's row numbers alone,
            // no row of it read (reading an id from each match's row was most of a common
            // word's time: 100 ms at a million, 12 ms without).
            clauses.append("seq IN (SELECT rowid FROM search WHERE search MATCH ?)")
        }
        let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let limit = q.limit.map { " LIMIT \($0)" } ?? ""
        let order = q.lastWritten ? "seq DESC" : "time DESC, seq DESC"
        // Without a filter an index narrows (a person, a category, words few incidents have),
        // walk the newest first and stop at the limit, rather than sort every open incident.
        // Words are narrow when at most `Self.fewMatches` rows of the full-text table have them
        // (counted, up to that, from its own index): then those incidents are read and sorted;
        // a walk by time would read every incident for a word none has (1 s at a million).
        // (Counted only when a walk by time would be chosen otherwise.)
        func fewWords() -> Bool {
            words.map { (try? fullTextRows($0, upTo: Self.fewMatches)) ?? 0 <= Self.fewMatches } ?? false
        }
        let narrowed = [q.person, q.user, q.client, q.category, q.group].contains { $0 != nil }
        let walk = !narrowed && !q.lastWritten && q.limit != nil && !fewWords()
        let source = walk ? "incidents INDEXED BY incidents_time" : "incidents"
        return "SELECT \(columns) FROM \(source)\(filter) ORDER BY \(order)\(limit)"
    }

    /// Below this many rows with a search's words, they are read from the full-text table and
    /// sorted, rather than every incident walked newest first.
    static let fewMatches = 2_000

    /// How many rows of the full-text table match `query` (a `fullTextQuery`), counted up to `cap + 1`.
    func fullTextRows(_ query: String, upTo cap: Int) throws -> Int {
        try db.read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT count(*) FROM (SELECT rowid FROM search WHERE search MATCH ? LIMIT ?)",
                arguments: [query, cap + 1]
            ) ?? 0
        }
    }

    /// The incidents whose id is `id`, or starts with it (at most two: enough to tell whether
    /// a prefix names one incident).
    public func incidents(idOrPrefix id: String) throws(Failure) -> [IncidentView] {
        let exact = try views(sql: "SELECT id FROM incidents WHERE id = ?", [id])
        if !exact.isEmpty { return exact }
        // A range on the unique index (LIKE would read every row).
        return try views(
            sql: "SELECT id FROM incidents WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
            [id, id + "\u{10FFFF}"]
        )
    }

    /// What a report of [since, until) needs (RFC 3339 times): every incident opened in the
    /// period, and every older one that may have been open at its end (open now, or acted on
    /// since the period began). A superset: the report replays each one's actions to the end
    /// of the period itself. Each incident's history without its context lines, which a report
    /// does not show: a context line names every incident of its pupil and can be 10-20 KB, so
    /// folding it into each of them made a day of 135,000 incidents take 177 s and 6.8 GB.
    public func incidents(reportFrom since: String, until: String) throws(Failure) -> [IncidentView] {
        try views(
            sql: """
                SELECT id FROM incidents WHERE time < ? AND (time >= ? OR state IN ('new', 'acknowledged', 'escalated')
                OR id IN (SELECT id FROM events WHERE time >= ?)) ORDER BY seq
                """,
            [until, since, since],
            context: false
        )
    }

    /// New incidents per day (UTC) and severity in [since, until), for charts: day -> severity -> count.
    public func perDay(since: String, until: String) throws(Failure) -> [String: [String: Int]] {
        do {
            return try db.read { db in
                var out: [String: [String: Int]] = [:]
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT substr(time, 1, 10) AS day, severity, count(*) AS n FROM incidents
                        WHERE time >= ? AND time < ? GROUP BY 1, 2
                        """,
                    arguments: [since, until]
                )
                for r in rows { out[r["day"], default: [:]][r["severity"]] = r["n"] }
                return out
            }
        } catch {
            throw Failure(description: "\(path): cannot read the incident index: \(error)")
        }
    }

    /// Open incidents by severity, and those of them overdue at `now` (RFC 3339), for a
    /// dashboard. Each count walks the open-state index for one severity and stops past `cap`:
    /// a value of `cap + 1` means "more than `cap`", so the cost is bounded however many
    /// incidents are open.
    public func openCounts(
        now: String,
        cap: Int = 10_000
    ) throws(Failure) -> (
        open: [String: Int], overdue: [String: Int]
    ) {
        do {
            return try db.read { db in
                var open: [String: Int] = [:]
                var overdue: [String: Int] = [:]
                for severity in Severity.allCases {
                    let rank = Int(severity.rawValue)
                    let n =
                        try Int.fetchOne(
                            db,
                            sql: """
                                SELECT count(*) FROM (SELECT 1 FROM incidents
                                WHERE state IN ('new', 'acknowledged', 'escalated') AND rank = ? LIMIT ?)
                                """,
                            arguments: [rank, cap + 1]
                        ) ?? 0
                    let late =
                        try Int.fetchOne(
                            db,
                            sql: """
                                SELECT count(*) FROM (SELECT 1 FROM incidents
                                WHERE state = 'new' AND rank = ? AND due IS NOT NULL AND due < ? LIMIT ?)
                                """,
                            arguments: [rank, now, cap + 1]
                        ) ?? 0
                    if n > 0 { open[severity.description] = n }
                    if late > 0 { overdue[severity.description] = late }
                }
                return (open, overdue)
            }
        } catch {
            throw Failure(description: "\(path): cannot read the incident index: \(error)")
        }
    }

    /// Incidents by state, for a dashboard: (state, severity) -> count.
    public func counts() throws(Failure) -> [String: [String: Int]] {
        do {
            return try db.read { db in
                // By the severity's rank, from the index of open incidents alone (state, rank):
                // grouping by the severity's name read every row (1.8 s at a million incidents).
                var out: [String: [String: Int]] = [:]
                let sql = "SELECT state, rank, count(*) AS n FROM incidents INDEXED BY incidents_open GROUP BY 1, 2"
                for r in try Row.fetchAll(db, sql: sql) {
                    let rank: Int = r["rank"]
                    let name = UInt8(exactly: rank).flatMap(Severity.init(rawValue:))?.description ?? "none"
                    out[r["state"], default: [:]][name, default: 0] += r["n"] as Int
                }
                return out
            }
        } catch {
            throw Failure(description: "\(path): cannot read the incident index: \(error)")
        }
    }

    /// The incidents a list shows, each from its own line, its state as the index keeps it (the
    /// workflow replayed as the log was read), its latest `hits` and `verdict` lines: two to
    /// four lines read per incident instead of its whole history (`incidents(idOrPrefix:)` folds
    /// that, for `show` and the incident page). A list's view has no `events`; everything a list
    /// shows (the record, its state, hits, last seen, due) is as a full fold gives it.
    func summaryViews(sql: String, _ arguments: StatementArguments) throws(Failure) -> [IncidentView] {
        do {
            return try db.read { db in
                var out: [IncidentView] = []
                let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
                while let row = try rows.next() {
                    if let v = Self.summary(row, at: 0) { out.append(v) }
                }
                return out
            }
        } catch {
            throw Failure(description: "\(path): cannot read the incident index: \(error)")
        }
    }

    /// The place of the incident written last, in the order the index read them (0: none).
    public func lastWritten() throws(Failure) -> Int64 {
        do {
            return try db.read { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM incidents") ?? 0 }
        } catch {
            throw Failure(description: "\(path): cannot read the incident index: \(error)")
        }
    }

    /// The incidents written after place `after` (`lastWritten()`), oldest first, at most
    /// `limit`, as a list shows them, and the place of the last one read (`after` when none):
    /// read together, so none written meanwhile is passed over. The live stream follows this
    /// cursor, so a flood of any size is announced whole, `limit` a poll.
    public func incidents(writtenAfter after: Int64, limit: Int) throws(Failure) -> ([IncidentView], Int64) {
        do {
            return try db.read { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: "SELECT seq, \(Self.summaryColumns) FROM incidents WHERE seq > ? ORDER BY seq LIMIT ?",
                    arguments: [after, limit]
                )
                let last: Int64 = rows.last?[0] ?? after
                return (rows.compactMap { Self.summary($0, at: 1) }, last)
            }
        } catch {
            throw Failure(description: "\(path): cannot read the incident index: \(error)")
        }
    }

    /// What a list shows of an incident, as a query's columns (after any it selects first): its
    /// line, its state, its latest `hits` and `verdict` lines, all kept in its own row (a
    /// pupil's history of thousands reads one row each, not the events of each as well).
    static let summaryColumns = "incidents.line, incidents.state, incidents.hits, incidents.verdict"

    /// The view of a row with `summaryColumns` from column `at` on.
    static func summary(_ row: Row, at c: Int) -> IncidentView? {
        IncidentView.summary(line: row[c], state: row[c + 1], hits: row[c + 2], verdict: row[c + 3])
    }

    /// The incidents `sql` selects by id, each with its whole history folded (`context`:
    /// false leaves its context lines out).
    func views(
        sql: String,
        _ args: [(any DatabaseValueConvertible)?],
        context: Bool = true
    ) throws(Failure) -> [IncidentView] {
        do {
            return try db.read { db in
                let ids = try String.fetchAll(db, sql: sql, arguments: StatementArguments(args))
                var out: [IncidentView] = []
                out.reserveCapacity(ids.count)
                let record = try db.makeStatement(sql: "SELECT line FROM incidents WHERE id = ?")
                let events = try db.makeStatement(
                    sql: """
                        SELECT coalesce(e.line, r.line) FROM events e LEFT JOIN events r ON r.seq = e.ref
                        WHERE e.id = ?\(context ? "" : " AND e.event <> 'context'") ORDER BY e.seq
                        """
                )
                for id in ids {
                    guard let line = try String.fetchOne(record, arguments: [id]) else { continue }
                    let lines = [line] + (try String.fetchAll(events, arguments: [id]))
                    if let v = IncidentStore.fold(lines: lines).last(where: { $0.id == id }) {
                        out.append(v)
                    }
                }
                return out
            }
        } catch {
            throw Failure(description: "\(path): cannot read the incident index: \(error)")
        }
    }
}
