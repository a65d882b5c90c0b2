import Incidents
import PostgresNIO

/// One of a batch's two inserts, as a prepared statement: parsed and planned once per
/// connection, not once per batch (planning was about a twentieth of PostgreSQL's work per
/// batch). Its text in two forms: the usual one, which stores every row or fails (a row already
/// there breaks the key) and returns only how many it stored, and `again` (`Again`) for a batch
/// some of which may be stored already, which passes over a row already there and names each row
/// it stores by a string. Names sent back for every row of every batch cost both sides a row
/// each: PostgreSQL sent one per line and incident, the forwarder read them into a set.
protocol BatchInsert: PostgresPreparedStatement where Row == Int64 {
    static func text(again: Bool) -> String
    /// How many rows the statement is given.
    var count: Int { get }
}

extension BatchInsert {
    static var sql: String { text(again: false) }
    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }

    /// The usual form of `insert` (into and what it selects), counted, or its `again` form.
    static func counted(_ insert: String, again: Bool, returning name: String, onConflict key: String) -> String {
        again
            ? "\(insert)\nON CONFLICT \(key) DO NOTHING RETURNING \(name)"
            : "WITH stored AS (\(insert)\nRETURNING 1) SELECT count(*) FROM stored"
    }
}

extension Forwarder {
    /// The lines of a batch; returns the chain value of each line stored.
    struct InsertLines: BatchInsert {
        typealias Row = Int64

        static func text(again: Bool) -> String {
            counted(
                """
                INSERT INTO esafety.lines (site, seq, chain, event, id, time, line, intact)
                SELECT $1, s, c, e, NULLIF(i, ''), NULLIF(t, ''), l, k
                FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::boolean[])
                    AS u(s, c, e, i, t, l, k)
                """,
                again: again, returning: "chain", onConflict: "(site, chain)"
            )
        }

        var site: String
        var lines: [Line]
        var count: Int { lines.count }

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
        typealias Row = Int64

        static func text(again: Bool) -> String {
            counted(
                """
                INSERT INTO esafety.incidents (site, id, time, severity, category, grp, person, host, due, record, state)
                SELECT $1, i, t, NULLIF(s, ''), c, g, p, h, NULLIF(d, ''), r::jsonb, st
                FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                    $9::text[], $10::text[], $11::text[]) AS u(i, t, s, c, g, p, h, d, r, st)
                """,
                again: again, returning: "id", onConflict: "(site, id)"
            )
        }

        var site: String
        /// Each incident's fields, its line and its state.
        var incidents: [(fields: IncidentFields, line: String, state: String)]
        var count: Int { incidents.count }

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

    /// What `insert` stored, the names of its rows: nil when it stored every row, in its usual
    /// form (which stores all or fails). In its `again` form, when some of the batch may be
    /// stored already, each row stored is named by PostgreSQL. A usual form that stores fewer
    /// rows than it was given without failing (nothing in the store's schema does that; a rule
    /// or trigger added by hand could) is thrown as `Uncounted`, and the batch goes again.
    func inserted<Insert: BatchInsert>(
        _ insert: Insert,
        again: Bool,
        on c: PostgresConnection
    ) async throws -> Set<String>? {
        guard again else {
            var stored: Int64 = -1
            for try await n in try await c.execute(insert, logger: logger) { stored = n }
            guard stored == insert.count else { throw Uncounted(expected: insert.count, stored: stored) }
            return nil
        }
        var names = Set<String>()
        for try await name in try await c.execute(Again(insert: insert), logger: logger) { names.insert(name) }
        return names
    }

    /// A batch's usual insert that stored other than every row it was given.
    struct Uncounted: Error, CustomStringConvertible {
        var expected: Int
        var stored: Int64
        var description: String { "a batch's insert of \(expected) row(s) stored \(stored)" }
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
