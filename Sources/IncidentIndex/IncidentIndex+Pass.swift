import Classifier
import GRDB
import Glibc
import Incidents

extension IncidentIndex {
    /// One reading of the log into the index: its prepared statements, and the workflow
    /// states it has changed and not yet written (in batches, in the table's order).
    struct Pass {
        let db: Database
        let insertIncident: Statement
        let insertEvent: Statement
        let insertReference: Statement
        let insertText: Statement
        let appendNote: Statement
        let lookup: Statement
        let setState: Statement
        /// What the pass has changed in incidents' rows and not yet written, by id: the rows of
        /// incidents it read (written whole at `flush`, so an incident whose actions and `hits`
        /// follow it closely, as they do, is written once) and changes to rows already written.
        var states: [String: Pending] = [:]
        /// How many incidents were read and not yet written (the next one's place in that order).
        var unwritten = 0
        /// The bytes of the lines held in `states`.
        var pendingBytes = 0

        /// An incident's row as the pass has it: its fields and line when it is not written yet
        /// (`new`, the `order` it was read in), or its place in the table; its workflow state
        /// (`changed`: not as the row has it), its latest `hits` and `verdict` lines when the
        /// pass read one.
        struct Pending {
            var new: (fields: IncidentFields, line: String, order: Int)?
            var seq: Int64
            var state: IncidentView.State
            var changed = false
            var hits: String? = nil
            /// The count of the latest `hits` line read (nil: none read).
            var hitCount: Int? = nil
            var verdict: String? = nil
            /// Notes on an incident not written yet: their words go into its full-text row with it.
            var notes: [String] = []
            var dirty: Bool { changed || hits != nil || verdict != nil }
            var bytes: Int {
                (new?.line.utf8.count ?? 0) + (hits?.utf8.count ?? 0) + (verdict?.utf8.count ?? 0)
                    + notes.reduce(0) { $0 + $1.utf8.count }
            }
        }

        init(_ db: Database) throws {
            self.db = db
            insertIncident = try db.makeStatement(
                sql: """
                    INSERT OR REPLACE INTO incidents (id, time, severity, rank, category, grp, client, user, person,
                    host, url, search_term, state, due, line, hits, verdict, hit_count)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            )
            insertEvent = try db.makeStatement(sql: "INSERT INTO events (id, event, time, line) VALUES (?, ?, ?, ?)")
            insertReference = try db.makeStatement(
                sql: "INSERT INTO events (id, event, time, ref) VALUES (?, ?, ?, ?)"
            )
            insertText = try db.makeStatement(sql: "INSERT INTO search (rowid, text) VALUES (?, ?)")
            appendNote = try db.makeStatement(sql: "UPDATE search SET text = text || ? WHERE rowid = ?")
            lookup = try db.makeStatement(sql: "SELECT state, seq FROM incidents WHERE id = ?")
            setState = try db.makeStatement(
                sql: """
                    UPDATE incidents SET state = ?, hits = coalesce(?, hits), verdict = coalesce(?, verdict),
                    hit_count = coalesce(?, hit_count) WHERE seq = ?
                    """
            )
        }

        /// Indexes the whole lines of `file` from `offset`, at most `budget` of them (each one
        /// taken from it): the offset after the last one read, and its chain.
        mutating func index(
            _ file: String,
            from offset: Int64,
            into u: inout Update,
            budget: inout Int
        ) throws -> (Int64, String?) {
            let fd = Glibc.open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw Failure(description: "\(file): cannot read: \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            var position = offset
            var chain: String? = nil
            var carry: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var read = offset
            while budget > 0 {
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(read)) }
                if n <= 0 { break }
                read += Int64(n)
                var start = 0
                for i in 0..<n where buffer[i] == 0x0A {
                    // A line begun in the block before is joined to its end; others are read in place.
                    let line =
                        carry.isEmpty
                        ? String(decoding: buffer[start..<i], as: UTF8.self)
                        : String(decoding: carry + buffer[start..<i], as: UTF8.self)
                    position += Int64(i - start + carry.count + 1)
                    carry.removeAll(keepingCapacity: true)
                    start = i + 1
                    if let c = HashChain.split(Substring(line))?.chain { chain = c }
                    u.lines += 1
                    try apply(line, into: &u)
                    if states.count >= 100_000 || pendingBytes >= 8 << 20 { try flush() }
                    budget -= 1
                    if budget <= 0 { return (position, chain) }
                }
                carry += buffer[start..<n]
            }
            return (position, chain)
        }

        /// A context line names every incident of the person it belongs to, and can be many
        /// kilobytes: kept once, the others refer to it (it was once stored once per incident,
        /// 18 KB a row, 17 times the size of the log).
        func context(_ ids: [String], time: String?, line: String) throws {
            var first: Int64? = nil
            for id in ids {
                if let first {
                    try insertReference.execute(arguments: [id, "context", time, first])
                } else {
                    try insertEvent.execute(arguments: [id, "context", time, line])
                    first = db.lastInsertedRowID
                }
            }
        }

        /// One line of the log into the index.
        mutating func apply(_ line: String, into u: inout Update) throws {
            // esafety's own lines by their head (`{"event":"NAME","id":"ID",...`) and the few fields
            // the index keeps; any other shape is decoded whole.
            let head = LogLine.head(line)
            if let h = head, h.event == "context", !h.id.isEmpty, let ids = LogLine.ids(line) {
                try context(ids.isEmpty ? [String(h.id)] : ids, time: LogLine.time(line), line: line)
                return
            }
            if let h = head, h.event != "context", !h.id.isEmpty {
                if h.event == "incident" {
                    if let f = IncidentFields(line: line) {
                        try incident(f, line: line, into: &u)
                        return
                    }
                } else {
                    let id = String(h.id)
                    if let action = Workflow.Action(rawValue: String(h.event)) {
                        let note = action == .note ? RecordFields.strings(line, keys: ["note"])?["note"] ?? nil : nil
                        try self.action(action, id: id, time: LogLine.time(line), note: note, line: line)
                    } else if h.event == "hits" || h.event == "verdict" {
                        try latest(String(h.event), id: id, time: LogLine.time(line), line: line)
                    }
                    return
                }
            }
            guard let record = LogRecord(line: line) else { return }
            switch record {
            case .incident(let r):
                try incident(IncidentFields(r), line: line, into: &u)
            case .context(let c):
                try context(c.ids, time: record.time, line: line)
            case .action(let a):
                try action(a.action, id: a.id, time: a.time, note: a.note, line: line)
            case .hits, .verdict:
                if let id = record.id { try latest(record.event, id: id, time: record.time, line: line) }
            case .lost, .truncated:
                break
            }
        }

        /// An incident: kept until `flush` writes its row, with what follows it meanwhile (a
        /// second line with the same id replaces the first, as it does in the table).
        mutating func incident(_ f: IncidentFields, line: String, into u: inout Update) throws {
            let id = f.id
            if let old = states[id] { pendingBytes -= old.bytes }
            let p = Pending(new: (f, line, unwritten), seq: 0, state: .new)
            unwritten += 1
            pendingBytes += p.bytes
            states[id] = p
            u.incidents += 1
        }

        /// A workflow action: its event, its note's words, and the state as a full read replays
        /// it (an action that does not fit the state is passed over).
        mutating func action(
            _ action: Workflow.Action,
            id: String,
            time: String?,
            note: String?,
            line: String
        )
            throws
        {
            try insertEvent.execute(arguments: [id, action.rawValue, time, line])
            guard var known = try pending(id) else { return }
            if case .success(let next) = Workflow.next(known.state, action) {
                (known.state, known.changed) = (next, true)
            }
            // A note's words join the incident's own in its full-text row: written with it, or
            // added to the row it has.
            if let note {
                if known.new != nil {
                    known.notes.append(note)
                    pendingBytes += note.utf8.count
                } else {
                    try appendNote.execute(arguments: [
                        IncidentIndex.indexed(IncidentIndex.searchText(addingNote: note)), known.seq,
                    ])
                }
            }
            states[id] = known
        }

        /// A `hits` or `verdict` line: an event of the incident, and its latest of that kind,
        /// which a list shows, kept in its row (a `hits` line's count too, as a fold takes it:
        /// from a line that reads as one).
        mutating func latest(_ event: String, id: String, time: String?, line: String) throws {
            try insertEvent.execute(arguments: [id, event, time, line])
            guard var known = try pending(id) else { return }
            pendingBytes -= known.bytes
            if event == "hits" {
                known.hits = line
                if case .hits(let h) = LogRecord(line: line) { known.hitCount = h.hits }
            } else {
                known.verdict = line
            }
            pendingBytes += known.bytes
            states[id] = known
        }

        /// The incident's row as this pass has it, or as the table has it (nil: no such incident).
        func pending(_ id: String) throws -> Pending? {
            if let known = states[id] { return known }
            guard let row = try Row.fetchOne(lookup, arguments: [id]),
                let state = IncidentView.State(rawValue: row["state"])
            else { return nil }
            return Pending(new: nil, seq: row["seq"], state: state)
        }

        /// Writes the incidents read so far (in the order read, so their places follow the log)
        /// and the rows changed (state, latest `hits` and `verdict`; in the table's order), and
        /// forgets them, so memory stays bounded.
        mutating func flush() throws {
            let pending = Array(states.values)
            for p in pending.filter({ $0.new != nil }).sorted(by: { $0.new!.order < $1.new!.order }) {
                let (f, line, _) = p.new!
                try insertIncident.execute(arguments: [
                    f.id, f.time, f.severity, f.rank, f.category, f.group, f.client, f.user, f.person, f.host, f.url,
                    f.searchTerm, p.state.rawValue, f.due, line, p.hits, p.verdict, p.hitCount ?? f.hits,
                ])
                // Its site, URL and search term, and the notes read so far, under its place in the table.
                try insertText.execute(arguments: [
                    db.lastInsertedRowID,
                    IncidentIndex.indexed(
                        IncidentIndex.searchText(host: f.host, url: f.url, searchTerm: f.searchTerm, notes: p.notes)
                    ),
                ])
            }
            for p in pending.filter({ $0.new == nil && $0.dirty }).sorted(by: { $0.seq < $1.seq }) {
                try setState.execute(arguments: [p.state.rawValue, p.hits, p.verdict, p.hitCount, p.seq])
            }
            states.removeAll(keepingCapacity: true)
            (unwritten, pendingBytes) = (0, 0)
        }
    }
}
