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
        let lookup: Statement
        let setState: Statement
        var states: [String: (state: IncidentView.State, changed: Bool, seq: Int64)] = [:]

        init(_ db: Database) throws {
            self.db = db
            insertIncident = try db.makeStatement(
                sql: """
                    INSERT OR REPLACE INTO incidents (id, time, severity, rank, category, grp, client, user, person,
                    host, url, search_term, state, due, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?)
                    """
            )
            insertEvent = try db.makeStatement(sql: "INSERT INTO events (id, event, time, line) VALUES (?, ?, ?, ?)")
            insertReference = try db.makeStatement(
                sql: "INSERT INTO events (id, event, time, ref) VALUES (?, ?, ?, ?)"
            )
            insertText = try db.makeStatement(sql: "INSERT INTO search (id, text) VALUES (?, ?)")
            lookup = try db.makeStatement(sql: "SELECT state, seq FROM incidents WHERE id = ?")
            setState = try db.makeStatement(sql: "UPDATE incidents SET state = ? WHERE seq = ?")
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
                    if states.count >= 100_000 { try flush() }
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
                        try insertEvent.execute(arguments: [id, String(h.event), LogLine.time(line), line])
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
                if let id = record.id { try insertEvent.execute(arguments: [id, record.event, record.time, line]) }
            case .lost, .truncated:
                break
            }
        }

        mutating func incident(_ f: IncidentFields, line: String, into u: inout Update) throws {
            try insertIncident.execute(arguments: [
                f.id, f.time, f.severity, f.rank, f.category, f.group, f.client, f.user, f.person, f.host, f.url,
                f.searchTerm, f.due, line,
            ])
            let id = f.id
            states[id] = (.new, false, db.lastInsertedRowID)
            try insertText.execute(arguments: [
                id, [f.host, f.url, f.searchTerm].compactMap { $0 }.joined(separator: " "),
            ])
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
            var known = states[id]
            if known == nil, let row = try Row.fetchOne(lookup, arguments: [id]),
                let state = IncidentView.State(rawValue: row["state"])
            {
                known = (state, false, row["seq"])
            }
            guard let current = known else { return }
            if case .success(let next) = Workflow.next(current.state, action) { states[id] = (next, true, current.seq) }
            if let note { try insertText.execute(arguments: [id, note]) }
        }

        /// Writes the states changed so far, in the table's order (by rowid: a rebuild changes
        /// most rows and so reads them in turn), and forgets them, so memory stays bounded.
        mutating func flush() throws {
            for s in states.values.filter(\.changed).sorted(by: { $0.seq < $1.seq }) {
                try setState.execute(arguments: [s.state.rawValue, s.seq])
            }
            states.removeAll(keepingCapacity: true)
        }
    }
}
