import Incidents
import PostgresNIO

/// One of a batch's two inserts, as a prepared statement: parsed and planned once per
/// connection, not once per batch (planning was about a twentieth of PostgreSQL's work per
/// batch). Its text in two forms: the usual one, and `again` for a batch some of which may be
/// stored already (a row already there is passed over). Each row it stores is named by a string:
/// its key (`key`, a column of `table`), as `names` names the rows it is given.
protocol BatchInsert: PostgresPreparedStatement where Row == String {
    static func text(again: Bool) -> String
    /// The table, the column that names a row of the batch in it (with its site), and what its
    /// rows are called when said.
    static var table: String { get }
    static var key: String { get }
    static var rows: String { get }
    /// How many rows it is given, and each one's name in the order given.
    var count: Int { get }
    var names: [String] { get }
}

extension BatchInsert {
    func decodeRow(_ row: PostgresRow) throws -> String { try row.decode(String.self) }
}

extension Forwarder {
    /// The lines of a batch; returns the chain value of each line stored.
    struct InsertLines: BatchInsert {
        typealias Row = String
        static let sql = InsertLines.text(again: false)

        static func text(again: Bool) -> String {
            """
            INSERT INTO esafety.lines (site, seq, chain, event, id, time, line, intact)
            SELECT $1, s, c, e, NULLIF(i, ''), NULLIF(t, ''), l, k
            FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::boolean[])
                AS u(s, c, e, i, t, l, k)
            \(again ? "ON CONFLICT (site, \(key)) DO NOTHING" : "") RETURNING \(key)
            """
        }

        static let table = "lines"
        static let key = "chain"
        static let rows = "line(s)"
        var site: String
        var lines: [Line]
        var count: Int { lines.count }
        var names: [String] { lines.map(\.chain) }

        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 8)
            b.append(site)
            b.append(lines.map(\.seq))
            b.append(lines.map(\.chain))
            b.append(lines.map(\.event))
            b.append(lines.map(\.id))
            b.append(lines.map(\.time))
            b.append(lines.map(\.text))
            b.append(lines.map(\.intact))
            return b
        }
    }

    /// The incidents new in a batch, each in the state the batch's own actions leave it;
    /// returns the id of each stored.
    struct InsertIncidents: BatchInsert {
        typealias Row = String
        static let sql = InsertIncidents.text(again: false)

        static func text(again: Bool) -> String {
            """
            INSERT INTO esafety.incidents (site, id, time, severity, category, grp, person, host, due, record, state)
            SELECT $1, i, t, NULLIF(s, ''), c, g, p, h, NULLIF(d, ''), r::jsonb, st
            FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                $9::text[], $10::text[], $11::text[]) AS u(i, t, s, c, g, p, h, d, r, st)
            \(again ? "ON CONFLICT (site, \(key)) DO NOTHING" : "") RETURNING \(key)
            """
        }

        static let table = "incidents"
        static let key = "id"
        static let rows = "incident(s)"
        var site: String
        /// Each incident's fields, its line and its state.
        var incidents: [(fields: IncidentFields, line: String, state: String)]
        var count: Int { incidents.count }
        var names: [String] { incidents.map(\.fields.id) }

        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 11)
            b.append(site)
            b.append(incidents.map(\.fields.id))
            b.append(incidents.map(\.fields.time))
            b.append(incidents.map(\.fields.severity))
            b.append(incidents.map(\.fields.category))
            b.append(incidents.map(\.fields.group))
            b.append(incidents.map(\.fields.person))
            b.append(incidents.map(\.fields.host))
            b.append(incidents.map { $0.fields.due ?? "" })
            b.append(incidents.map(\.line))
            b.append(incidents.map(\.state))
            return b
        }
    }

    /// What `insert` stored (the names of its rows), in its `again` form when some of the batch
    /// may be stored already. Never fewer rows than given, taken as shipped: in its usual form
    /// (which stores every row or fails) fewer is thrown as `Uncounted`, and the batch goes
    /// again; in its `again` form each row not stored must be one the store holds already, or
    /// `NotStored` is thrown and nothing moves on past it. A rule or trigger added to the store
    /// by hand may pass over a row without an error; nothing in the store's schema does.
    func inserted<Insert: BatchInsert>(
        _ insert: Insert,
        again: Bool,
        on c: PostgresConnection
    ) async throws -> Set<String> {
        var names = Set<String>()
        if again {
            for try await name in try await c.execute(Again(insert: insert), logger: logger) { names.insert(name) }
            try await checkHeld(Set(insert.names).subtracting(names), of: Insert.self, on: c)
        } else {
            for try await name in try await c.execute(insert, logger: logger) { names.insert(name) }
            if names.count != insert.count { throw Uncounted(given: insert.count, stored: names.count) }
        }
        return names
    }

    /// A batch's usual insert that stored fewer rows than it was given, without failing.
    struct Uncounted: Error, CustomStringConvertible {
        var given: Int
        var stored: Int
        var description: String { "a batch's insert of \(given) row(s) stored \(stored)" }
    }

    /// Rows of a batch shipped again that the store neither stored nor held already. The batch
    /// is rolled back and tried again, said in status.
    struct NotStored: Error, CustomStringConvertible {
        var count: Int
        var rows: String
        var description: String {
            "\(count) \(rows) of a batch neither stored nor held by the central store already (a rule or "
                + "trigger there passes over rows): not moving on past them"
        }
    }

    /// Rows not stored by a batch shipped again (`missing`) are taken as held already only once
    /// the store is seen to hold them. The table and key are the insert type's own constants,
    /// written into the query as they are, never a value.
    func checkHeld<Insert: BatchInsert>(
        _ missing: Set<String>,
        of: Insert.Type,
        on c: PostgresConnection
    )
        async throws
    {
        guard !missing.isEmpty else { return }
        let rows = try await c.query(
            """
            SELECT count(*) FROM esafety.\(unescaped: Insert.table)
            WHERE site = \(settings.site) AND \(unescaped: Insert.key) = ANY(\(Array(missing))::text[])
            """,
            logger: logger
        )
        var held = 0
        for try await n in rows.decode(Int.self) { held = n }
        if held < missing.count { throw NotStored(count: missing.count - held, rows: Insert.rows) }
    }

    /// A batch's insert for a batch some of which may be stored already.
    struct Again<Insert: BatchInsert>: PostgresPreparedStatement {
        typealias Row = String
        static var sql: String { Insert.text(again: true) }
        var insert: Insert
        func makeBindings() throws -> PostgresBindings { try insert.makeBindings() }
        func decodeRow(_ row: PostgresRow) throws -> String { try row.decode(String.self) }
    }
}
