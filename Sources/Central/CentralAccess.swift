import Logging
import PostgresNIO
import SystemSupport

/// Who may read or write what in the central store: a login role's parts (membership of the
/// store's group roles, `esafety_school` ...) and its sites (`esafety.site_roles`), given,
/// taken away and listed. The database enforces them (row-level security); these only change
/// and show them. Run as the database's administrator.
public enum CentralAccess {
    /// The parts a role may have, each a group role `esafety_PART`.
    public static let parts = ["school", "trust", "forwarder", "it", "governor", "console"]
    static var groups: [String] { parts.map { "esafety_" + $0 } }

    /// A login role's name as grant and revoke take it: it goes into their SQL as written, so
    /// nothing that would need quoting, and at most PostgreSQL's 63 bytes (a longer name would
    /// be cut there and not here).
    public static func validRole(_ role: String) -> Bool { PlainName.matches(role, longest: 63, also: "_") }

    public struct InvalidRole: Error, CustomStringConvertible {
        public var role: String
        public var description: String { "not a role's name: lower-case letters, digits and _ only, 1 to 63" }
    }

    /// `role` (lower-case letters, digits, _: `validRole`) made a member of the part's
    /// group, and given `sites`; a console for every site is made a member of the trust's too.
    public static func grant(
        _ c: PostgresConnection,
        role: String,
        part: String,
        sites: [String],
        logger: Logger
    ) async throws {
        guard parts.contains(part) else { throw UnknownPart(part: part) }
        guard validRole(role) else { throw InvalidRole(role: role) }
        try await c.query("BEGIN", logger: logger)
        try await c.query(PostgresQuery(unsafeSQL: "GRANT esafety_\(part) TO \(role)"), logger: logger)
        if part == "console" && sites.isEmpty {
            try await c.query(PostgresQuery(unsafeSQL: "GRANT esafety_trust TO \(role)"), logger: logger)
        }
        try await c.query(
            """
            INSERT INTO esafety.site_roles (role, site) SELECT \(role), s FROM unnest(\(sites)::text[]) AS u(s)
            ON CONFLICT DO NOTHING
            """,
            logger: logger
        )
        let given = part == "console" && sites.isEmpty ? [part, "trust"] : [part]
        try await record(c, "grant", role: role, parts: given, sites: sites, logger: logger)
        try await c.query("COMMIT", logger: logger)
    }

    /// A change of access, in `esafety.access_changes`, in the change's transaction.
    static func record(
        _ c: PostgresConnection,
        _ what: String,
        role: String,
        parts: [String],
        sites: [String],
        logger: Logger
    ) async throws {
        try await c.query(
            """
            INSERT INTO esafety.access_changes (what, role, parts, sites)
            VALUES (\(what), \(role), \(parts)::text[], \(sites)::text[])
            """,
            logger: logger
        )
    }

    /// A change of access as `esafety.access_changes` keeps it.
    public struct Change: Sendable, Equatable {
        public var at: String
        public var account: String
        public var what: String
        public var role: String
        public var parts: [String]
        public var sites: [String]
    }

    /// The changes of access, newest first (the trust's, IT's or the administrator's role).
    public static func changes(_ c: PostgresConnection, limit: Int, logger: Logger) async throws -> [Change] {
        let rows = try await c.query(
            """
            SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), account::text, what, role, parts,
                sites
            FROM esafety.access_changes ORDER BY n DESC LIMIT \(limit)
            """,
            logger: logger
        )
        var out: [Change] = []
        for try await (at, account, what, role, parts, sites) in rows.decode(
            (String, String, String, String, [String], [String]).self
        ) {
            out.append(Change(at: at, account: account, what: what, role: role, parts: parts, sites: sites))
        }
        return out
    }

    public struct UnknownPart: Error, CustomStringConvertible {
        public var part: String
        public var description: String { "no part \(part): \(CentralAccess.parts.joined(separator: ", "))" }
    }

    /// What `revoke` took away.
    public struct Revoked: Sendable {
        /// Whether the login role is there at all.
        public var exists: Bool
        /// The parts it was a member of, and no longer is (every part, when no sites were named).
        public var parts: [String]
        /// The sites it had, and no longer has.
        public var sites: [String]
    }

    /// `sites` taken from `role`; or, when nil, every part and every site it has. In one
    /// transaction; effective at the role's next statement.
    public static func revoke(
        _ c: PostgresConnection,
        role: String,
        sites: [String]?,
        logger: Logger
    ) async throws -> Revoked {
        guard validRole(role) else { throw InvalidRole(role: role) }
        try await c.query("BEGIN", logger: logger)
        var exists = false
        for try await _ in try await c.query("SELECT 1 FROM pg_roles WHERE rolname = \(role)", logger: logger)
            .decode(Int.self)
        {
            exists = true
        }
        var taken: [String] = []
        if exists && sites == nil {
            let rows = try await c.query(
                """
                SELECT g.rolname::text FROM pg_auth_members m
                    JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
                WHERE r.rolname = \(role) AND g.rolname = ANY(\(groups)::text[]) ORDER BY 1
                """,
                logger: logger
            )
            for try await group in rows.decode(String.self) { taken.append(group) }
            for group in taken {
                try await c.query(PostgresQuery(unsafeSQL: "REVOKE \(group) FROM \(role)"), logger: logger)
            }
        }
        var gone: [String] = []
        let rows = try await c.query(
            """
            DELETE FROM esafety.site_roles
            WHERE role = \(role) AND (\(sites == nil) OR site = ANY(\(sites ?? [])::text[])) RETURNING site
            """,
            logger: logger
        )
        for try await site in rows.decode(String.self) { gone.append(site) }
        let parts = taken.map { String($0.dropFirst("esafety_".count)) }
        if !parts.isEmpty || !gone.isEmpty {
            try await record(c, "revoke", role: role, parts: parts, sites: gone.sorted(), logger: logger)
        }
        try await c.query("COMMIT", logger: logger)
        return Revoked(exists: exists, parts: parts, sites: gone.sorted())
    }

    /// A role with a part in the store, or sites in its list.
    public struct Access: Sendable, Equatable {
        public var role: String
        public var login: Bool
        public var parts: [String]
        public var sites: [String]
    }

    /// `roles` asked by a role that row-level security shows only its own sites.
    public struct NotAdministrator: Error, CustomStringConvertible {
        public var role: String
        public var description: String {
            "\(role) sees only its own row of who may read which site: run this as the database's administrator "
                + "(the superuser, or the owner of the schema)"
        }
    }

    /// Every role that is a member of one of the store's groups or has sites, by name. Only the
    /// database's administrator sees every role's sites; anyone else is refused, not shown a part.
    public static func roles(_ c: PostgresConnection, logger: Logger) async throws -> [Access] {
        let who = try await c.query(
            """
            SELECT current_user::text, r.rolsuper OR r.rolbypassrls
                OR pg_has_role(current_user, t.relowner, 'USAGE')
            FROM pg_roles r, pg_class t WHERE r.rolname = current_user AND t.oid = 'esafety.site_roles'::regclass
            """,
            logger: logger
        )
        for try await (role, sees) in who.decode((String, Bool).self) where !sees {
            throw NotAdministrator(role: role)
        }
        let rows = try await c.query(
            """
            WITH parts AS (
                SELECT r.rolname::text AS role, substr(g.rolname, 9) AS part FROM pg_auth_members m
                    JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
                WHERE g.rolname = ANY(\(groups)::text[]) AND NOT r.rolname = ANY(\(groups)::text[])
            ), named AS (SELECT role FROM parts UNION SELECT role FROM esafety.site_roles)
            SELECT n.role, coalesce(r.rolcanlogin, false),
                coalesce((SELECT array_agg(DISTINCT part ORDER BY part) FROM parts p WHERE p.role = n.role), '{}'),
                coalesce((SELECT array_agg(site ORDER BY site) FROM esafety.site_roles s WHERE s.role = n.role), '{}')
            FROM named n LEFT JOIN pg_roles r ON r.rolname = n.role
            ORDER BY n.role COLLATE "C"
            """,
            logger: logger
        )
        var out: [Access] = []
        for try await (role, login, parts, sites) in rows.decode((String, Bool, [String], [String]).self) {
            out.append(Access(role: role, login: login, parts: parts, sites: sites))
        }
        return out
    }
}
