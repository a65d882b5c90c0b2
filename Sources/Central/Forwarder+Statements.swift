import Incidents
import PostgresNIO

/// One of a batch's two inserts, as a prepared statement: parsed and planned once per
/// connection, not once per batch (planning was about a twentieth of PostgreSQL's work per
/// batch). Its text in two forms: the usual one, and `again` for a batch some of which may be
/// stored already (a row already there is passed over). Each row it stores is named by a string.
protocol BatchInsert: PostgresPreparedStatement where Row == String {
    static func text(again: Bool) -> String
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
            \(again ? "ON CONFLICT (site, chain) DO NOTHING" : "") RETURNING chain
            """
        }

        var site: String
        var lines: [Line]

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
            \(again ? "ON CONFLICT (site, id) DO NOTHING" : "") RETURNING id
            """
        }

        var site: String
        /// Each incident's fields, its line and its state.
        var incidents: [(fields: IncidentFields, line: String, state: String)]

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
    /// may be stored already.
    func inserted<Insert: BatchInsert>(
        _ insert: Insert,
        again: Bool,
        on c: PostgresConnection
    ) async throws -> Set<String> {
        var names = Set<String>()
        if again {
            for try await name in try await c.execute(Again(insert: insert), logger: logger) { names.insert(name) }
        } else {
            for try await name in try await c.execute(insert, logger: logger) { names.insert(name) }
        }
        return names
    }

    /// A batch's usual insert (which stores every row or fails) that stored fewer rows than it
    /// was given without failing: nothing in the store's schema does that, but a rule or trigger
    /// added by hand could. The batch goes again, passing over what is stored.
    struct Uncounted: Error, CustomStringConvertible {
        var expected: Int
        var stored: Int
        var description: String { "a batch's insert of \(expected) row(s) stored \(stored)" }
    }

    /// Rows of a batch shipped again (`again`) that the store neither stored nor held already:
    /// passed over without an error, as a rule or trigger added to the store by hand could.
    /// Nothing moves on past them: the batch is rolled back and tried again, said in status.
    struct NotStored: Error, CustomStringConvertible {
        var what: String
        var count: Int
        var description: String {
            "\(count) \(what) of a batch neither stored nor held by the central store already (a rule or "
                + "trigger there passes over rows): not moving on past them"
        }
    }

    /// In a batch shipped again, the rows `insert` did not store (`names`, by its key `key` in
    /// `table`) are taken as held already only once the store is seen to hold them. `table` and
    /// `key` are written into the query as they are: the callers' own constants, never a value.
    func checkHeld(
        _ names: Set<String>,
        _ what: String,
        in table: String,
        key: String,
        on c: PostgresConnection
    )
        async throws
    {
        guard !names.isEmpty else { return }
        let rows = try await c.query(
            """
            SELECT count(*) FROM esafety.\(unescaped: table)
            WHERE site = \(settings.site) AND \(unescaped: key) = ANY(\(Array(names))::text[])
            """,
            logger: logger
        )
        var held = 0
        for try await n in rows.decode(Int.self) { held = n }
        if held < names.count { throw NotStored(what: what, count: names.count - held) }
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
