import Classifier
import Foundation
import Glibc
import Incidents
import Logging
import Pipeline
import Synchronization
import SystemSupport
import TestSupport
import Testing

@testable import Central

/// A real PostgreSQL for the test: a cluster made by initdb in a temporary folder, serving
/// only a Unix socket there (and, when asked, TLS on a loopback port), run as the `postgres`
/// account by this process, so that it can be killed with SIGKILL and started again.
final class PostgresServer: @unchecked Sendable {
    let dir: String
    var child: Child?
    let bin: String
    let extra: [String]
    /// The port: of the Unix socket's name, and of TCP on 127.0.0.1 when TLS is on. The
    /// kernel's choice (free now), clear of the fixed ranges other suites' peers use.
    let port = Int((try? freeLoopbackPort()) ?? UInt16(40_000 + Int.random(in: 0..<20_000)))

    /// `locale`: the cluster's (initdb --locale), C when nil.
    init(extra: [String] = [], locale: String? = nil, configure: ((String) throws -> Void)? = nil) throws {
        guard
            let version = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql").sorted().last
        else {
            throw TestFailure(message: "PostgreSQL is missing (apt-get install postgresql); scripts/test installs it")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        dir = "/tmp/esafety-pg-\(UUID().uuidString.prefix(8))"
        self.extra = extra
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try Child.run("/bin/chown", ["postgres", dir])
        let (code, out) = try Child.run(
            "/usr/sbin/runuser",
            [
                "-u", "postgres", "--", bin + "/initdb", "-D", dir + "/data", "-U", "postgres", "--auth-local=trust",
                // The locale C, whatever the test's environment, unless asked: a server installed
                // without one, whose databases are SQL_ASCII unless made as docs/CENTRAL.md makes
                // them, and whose lower() and [:alnum:] know only ASCII.
                locale.map { "--locale=" + $0 } ?? "--no-locale",
            ]
        )
        guard code == 0 else { throw TestFailure(message: "initdb: \(out)") }
        // The superuser over the socket by trust (the test's administrator); everyone else by password.
        try "local all postgres trust\nlocal all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
            .write(toFile: dir + "/data/pg_hba.conf", atomically: true, encoding: .utf8)
        try configure?(dir)
        _ = try Child.run("/bin/chown", ["-R", "postgres", dir])
        try start()
        // The database made by docs/CENTRAL.md's own command, its arguments as written there.
        let document = try String(contentsOfFile: repositoryRoot + "/docs/CENTRAL.md", encoding: .utf8)
        let command = "    sudo -u postgres createdb "
        guard let line = document.split(separator: "\n").first(where: { $0.hasPrefix(command) }) else {
            throw TestFailure(message: "docs/CENTRAL.md: no line starting \(command)")
        }
        let (c2, o2) = try Child.run(
            "/usr/sbin/runuser",
            ["-u", "postgres", "--", bin + "/createdb", "-h", dir, "-p", String(port)]
                + line.dropFirst(command.count).split(separator: " ").map(String.init)
        )
        guard c2 == 0 else { throw TestFailure(message: "createdb: \(o2)") }
    }

    func start() throws {
        child = try Child(
            "/usr/bin/setpriv",
            [
                "--reuid=postgres", "--regid=postgres", "--init-groups", bin + "/postgres", "-D", dir + "/data", "-k",
                dir, "-p", String(port), "-c", "listen_addresses=" + (extra.isEmpty ? "" : "127.0.0.1"),
            ] + extra,
            capture: false
        )
        guard poll(timeout: 30, until: { sql("SELECT 1", database: "postgres").0 == 0 }) else {
            throw TestFailure(message: "PostgreSQL did not start")
        }
    }

    /// The crash: SIGKILL to the postmaster (its backends see it gone and exit).
    func kill9() {
        child?.stop(SIGKILL)
        _ = poll(timeout: 10) { sql("SELECT 1", database: "postgres").0 != 0 }
        usleep(500_000)
    }

    /// psql as the superuser (or `user` with its password in the environment, never the command line).
    func sql(
        _ text: String,
        database: String = "esafety",
        user: String = "postgres",
        password: String? = nil
    )
        -> (Int32, String)
    {
        (try? Child.run(
            "/usr/bin/psql",
            ["-h", dir, "-p", String(port), "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", text],
            environment: password.map { ["PGPASSWORD": $0] } ?? [:]
        )) ?? (-1, "")
    }

    /// One value (or rows joined by newlines) as the superuser reads it, trimmed.
    func value(_ text: String) -> String { sql(text).1.trimmingCharacters(in: .whitespacesAndNewlines) }

    func url(_ user: String) -> String { "postgresql://\(user)@:\(port)/esafety?host=\(dir)" }

    deinit {
        child?.stop(SIGKILL)
        _ = try? Child.run("/bin/rm", ["-rf", dir])
    }
}

@Suite("The trust's central store in a real PostgreSQL", .serialized)
struct CentralTests {
    static let esafety = buildDirectory + "/esafety"

    /// The schema, and a login role with a password file for each part.
    static func store(
        _ dir: TempDir,
        locale: String? = nil,
        sites: [String] = ["north", "south"],
        extra: [String] = [],
        configure: ((String) throws -> Void)? = nil
    ) throws
        -> PostgresServer
    {
        let pg = try PostgresServer(extra: extra, locale: locale, configure: configure)
        var (code, out) = try Child.run(esafety, ["central", "init", "--postgres", pg.url("postgres")])
        #expect(
            code == 0
                && out.contains(
                    "applied migration(s) \((1...15).map(String.init).joined(separator: ", ")); schema version 15"
                ),
            "\(out)"
        )
        (code, out) = try Child.run(esafety, ["central", "init", "--postgres", pg.url("postgres")])
        #expect(code == 0 && out.contains("up to date"), "init is safe to run again: \(out)")
        for (role, kind, site) in sites.map({ ("fwd_" + $0, "forwarder", $0) }) + [
            ("school_\(sites[0])", "school", sites[0]),
            ("trust_dsl", "trust", ""), ("it_desk", "it", ""), ("governors", "governor", ""),
        ] {
            #expect(pg.sql("CREATE ROLE \(role) LOGIN PASSWORD 'pw-\(role)'").0 == 0)
            let (c, o) = try Child.run(
                esafety,
                ["central", "grant", "--postgres", pg.url("postgres"), "--role", role, "--as", kind]
                    + (site.isEmpty ? [] : ["--site", site])
            )
            #expect(c == 0, "\(o)")
            dir.write("\(role).pw", "pw-\(role)\n")
            chmod(dir.path + "/\(role).pw", 0o600)
        }
        return pg
    }

    static func history(_ dir: TempDir, _ name: String, incidents: Int) throws -> (path: String, lines: Int) {
        let path = dir.path + "/\(name).jsonl"
        let (code, out) = try Child.run(buildDirectory + "/esafety-bench", ["--history", String(incidents), path])
        #expect(code == 0, "\(out)")
        return (path, lines(path).count)
    }

    /// `esafety forward --once` for a site as its forwarder role: its status and output.
    static func forwardOnce(
        _ dir: TempDir,
        _ pg: PostgresServer,
        site: String,
        log: String,
        batch: String? = nil
    ) throws -> (Int32, String) {
        try Child.run(
            esafety,
            ["forward", "--once"] + (batch.map { ["--batch", $0] } ?? []) + [
                "--log", log, "--site", site, "--postgres", pg.url("fwd_\(site)"), "--password-file",
                dir.path + "/fwd_\(site).pw",
            ]
        )
    }

    static func forwarder(_ dir: TempDir, _ pg: PostgresServer, site: String, log: String) throws -> Child {
        try Child(
            "/bin/sh",
            [
                "-c", "exec \"$0\" \"$@\" 2>>\"$ERR\"", esafety, "forward", "--log", log, "--site", site, "--postgres",
                pg.url("fwd_\(site)"), "--password-file", dir.path + "/fwd_\(site).pw", "--retry-max", "1",
            ],
            environment: ["ERR": dir.path + "/forward-\(site).err"]
        )
    }

    /// A site's log as esafetyd's own writer makes it from these requests (north.jsonl).
    static func written(_ dir: TempDir, _ requests: [MatchedRequest]) throws -> String {
        let path = dir.path + "/north.jsonl"
        let log = IncidentLog(path: path, syncInterval: 0.05, headInterval: 3600, logger: Logger(label: "test"))
        try log.open()
        log.start()
        let sink = IncidentSink(log: log, policy: Policy(), suffixes: PublicSuffix(text: "com\nexample\n"))
        for r in requests { sink.accept(r) }
        sink.closeAll()
        log.stop()
        return path
    }

    /// A note taken on an incident at the school, as the tool and the console take it.
    static func note(_ path: String, _ id: String, _ text: String) throws {
        _ = try IncidentLog.act(
            path: path,
            group: nil,
            id: id,
            action: .note,
            details: Workflow.Details(text: text),
            by: "A. Dsl"
        )
    }

    /// `search` as the school's own tool finds it in `log` and as the trust's role finds it in
    /// the store: the central command's status and output, and each side's ids, sorted.
    static func searched(
        _ search: String,
        log: String,
        _ dir: TempDir,
        _ pg: PostgresServer
    ) throws -> (Int32, String, [String], [String]) {
        let (_, mine) = try Child.run(
            esafety,
            ["incidents", "list", "--log", log, "--json", "--limit", "1000", "--search", search]
        )
        let (code, out) = try Child.run(
            esafety,
            [
                "incidents", "list", "--json", "--limit", "1000", "--search", search, "--central",
                pg.url("trust_dsl"), "--password-file", dir.path + "/trust_dsl.pw",
            ]
        )
        return (code, out, ids(out).sorted(), ids(mine).sorted())
    }

    /// docs/CENTRAL.md's statement that restores a school's log from the store.
    static let restoreSQL = "SELECT line FROM esafety.lines WHERE site = 'north' ORDER BY seq"

    /// North's log as the trust's role gets it back from the store with `restoreSQL`.
    static func logFromTheStore(_ pg: PostgresServer) throws -> (Int32, String) {
        try Child.run(
            "/usr/bin/psql",
            ["-h", pg.dir, "-p", String(pg.port), "-U", "trust_dsl", "-d", "esafety", "-At", "-c", restoreSQL],
            environment: ["PGPASSWORD": "pw-trust_dsl"]
        )
    }

    /// The id of each record of `--json` output, in its order.
    static func ids(_ json: String) -> [String] {
        json.split(separator: "\n").compactMap {
            ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["id"] as? String
        }
    }

    static func shipped(_ pg: PostgresServer, _ site: String) -> Int {
        Int(pg.value("SELECT coalesce(max(seq), 0) FROM esafety.heads WHERE site = '\(site)'")) ?? -1
    }

    @Test(
        "two sites forward at once; kill -9 of a forwarder and of PostgreSQL mid-stream: every line once, in order, no gap"
    )
    func forwardThroughFaults() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let north = try Self.history(dir, "north", incidents: 3000)
        let south = try Self.history(dir, "south", incidents: 2000)
        var fn = try Self.forwarder(dir, pg, site: "north", log: north.path)
        let fs = try Self.forwarder(dir, pg, site: "south", log: south.path)
        defer {
            fn.stop()
            fs.stop()
        }
        // The north forwarder killed once it has shipped some of its log, then started again.
        #expect(poll(timeout: 60) { Self.shipped(pg, "north") > 500 })
        fn.stop(SIGKILL)
        let before = Self.shipped(pg, "north")
        #expect(before < north.lines, "killed mid-stream")
        fn = try Self.forwarder(dir, pg, site: "north", log: north.path)
        // PostgreSQL killed while both ship, and started again a few seconds later.
        #expect(poll(timeout: 60) { Self.shipped(pg, "south") > 500 })
        pg.kill9()
        sleep(3)
        try pg.start()
        #expect(
            poll(timeout: 180, interval: 0.5) {
                Self.shipped(pg, "north") == north.lines && Self.shipped(pg, "south") == south.lines
            },
            "caught up: north \(Self.shipped(pg, "north"))/\(north.lines), south \(Self.shipped(pg, "south"))/\(south.lines)"
        )
        for (site, log) in [("north", north), ("south", south)] {
            let counts = pg.sql(
                "SELECT count(*), count(DISTINCT seq), min(seq), max(seq), count(*) FILTER (WHERE NOT intact) "
                    + "FROM esafety.lines WHERE site = '\(site)'"
            ).1.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(
                counts == "\(log.lines)|\(log.lines)|1|\(log.lines)|0",
                "\(site): every line once, no gap: \(counts)"
            )
            let incidents = pg.sql("SELECT count(*) FROM esafety.incidents WHERE site = '\(site)'").1
            let local = lines(log.path).filter { $0.contains("\"event\":\"incident\"") }.count
            #expect(Int(incidents.trimmingCharacters(in: .whitespacesAndNewlines)) == local)
            // The same open incidents as the site's own tool counts.
            let open = pg.sql(
                "SELECT count(*) FROM esafety.incidents WHERE site = '\(site)' AND state IN ('new','acknowledged','escalated')"
            ).1.trimmingCharacters(in: .whitespacesAndNewlines)
            let (_, listed) = try Child.run(Self.esafety, ["incidents", "list", "--log", log.path, "--open"])
            #expect(
                listed.contains("\(open) incident(s)"),
                "\(site): \(open) open centrally; the tool: \(listed.suffix(40))"
            )
            // The chain head centrally is the log's own.
            let head = pg.sql("SELECT chain FROM esafety.heads WHERE site = '\(site)'").1
            #expect(lines(log.path).last?.contains(head.trimmingCharacters(in: .whitespacesAndNewlines)) == true)
            // Each line centrally is the school's, byte for byte: the log restored from the store
            // (docs/CENTRAL.md, "Backups") is the log, and its chain checks.
            let document = try String(contentsOfFile: repositoryRoot + "/docs/CENTRAL.md", encoding: .utf8)
            #expect(document.contains("-c \"\(Self.restoreSQL)\" > north-restored.jsonl"), "as documented")
            let restored = dir.path + "/\(site)-restored.jsonl"
            let (status, text) = pg.sql(Self.restoreSQL.replacingOccurrences(of: "'north'", with: "'\(site)'"))
            #expect(status == 0)
            try text.write(toFile: restored, atomically: true, encoding: .utf8)
            #expect(text == (try String(contentsOfFile: log.path, encoding: .utf8)), "\(site): byte for byte")
            let (verified, said) = try Child.run(Self.esafety, ["verify", restored])
            #expect(verified == 0, "\(said)")
        }
        // What `esafety status` prints of the forwarder: how far, and nothing left behind.
        let summary = Forwarder.summary(besideLog: north.path).joined(separator: "\n")
        #expect(summary.contains("forwarding site north") && summary.contains("line \(north.lines),"), "\(summary)")
        #expect(summary.contains(" 0 byte(s) of the log not yet shipped") && !summary.contains("away"), "\(summary)")
        let errors = (try? String(contentsOfFile: dir.path + "/forward-north.err", encoding: .utf8)) ?? ""
        #expect(errors.contains("retrying") || errors.contains("again"), "the outage was logged: \(errors.suffix(500))")
        #expect(!errors.contains("pw-fwd_north"), "no password in the log")
    }

    @Test(
        "several `central init` at once on a new database (a deployment run from several hosts): each succeeds, each migration is applied once"
    )
    func initAtOnce() throws {
        let pg = try PostgresServer()
        let all = CentralSchema.migrations.map(\.version)
        for round in 1...4 {
            if round > 1 {
                // A new database for each round, made as docs/CENTRAL.md makes it.
                #expect(pg.sql("DROP DATABASE esafety", database: "postgres").0 == 0)
                #expect(
                    pg.sql("CREATE DATABASE esafety ENCODING 'UTF8' TEMPLATE template0", database: "postgres").0 == 0
                )
            }
            let inits = try (0..<6).map { _ in
                try Child(Self.esafety, ["central", "init", "--postgres", pg.url("postgres")], capture: true)
            }
            var applied: [Int] = []
            for child in inits {
                let (code, out) = child.wait()
                #expect(code == 0, "round \(round): \(out)")
                // "applied migration(s) 1, 2, 3; schema version N" or "schema version N, up to date"
                if let list = out.components(separatedBy: "applied migration(s) ").dropFirst().first {
                    applied += list.prefix { $0 != ";" }.split(separator: ", ").compactMap { Int($0) }
                }
            }
            #expect(applied.sorted() == all, "round \(round): each migration once, by one of them")
            #expect(
                pg.value("SELECT string_agg(version::text, ',' ORDER BY version) FROM esafety.migrations")
                    == all.map(String.init).joined(separator: ",")
            )
        }
    }

    @Test(
        "two stores made at once in one PostgreSQL (two databases): each init succeeds, though the group roles are the cluster's"
    )
    func twoStoresAtOnce() throws {
        let pg = try PostgresServer()
        let roles = ["school", "trust", "forwarder", "it", "governor", "console"].map { "esafety_" + $0 }
        for round in 1...4 {
            // Two new databases, and none of the cluster's group roles yet.
            #expect(pg.sql("DROP DATABASE IF EXISTS esafety", database: "postgres").0 == 0)
            #expect(pg.sql("DROP DATABASE IF EXISTS other", database: "postgres").0 == 0)
            for role in roles { #expect(pg.sql("DROP ROLE IF EXISTS \(role)", database: "postgres").0 == 0) }
            for name in ["esafety", "other"] {
                #expect(
                    pg.sql("CREATE DATABASE \(name) ENCODING 'UTF8' TEMPLATE template0", database: "postgres").0 == 0
                )
            }
            let inits = try [
                pg.url("postgres"), pg.url("postgres").replacingOccurrences(of: "/esafety?", with: "/other?"),
            ]
            .map { try Child(Self.esafety, ["central", "init", "--postgres", $0], capture: true) }
            for child in inits {
                let (code, out) = child.wait()
                #expect(code == 0 && out.contains("schema version 15"), "round \(round): \(out)")
            }
            for name in ["esafety", "other"] {
                #expect(pg.sql("SELECT count(*) FROM esafety.migrations", database: name).1.hasPrefix("15"))
            }
        }
    }

    @Test("a migration's statements: split after each line ending with ;, except inside a function's body")
    func migrationStatements() {
        let sql = """
            -- a comment, left out
            CREATE TABLE t (a int);
            DO $$ BEGIN CREATE ROLE r NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $f$
            BEGIN
                -- kept: inside the body
                RETURN 1;
            END
            $f$;
            SELECT '$1' || $x$a;b$x$
            """
        #expect(
            CentralSchema.statements(sql) == [
                "CREATE TABLE t (a int)",
                "DO $$ BEGIN CREATE ROLE r NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
                "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $f$\nBEGIN\n    -- kept: inside the body\n"
                    + "    RETURN 1;\nEND\n$f$",
                "SELECT '$1' || $x$a;b$x$",
            ]
        )
    }

    @Test(
        "the store's disk full: the forwarder stores nothing, says why, keeps its place, and catches up once there is room"
    )
    func storeDiskFull() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        // The store's database on a volume of its own, nearly full: a tmpfs of 24 MiB (the
        // database takes about 8 of it), as a trust's data volume runs out.
        let volume = pg.dir + "/volume"
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        var (code, out) = try Child.run("/bin/mount", ["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", volume])
        try #require(code == 0, "mount: \(out)")
        defer { _ = try? Child.run("/bin/umount", ["-l", volume]) }
        _ = try Child.run("/bin/chown", ["postgres", volume])
        #expect(pg.sql("CREATE TABLESPACE volume LOCATION '\(volume)'", database: "postgres").0 == 0)
        let moved = pg.sql("ALTER DATABASE esafety SET TABLESPACE volume", database: "postgres")
        #expect(moved.0 == 0, "\(moved.1)")
        let log = try Self.history(dir, "north", incidents: 8000)
        let forwarder = try Self.forwarder(dir, pg, site: "north", log: log.path)
        defer { forwarder.stop() }
        let errors = dir.path + "/forward-north.err"
        #expect(
            poll(timeout: 60) {
                ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").contains("No space left on device")
            },
            "the forwarder says why it stores nothing"
        )
        // Stuck where the disk filled, and saying so where `esafety status` reads it.
        let stuck = Self.shipped(pg, "north")
        #expect(stuck < log.lines)
        sleep(3)
        #expect(Self.shipped(pg, "north") == stuck, "nothing stored while the disk is full")
        let summary = Forwarder.summary(besideLog: log.path).joined(separator: "\n")
        #expect(summary.contains("No space left on device") && summary.contains("not yet shipped"), "\(summary)")
        // Room made (the volume grown, as an administrator would): every line once, no gap.
        (code, out) = try Child.run("/bin/mount", ["-o", "remount,size=512m", volume])
        #expect(code == 0, "\(out)")
        #expect(
            poll(timeout: 120, interval: 0.5) { Self.shipped(pg, "north") == log.lines },
            "caught up: \(Self.shipped(pg, "north"))/\(log.lines)"
        )
        #expect(
            pg.value(
                "SELECT count(*), count(DISTINCT seq), min(seq), max(seq), count(*) FILTER (WHERE NOT intact) "
                    + "FROM esafety.lines WHERE site = 'north'"
            ) == "\(log.lines)|\(log.lines)|1|\(log.lines)|0"
        )
        let incidents = lines(log.path).filter { $0.contains("\"event\":\"incident\"") }.count
        #expect(pg.value("SELECT count(*) FROM esafety.incidents WHERE site = 'north'") == "\(incidents)")
        #expect(pg.value("SELECT count(*) FROM esafety.tamper") == "0")
    }

    @Test(
        "each incident's state centrally is the one the site's own tool shows, its actions shipped with it or later"
    )
    func statesAsTheSiteHasThem() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        // One history (60% acknowledged, 24% resolved, notes), shipped by two forwarders: three
        // lines a batch (an incident's actions mostly in a later batch than its line) and 5,000
        // (each incident with its actions in one batch, inserted in the state they leave it).
        let log = try Self.history(dir, "north", incidents: 600)
        for (site, batch) in [("north", "3"), ("south", "5000")] {
            let (code, out) = try Self.forwardOnce(dir, pg, site: site, log: log.path, batch: batch)
            #expect(code == 0, "\(out)")
        }
        // The site's own list: each incident's line ends with its state and its id. Its output
        // only: the count it writes to standard error could land inside a line of it.
        let (_, listed) = try Child.run(
            "/bin/sh",
            ["-c", "exec \"$0\" incidents list --log \"$1\" 2>/dev/null", Self.esafety, log.path]
        )
        var local: [String] = []
        for match in listed.matches(of: #/ {2}([a-z-]+) {2}(inc-[0-9a-f]{12}-[0-9a-f]{6}-[0-9a-f]{6})/#) {
            local.append("\(match.2)|\(match.1)")
        }
        local.sort()
        #expect(local.count == 600)
        #expect(
            Set(local.map { $0.split(separator: "|").last }).count == 3,
            "new, acknowledged, resolved: \(local.prefix(3))"
        )
        for site in ["north", "south"] {
            let central = pg.sql("SELECT id || '|' || state FROM esafety.incidents WHERE site = '\(site)' ORDER BY id")
                .1.split(separator: "\n").map(String.init)
            #expect(central == local, "\(site): \(central.count) incidents centrally")
        }
    }

    @Test("a forwarder newer than its store's schema stops saying so, and ships once the store is upgraded")
    func olderStore() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        // The store as schema 7 left it: each line as jsonb.
        let down = pg.sql(
            """
            ALTER TABLE esafety.lines ALTER COLUMN line TYPE jsonb USING line::jsonb;
            DELETE FROM esafety.migrations WHERE version = 8
            """
        )
        #expect(down.0 == 0, "\(down.1)")
        let log = try Self.history(dir, "north", incidents: 20)
        var (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 1 && out.contains("`esafety central init` on it first"), "\(out)")
        #expect(Self.shipped(pg, "north") == 0)
        (code, out) = try Child.run(Self.esafety, ["central", "init", "--postgres", pg.url("postgres")])
        #expect(code == 0 && out.contains("applied migration(s) 8; schema version 15"), "\(out)")
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        #expect(Self.shipped(pg, "north") == log.lines)
    }

    @Test(
        "a log shipped again from its start (its position lost, or damaged, which is said) adds nothing twice; what follows it is shipped"
    )
    func shippedAgain() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let log = try Self.history(dir, "north", incidents: 300)
        var (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        let states = pg.value("SELECT string_agg(state, ',' ORDER BY id) FROM esafety.incidents")
        let words = pg.value("SELECT count(*) FROM esafety.incident_words")
        // The position lost, and a note taken since: every batch is one the store holds, the
        // last with the note's line in it too.
        #expect(unlink(dir.path + "/forward-north.position") == 0)
        let id = pg.value("SELECT id FROM esafety.incidents ORDER BY id LIMIT 1")
        try Self.note(log.path, id, "wombat")
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0 && !out.contains("error"), "\(out)")
        #expect(
            pg.value("SELECT count(*), count(DISTINCT seq) FROM esafety.lines") == "\(log.lines + 1)|\(log.lines + 1)"
        )
        #expect(pg.value("SELECT count(*) FROM esafety.incidents") == "300")
        #expect(pg.value("SELECT string_agg(state, ',' ORDER BY id) FROM esafety.incidents") == states)
        #expect(
            pg.value("SELECT count(*) FROM esafety.incident_words") == String((Int(words) ?? 0) + 1),
            "the note's words only"
        )
        #expect(pg.value("SELECT count(*) FROM esafety.tamper") == "0")
        #expect(Self.shipped(pg, "north") == log.lines + 1)
        // The position damaged (a byte flipped, the file cut): said, and shipped again the same way.
        let position = dir.path + "/forward-north.position"
        try "{\"inode\":12,\"off".write(toFile: position, atomically: true, encoding: .utf8)
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0 && out.contains("\(position) cannot be read as a position"), "\(out)")
        #expect(out.contains("from line 1,") || out.contains("from line 1\n"), "\(out)")
        #expect(
            pg.value("SELECT count(*), count(DISTINCT seq) FROM esafety.lines") == "\(log.lines + 1)|\(log.lines + 1)"
        )
        #expect(pg.value("SELECT count(*) FROM esafety.incidents") == "300")
        #expect(pg.value("SELECT count(*) FROM esafety.incident_words") == String((Int(words) ?? 0) + 1))
        #expect(Self.shipped(pg, "north") == log.lines + 1)
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0 && !out.contains("cannot be read"), "saved again whole: \(out)")
    }

    /// docs/CENTRAL.md's command line starting `start` (after its four spaces), run as written:
    /// `sudo -u postgres` as runuser does it, against `pg`'s server (PGHOST and PGPORT), the
    /// backups' folder here instead of /var/backups/esafety and the backup's day instead of the
    /// docs' example.
    static func documented(
        _ start: String,
        _ pg: PostgresServer,
        backups: String,
        day: String
    ) throws -> (Int32, String) {
        let document = try String(contentsOfFile: repositoryRoot + "/docs/CENTRAL.md", encoding: .utf8)
        guard let line = document.split(separator: "\n").first(where: { $0.hasPrefix("    " + start) }) else {
            throw TestFailure(message: "docs/CENTRAL.md: no command line starting \(start)")
        }
        let command = line.dropFirst(4).replacingOccurrences(of: "/var/backups/esafety", with: backups)
            .replacingOccurrences(of: "2026-12-01", with: day)
        let postgres = "sudo -u postgres "
        if command.hasPrefix(postgres) {
            return try Child.run(
                "/usr/sbin/runuser",
                [
                    "-u", "postgres", "--", "/usr/bin/env", "PGHOST=" + pg.dir, "PGPORT=\(pg.port)", "/bin/sh", "-c",
                    "cd / && " + command.dropFirst(postgres.count),
                ]
            )
        }
        return try Child.run("/bin/sh", ["-c", String(command.dropFirst("sudo ".count))])
    }

    @Test(
        "a store restored from last night's backup (docs/CENTRAL.md's commands, on a new server), restored under a connected forwarder, or made anew, is given again what it lost: every line, nothing twice, said"
    )
    func storeRestored() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let log = try Self.history(dir, "north", incidents: 300)
        var (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        // Last night's backup, by the documented commands.
        let backups = dir.path + "/backups"
        let day = try Child.run("/bin/date", ["+%F"]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        for start in ["sudo install -d", "sudo -u postgres pg_dumpall", "sudo -u postgres pg_dump "] {
            (code, out) = try Self.documented(start, pg, backups: backups, day: day)
            #expect(code == 0, "\(start): \(out)")
        }
        // The day goes on: an incident acknowledged, notes taken, shipped in batches of two.
        let ids = pg.value("SELECT id FROM esafety.incidents WHERE state = 'new' ORDER BY id LIMIT 3").split(
            separator: "\n"
        ).map(String.init)
        #expect(ids.count == 3)
        _ = try IncidentLog.act(
            path: log.path,
            group: nil,
            id: ids[0],
            action: .ack,
            details: Workflow.Details(),
            by: "A. Dsl"
        )
        for id in ids { try Self.note(log.path, id, "wombat") }
        let total = log.lines + 4
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path, batch: "2")
        #expect(code == 0, "\(out)")
        // What the store holds of the site: its lines (count, distinct, last, their text), its
        // incidents' states, the words, the flags.
        func held(_ p: PostgresServer) -> String {
            p.value(
                """
                SELECT (SELECT count(*) || '/' || count(DISTINCT seq) || '/' || max(seq) || '/'
                        || md5(string_agg(line, E'\\n' ORDER BY seq)) FROM esafety.lines WHERE site = 'north'),
                    (SELECT count(*) || '/' || string_agg(id || '=' || state, ',' ORDER BY id) FROM esafety.incidents),
                    (SELECT count(*) FROM esafety.incident_words), (SELECT count(*) FROM esafety.tamper)
                """
            )
        }
        let whole = held(pg)
        #expect(whole.hasPrefix("\(total)/\(total)/\(total)/"), "\(whole)")
        #expect(whole.contains("\(ids[0])=acknowledged"), "\(whole)")
        #expect(Self.shipped(pg, "north") == total)

        // The server lost; a new one, restored from last night's backup as the docs say.
        let restored = try PostgresServer()
        for start in ["sudo -u postgres psql --file", "sudo -u postgres pg_restore "] {
            (code, out) = try Self.documented(start, restored, backups: backups, day: day)
            #expect(code == 0, "\(start): \(out)")
        }
        #expect(Self.shipped(restored, "north") == log.lines, "the backup holds the day before")
        (code, out) = try Self.forwardOnce(dir, restored, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        #expect(
            out.contains(
                "the central store holds site north's lines up to line \(log.lines) only, "
                    + "but lines up to \(total) were shipped"
            ) && out.contains("shipping them again from line \(log.lines + 1)"),
            "\(out)"
        )
        #expect(held(restored) == whole, "every line once, the acknowledgement and the notes again")

        // Restored again under a forwarder that stays connected (pg_restore --clean), then a
        // line written: its first batch finds the store behind, and goes back for what it lost.
        let following = try Self.forwarder(dir, restored, site: "north", log: log.path)
        #expect(
            poll(timeout: 20) {
                (try? String(contentsOfFile: dir.path + "/forward-north.err", encoding: .utf8))?.contains("forward: ")
                    == true
            }
        )
        usleep(300_000)
        (code, out) = try Child.run(
            "/usr/sbin/runuser",
            [
                "-u", "postgres", "--", restored.bin + "/pg_restore", "-h", restored.dir, "-p", String(restored.port),
                "--clean", "--if-exists", "--dbname=esafety", "\(backups)/esafety-\(day).dump",
            ]
        )
        #expect(code == 0, "\(out)")
        #expect(Self.shipped(restored, "north") == log.lines)
        try Self.note(log.path, ids[1], "platypus")
        #expect(poll(timeout: 30) { Self.shipped(restored, "north") == total + 1 })
        following.stop(SIGTERM)
        let journal = (try? String(contentsOfFile: dir.path + "/forward-north.err", encoding: .utf8)) ?? ""
        #expect(journal.contains("shipping them again from line \(log.lines + 1)"), "\(journal)")
        let after = held(restored)
        #expect(after.hasPrefix("\(total + 1)/\(total + 1)/\(total + 1)/"), "\(after)")

        // Made anew: an empty database, its schema, the forwarder's role granted again.
        #expect(restored.sql("DROP DATABASE esafety WITH (FORCE)", database: "postgres").0 == 0)
        (code, out) = try Self.documented("sudo -u postgres createdb ", restored, backups: backups, day: day)
        #expect(code == 0, "\(out)")
        (code, out) = try Child.run(Self.esafety, ["central", "init", "--postgres", restored.url("postgres")])
        #expect(code == 0, "\(out)")
        (code, out) = try Child.run(
            Self.esafety,
            [
                "central", "grant", "--postgres", restored.url("postgres"), "--role", "fwd_north", "--as", "forwarder",
                "--site", "north",
            ]
        )
        #expect(code == 0, "\(out)")
        (code, out) = try Self.forwardOnce(dir, restored, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        #expect(
            out.contains(
                "the central store holds none of site north's lines, but lines up to \(total + 1) were shipped"
            )
                && out.contains("shipping the log again from its start"),
            "\(out)"
        )
        #expect(held(restored) == after)
        // And then nothing more: the store holds all that was shipped.
        (code, out) = try Self.forwardOnce(dir, restored, site: "north", log: log.path)
        #expect(code == 0 && !out.contains("critical") && !out.contains("central store holds"), "\(out)")

        // A store whose last line of the site is not this log's (another school's log shipped as
        // north, or this one replaced): said, and the log shipped from its start, nothing twice.
        #expect(restored.sql("UPDATE esafety.heads SET seq = 10, chain = 'another-log' WHERE site = 'north'").0 == 0)
        (code, out) = try Self.forwardOnce(dir, restored, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        #expect(
            out.contains("holds site north's lines up to line 10 only")
                && out.contains(
                    "its line 10 is not this log's (another log shipped as site north, or this one replaced)"
                ),
            "\(out)"
        )
        #expect(held(restored) == after)
        #expect(Self.shipped(restored, "north") == total + 1)
    }

    @Test(
        "row-level security: a school's role sees its site only, the trust all, IT health, governors counts; a forwarder writes only its site"
    )
    func accessByTheDatabase() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        for site in ["north", "south"] {
            let log = try Self.history(dir, site, incidents: 200)
            let (code, out) = try Self.forwardOnce(dir, pg, site: site, log: log.path)
            #expect(code == 0, "\(out)")
        }
        func count(_ user: String, _ sql: String) -> String {
            let (code, out) = pg.sql(sql, user: user, password: "pw-\(user)")
            return code == 0 ? out.trimmingCharacters(in: .whitespacesAndNewlines) : "denied"
        }
        #expect(count("school_north", "SELECT count(*) FROM esafety.incidents") == "200")
        #expect(count("school_north", "SELECT count(*) FROM esafety.incidents WHERE site = 'south'") == "0")
        #expect(count("school_north", "SELECT count(*) FROM esafety.lines WHERE site = 'south'") == "0")
        // The search's words (every incident's website, URL and search term, a row per text)
        // are held to the same rule: another site's words are not even counted.
        #expect(Int(count("trust_dsl", "SELECT count(*) FROM esafety.incident_words WHERE site = 'south'")) ?? 0 >= 200)
        #expect(count("school_north", "SELECT count(*) FROM esafety.incident_words WHERE site = 'south'") == "0")
        let north = count("trust_dsl", "SELECT count(*) FROM esafety.incident_words WHERE site = 'north'")
        #expect(Int(north) ?? 0 >= 200)
        #expect(count("school_north", "SELECT count(*) FROM esafety.incident_words") == north)
        #expect(count("it_desk", "SELECT count(*) FROM esafety.incident_words") == "denied")
        #expect(count("governors", "SELECT count(*) FROM esafety.incident_words") == "denied")
        #expect(
            count("school_north", "INSERT INTO esafety.incident_words (site, id, words) VALUES ('north', 'y', 'x')")
                == "denied",
            "only the triggers write words"
        )
        // Their index, read past row-level security (its match is not leakproof), answers with
        // the sites the login role sees only: every word's start ('', each row's site `@site`
        // among them), a south-only word, whatever limit is asked.
        func matches(_ user: String, _ word: String, start: Bool) -> String {
            count(user, "SELECT count(*) FROM esafety.word_matches(esafety.word_query('\(word)', \(start)), NULL)")
        }
        #expect(matches("school_north", "@", start: true) == north)
        #expect(matches("school_north", "@south", start: false) == "0")
        #expect(matches("trust_dsl", "@south", start: false) == String(Int(north) ?? 0))
        #expect(Int(matches("trust_dsl", "@", start: true)) ?? 0 == 2 * (Int(north) ?? 0))
        #expect(matches("it_desk", "@", start: true) == "denied")
        #expect(matches("governors", "@", start: true) == "denied")
        #expect(count("trust_dsl", "SELECT count(*) FROM esafety.incidents") == "400")
        #expect(count("it_desk", "SELECT count(*) FROM esafety.incidents") == "denied")
        #expect(count("it_desk", "SELECT count(*) FROM esafety.lines") == "denied")
        #expect(count("it_desk", "SELECT count(*) FROM esafety.health") == "2")
        #expect(count("governors", "SELECT count(*) FROM esafety.incidents") == "denied")
        #expect(count("governors", "SELECT sum(incidents) FROM esafety.daily_counts") == "400")
        #expect(count("governors", "SELECT count(*) FROM esafety.health") == "denied")
        // A forwarder cannot write another site's rows, nor read them.
        #expect(
            count(
                "fwd_north",
                "INSERT INTO esafety.lines (site, seq, chain, event, line, intact) VALUES ('south', 1, 'x', 'incident', '{}', true)"
            ) == "denied"
        )
        #expect(count("fwd_north", "SELECT count(*) FROM esafety.incidents WHERE site = 'south'") == "0")
        // North's forwarder run as site west: refused by the database, and `forward --once`
        // stops with the database's reason (no record in it) and its position, not a crash.
        let west = try Self.history(dir, "west", incidents: 5)
        let (refused, said) = try Child.run(
            Self.esafety,
            [
                "forward", "--once", "--log", west.path, "--site", "west", "--postgres", pg.url("fwd_north"),
                "--password-file", dir.path + "/fwd_north.pw",
            ]
        )
        #expect(refused == 1, "\(said)")
        #expect(said.contains("row-level security") && said.contains("stopped at line 0"), "\(said)")
        #expect(!said.contains("pupil") && !said.contains("Generic description"), "\(said)")
        #expect(count("trust_dsl", "SELECT count(*) FROM esafety.lines WHERE site = 'west'") == "0")
        // The tool, as the school's role: its own site only.
        let (code, out) = try Child.run(
            Self.esafety,
            [
                "central", "list", "--postgres", pg.url("school_north"), "--password-file",
                dir.path + "/school_north.pw",
                "--limit", "500",
            ]
        )
        #expect(
            code == 0 && out.contains("200 incident(s)") && out.contains("north") && !out.contains("  south  "),
            "\(out.suffix(200))"
        )
    }

    @Test(
        "the tool against the central store: list, show and act as the role may; an action is recorded centrally with who wrote it, refused as the tool refuses"
    )
    func toolOnTheCentralStore() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        // The same generated history at both sites: the same ids name two incidents (ids are
        // unique per site only, as at two schools).
        var logs: [String: String] = [:]
        for (site, count) in [("north", 100), ("south", 100)] {
            let log = try Self.history(dir, site, incidents: count)
            logs[site] = log.path
            let (code, out) = try Self.forwardOnce(dir, pg, site: site, log: log.path)
            #expect(code == 0, "\(out)")
        }
        func tool(_ role: String, _ arguments: [String]) throws -> (Int32, String) {
            try Child.run(
                Self.esafety,
                ["incidents"] + arguments + ["--central", pg.url(role), "--password-file", dir.path + "/\(role).pw"]
            )
        }
        let open = pg.value(
            "SELECT count(*) FROM esafety.incidents WHERE site = 'north' AND state IN ('new','acknowledged','escalated')"
        )
        // The school's role lists its own site's open incidents only; the trust's role both.
        var (code, out) = try tool("school_north", ["list", "--open", "--limit", "1000"])
        #expect(code == 0 && out.contains("\(open) incident(s)"), "\(out.suffix(300))")
        #expect(!out.contains("south  "), "another site's incident listed for a school's role")
        (code, out) = try tool("trust_dsl", ["list", "--limit", "1000"])
        #expect(code == 0 && out.contains("200 incident(s)") && out.contains("south  "), "\(out.suffix(300))")
        // The report from the central store is the school's own report of the same period
        // (before any central action): the same new incidents, the same open ones, by the same
        // counts; the trust's covers both sites.
        let period = ["--since", "2000-01-01", "--until", "2100-01-01", "--format", "json"]
        func report(_ arguments: [String]) throws -> [String: Any] {
            let (code, out) = try Child.run(Self.esafety, ["report"] + period + arguments)
            #expect(code == 0, "\(out.suffix(300))")
            return (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any] ?? [:]
        }
        let local = try report(["--log", logs["north"]!])
        let central = try report([
            "--central", pg.url("school_north"), "--password-file", dir.path + "/school_north.pw",
        ])
        #expect(local["new_incidents"] as? Int == 100)
        #expect(central["new_incidents"] as? Int == local["new_incidents"] as? Int)
        #expect((central["open"] as? [Any])?.count == (local["open"] as? [Any])?.count)
        #expect(central["overdue"] as? Int == local["overdue"] as? Int)
        #expect((local["by_category"] as? [String: Int])?.isEmpty == false)
        #expect(central["by_category"] as? [String: Int] == local["by_category"] as? [String: Int])
        let trust = try report(["--central", pg.url("trust_dsl"), "--password-file", dir.path + "/trust_dsl.pw"])
        #expect(trust["new_incidents"] as? Int == 200)
        // The tool's filters answer centrally as they do on the school's own log.
        let firstTime = pg.value("SELECT min(time) FROM esafety.incidents WHERE site = 'north'")
        let lastTime = pg.value("SELECT max(time) FROM esafety.incidents WHERE site = 'north'")
        let someGroup = pg.value("SELECT grp FROM esafety.incidents WHERE site = 'north' ORDER BY id LIMIT 1")
        // An open incident's category (a category named here may have no open incident in a
        // generated history of 100: about one run in 700 for any one category).
        let openCategory = pg.value(
            "SELECT category FROM esafety.incidents WHERE site = 'north' "
                + "AND state IN ('new','acknowledged','escalated') ORDER BY id LIMIT 1"
        )
        // A search: a site's words backwards (in any order, here and at the school), and the
        // start of a word alone.
        let someHost = pg.value("SELECT host FROM esafety.incidents WHERE site = 'north' ORDER BY id LIMIT 1")
        let hostWords = someHost.split { !$0.isLetter && !$0.isNumber }.map(String.init)
        for filter in [
            ["--overdue"], ["--since", firstTime, "--until", lastTime], ["--group", someGroup],
            ["--severity", "high"], ["--open", "--category", openCategory],
            ["--search", hostWords.reversed().joined(separator: " ")], ["--search", String(hostWords[0].prefix(3))],
        ] {
            // Compared by id, from --json (nothing else on the output to interleave with it).
            let (_, mine) = try Child.run(
                Self.esafety,
                ["incidents", "list", "--log", logs["north"]!, "--limit", "1000", "--json"] + filter
            )
            (code, out) = try tool("school_north", ["list", "--limit", "1000", "--json"] + filter)
            let (a, b) = (Self.ids(out).sorted(), Self.ids(mine).sorted())
            #expect(code == 0 && !b.isEmpty, "\(filter): \(mine.suffix(200))")
            #expect(a == b, "\(filter): central only \(Set(a).subtracting(b)), local only \(Set(b).subtracting(a))")
        }
        // tail: the newest, oldest first, as on the school's log.
        let (_, tailMine) = try Child.run(
            Self.esafety,
            ["incidents", "tail", "-n", "5", "--json", "--log", logs["north"]!]
        )
        (code, out) = try tool("school_north", ["tail", "-n", "5", "--json"])
        #expect(code == 0 && Self.ids(out).count == 5, "\(out)")
        #expect(Set(Self.ids(out)) == Set(Self.ids(tailMine)), "central \(Self.ids(out)), local \(Self.ids(tailMine))")
        (code, out) = try tool("school_north", ["list", "--json", "--limit", "3"])
        let records = out.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
        #expect(code == 0 && records.count == 3 && records.allSatisfy { $0["id"] is String }, "\(out)")
        // Show: the record and its history, folded from the shipped lines.
        let northID = pg.value(
            "SELECT id FROM esafety.incidents WHERE site = 'north' AND state = 'new' ORDER BY id LIMIT 1"
        )
        (code, out) = try tool("school_north", ["show", String(northID.prefix(20))])
        #expect(code == 0 && out.contains("site north") && out.contains(northID), "\(out)")
        (code, out) = try tool("school_north", ["show", northID, "--site", "south"])
        #expect(code == 1 && out.contains("no incident \(northID)"), "a school cannot read another site's: \(out)")
        // An action, as the school's DSL: recorded centrally, with the acting person and the
        // database role that wrote it; the state moves; the same action again is refused.
        (code, out) = try tool("school_north", ["ack", northID, "--by", "Ms Dsl"])
        #expect(code == 0 && out.contains("recorded centrally; now acknowledged"), "\(out)")
        #expect(
            pg.value("SELECT site, by, account, action FROM esafety.actions WHERE id = '\(northID)'")
                == "north|Ms Dsl|school_north|ack"
        )
        #expect(
            pg.value("SELECT state FROM esafety.incidents WHERE site = 'north' AND id = '\(northID)'") == "acknowledged"
        )
        (code, out) = try tool("school_north", ["ack", northID])
        #expect(code == 1 && out.contains("cannot ack"), "\(out)")
        (code, out) = try tool("school_north", ["escalate", northID, "--to", "police"])
        #expect(code != 0 && out.contains("needs --reason"), "\(out)")
        // The trust sees both sites, where the same id names two incidents: it must say which.
        let escalate = ["escalate", northID, "--to", "police", "--reason", "threat to a pupil", "--by", "Trust DSL"]
        (code, out) = try tool("trust_dsl", escalate)
        #expect(code == 1 && out.contains("(north)") && out.contains("(south)") && out.contains("--site"), "\(out)")
        (code, out) = try tool("trust_dsl", escalate + ["--site", "north"])
        #expect(code == 0 && out.contains("now escalated"), "\(out)")
        (code, out) = try tool("school_north", ["show", northID])
        #expect(out.contains("Ms Dsl") && out.contains("Trust DSL") && out.contains("threat to a pupil"), "\(out)")
        // A note taken centrally is found by the text search, with the other words in any case.
        (code, out) = try tool("school_north", ["note", northID, "Called HOME about the 50% bet at the café"])
        #expect(code == 0, "\(out)")
        // Accents ignored, as a school's index ignores them.
        for search in ["café", "cafe", "CAFÉ"] {
            (code, out) = try tool("school_north", ["list", "--search", search, "--limit", "1000"])
            #expect(code == 0 && out.contains(northID) && out.contains("1 incident(s)"), "\(search): \(out)")
        }
        (code, out) = try tool("school_north", ["list", "--search", "home 50% CALLED", "--limit", "1000"])
        #expect(code == 0 && out.contains(northID) && out.contains("1 incident(s)"), "\(out)")
        (code, out) = try tool("school_north", ["list", "--search", "about the 5", "--limit", "1000"])
        #expect(code == 0 && out.contains(northID) && out.contains("1 incident(s)"), "the last word's start: \(out)")
        let pasted = (1...33).map { "word\($0)" }.joined(separator: " ")
        (code, out) = try tool("school_north", ["list", "--search", pasted])
        #expect(code == 1 && out.contains("a search of at most 32 words, not 33"), "\(out)")
        for search in ["ho_e", "h%me", "abo the", "%%"] {
            (code, out) = try tool("school_north", ["list", "--search", search, "--limit", "1000"])
            #expect(code == 0 && out.contains("0 incident(s)"), "whole words, no wildcards: \(search): \(out)")
        }
        // A school's role cannot act on another site's incident, nor write an action for it
        // behind the tool's back, nor sign an action as another role.
        (code, out) = try tool("school_north", ["ack", northID, "--site", "south"])
        #expect(code == 1 && out.contains("no incident"), "\(out)")
        let forged = pg.sql(
            "INSERT INTO esafety.actions (site, id, time, action, by, line) "
                + "VALUES ('south', '\(northID)', 't', 'ack', 'x', '{}')",
            user: "school_north",
            password: "pw-school_north"
        )
        #expect(forged.0 != 0, "row-level security refuses another site's action")
        let impersonated = pg.sql(
            "INSERT INTO esafety.actions (site, id, time, action, by, account, line) "
                + "VALUES ('north', '\(northID)', 't', 'ack', 'x', 'trust_dsl', '{}')",
            user: "school_north",
            password: "pw-school_north"
        )
        #expect(impersonated.0 != 0, "the account is the database's, not the writer's")
        // IT has no child's record through the tool either.
        (code, out) = try tool("it_desk", ["list"])
        #expect(code == 1 && out.contains("permission denied"), "\(out)")
    }

    @Test("a store made before the search's words (schema 6) indexes what it already holds when init upgrades it")
    func upgradeIndexesWords() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let log = try Self.history(dir, "north", incidents: 100)
        var (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        func tool(_ arguments: [String]) throws -> (Int32, String) {
            try Child.run(
                Self.esafety,
                ["incidents"] + arguments + [
                    "--central", pg.url("trust_dsl"), "--password-file", dir.path + "/trust_dsl.pw",
                ]
            )
        }
        let id = pg.value("SELECT id FROM esafety.incidents ORDER BY time LIMIT 1")
        (code, out) = try tool(["note", id, "Spoke to Quokka's parents", "--site", "north"])
        #expect(code == 0, "\(out)")
        // Each incident's row and each note's (the site's and the central one), and what they hold.
        let held =
            "SELECT count(*) || ' ' || md5(string_agg(site || ' ' || id || ' ' || words::text, E'\\n' "
            + "ORDER BY site, id, words::text)) FROM esafety.incident_words"
        let words = pg.value(held)
        #expect(Int(words.prefix { $0 != " " }) ?? 0 > 100, "\(words)")
        // Back to the schema before migration 7, the rows kept: as a trust upgrading finds it.
        let down = pg.sql(
            """
            DROP TABLE esafety.incident_words, esafety.views, esafety.access_changes;
            DROP FUNCTION esafety.incident_words_of_incidents, esafety.incident_words_of_lines,
                esafety.incident_words_of_actions CASCADE;
            DROP FUNCTION esafety.words_of, esafety.search_words, esafety.incident_text,
                esafety.word_query, esafety.word_matches, esafety.seen_by, esafety.long_text_words;
            ALTER TABLE esafety.lines ALTER COLUMN line TYPE jsonb USING line::jsonb;
            DELETE FROM esafety.migrations WHERE version >= 7
            """
        )
        #expect(down.0 == 0, "\(down.1)")
        (code, out) = try Child.run(Self.esafety, ["central", "init", "--postgres", pg.url("postgres")])
        #expect(
            code == 0 && out.contains("applied migration(s) 7, 8, 9, 10, 11, 12, 13, 14, 15; schema version 15"),
            "\(out)"
        )
        #expect(pg.value(held) == words, "every incident's and note's words, once")
        (code, out) = try tool(["list", "--search", "quokka parent"])
        #expect(code == 0 && out.contains(id) && out.contains("1 incident(s)"), "\(out)")
    }

    @Test(
        "the store upgraded while a school ships: the forwarder waits out a long migration's hold (a batch given up after 30 s), then catches up; nothing lost or twice, every word indexed"
    )
    func upgradeWhileShipping() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let log = try Self.history(dir, "north", incidents: 1500)
        let forwarder = try Self.forwarder(dir, pg, site: "north", log: log.path)
        defer { forwarder.stop() }
        #expect(poll(timeout: 60) { Self.shipped(pg, "north") > 200 })
        // An upgrade as long as one at ten million incidents: the search's words held for 35 s,
        // as migration 14 holds them while it makes them again.
        let hold = try Child(
            "/usr/bin/psql",
            [
                "-h", pg.dir, "-p", String(pg.port), "-U", "postgres", "-d", "esafety", "-c",
                "BEGIN; LOCK TABLE esafety.incident_words IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(35); COMMIT",
            ]
        )
        #expect(
            poll(timeout: 10) { pg.value("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock'") != "0" }
        )
        sleep(5)
        let waiting = Self.shipped(pg, "north")
        sleep(10)
        #expect(Self.shipped(pg, "north") == waiting, "nothing is stored while the words are held")
        #expect(waiting < log.lines)
        let (held, _) = hold.wait()
        #expect(held == 0)
        #expect(
            poll(timeout: 120, interval: 0.5) { Self.shipped(pg, "north") == log.lines },
            "caught up: \(Self.shipped(pg, "north"))/\(log.lines)"
        )
        let err = (try? String(contentsOfFile: dir.path + "/forward-north.err", encoding: .utf8)) ?? ""
        #expect(err.contains("no answer in 30 s while shipping a batch"), "\(err)")
        #expect(
            pg.value("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM esafety.lines WHERE site = 'north'")
                == "\(log.lines)|\(log.lines)|1|\(log.lines)",
            "every line once, no gap"
        )
        let incidents = lines(log.path).filter { $0.contains("\"event\":\"incident\"") }.count
        #expect(pg.value("SELECT count(*) FROM esafety.incidents") == String(incidents))
        // Every incident's words and every note's, once each, as the store's own split makes them.
        let notes = pg.value("SELECT count(*) FROM esafety.lines WHERE event = 'note' AND id IS NOT NULL")
        #expect((Int(notes) ?? 0) > 0)
        #expect(pg.value("SELECT count(*) FROM esafety.incident_words") == String(incidents + (Int(notes) ?? 0)))
        #expect(
            pg.value(
                """
                SELECT count(*) FROM esafety.incidents i WHERE (SELECT count(*) FROM esafety.incident_words w
                    WHERE w.site = i.site AND w.id = i.id
                    AND w.words = array_to_tsvector(
                        ARRAY(SELECT esafety.words_of(esafety.incident_text(i.host, i.record)))
                        || ('@' || i.site))) <> 1
                """
            ) == "0"
        )
    }

    @Test("a search ignores accents centrally as at the school, in a store whose locale is C; SQL_ASCII is refused")
    func accents() throws {
        let dir = TempDir()
        // The test's cluster has the locale C (PostgresServer): lower() and [:alnum:] by the
        // database's rules knew only ASCII there.
        let pg = try Self.store(dir)
        #expect(pg.value("SELECT current_setting('lc_ctype') || ' ' || current_setting('server_encoding')") == "C UTF8")
        let log = try Self.history(dir, "north", incidents: 30)
        let first = ["incidents", "list", "--log", log.path, "--json", "--limit", "3"]
        var (code, out) = try Child.run(Self.esafety, first)
        let noted = Self.ids(out).sorted()
        #expect(code == 0 && noted.count == 3, "\(out)")
        let notes = [
            "Chloé's parents called from the café near the École",
            "NAÏVE search for Ελληνικά and Straße",
            "Ärger in Zürich, Ὀδυσσεύς, 東京 and 한국어",
        ]
        for (id, note) in zip(noted, notes) { try Self.note(log.path, id, note) }
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        // Each search finds the same incidents in the store as in the school's own log, and
        // the noted incident is among them.
        for (search, note) in [
            ("cafe", 0), ("café", 0), ("CAFÉ", 0), ("chloe", 0), ("ecole", 0), ("école", 0), ("ÉCOLE pare", 0),
            ("naive", 1), ("naïve", 1), ("nai", 1), ("ελληνικα", 1), ("ΕΛΛΗΝΙΚΆ", 1), ("straße", 1),
            ("arger", 2), ("ärger zurich", 2), ("οδυσσευς", 2), ("東京", 2), ("한국어", 2),
        ] {
            let (central, school): ([String], [String])
            (code, out, central, school) = try Self.searched(search, log: log.path, dir, pg)
            #expect(code == 0 && central.contains(noted[note]), "\(search): \(out)")
            #expect(central == school, "\(search): central \(central), at the school \(school)")
        }
        // A database made by a plain `createdb` on a server without a locale is SQL_ASCII:
        // init refuses it, says how to make one, and makes nothing in it.
        #expect(pg.sql("CREATE DATABASE plain ENCODING 'SQL_ASCII' TEMPLATE template0", database: "postgres").0 == 0)
        let plain = pg.url("postgres").replacingOccurrences(of: "/esafety?", with: "/plain?")
        (code, out) = try Child.run(Self.esafety, ["central", "init", "--postgres", plain])
        #expect(code == 1 && out.contains("encoded SQL_ASCII, not UTF8"), "\(out)")
        #expect(out.contains("createdb --encoding=UTF8 --template=template0 plain"), "\(out)")
        #expect(pg.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'esafety'", database: "plain").1 == "0\n")
    }

    @Test(
        "a note of more words than one tsvector holds (1 MB): every word of it found centrally, as at the school, the first and the last"
    )
    func longNote() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let log = try Self.history(dir, "north", incidents: 20)
        var (code, out) = try Child.run(
            Self.esafety,
            ["incidents", "list", "--log", log.path, "--json", "--limit", "1"]
        )
        let id = Self.ids(out).first ?? ""
        #expect(code == 0 && id.hasPrefix("inc-"), "\(out)")
        // 120,000 distinct words of ten letters: 1.2 MB of words, 1.3 MB of note.
        let words = (1...120_000).map { "word" + String(format: "%06d", $0) }
        try Self.note(log.path, id, words.joined(separator: " "))
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0 && !out.contains("refused"), "\(out)")
        #expect(
            pg.value("SELECT count(*) FROM esafety.incident_words WHERE site = 'north' AND id = '\(id)'") == "61",
            "the incident's own words, and the note's in 60 rows of 2,000"
        )
        for search in ["word000001", "word060000", "word120000", "word11999", "word000001 word120000", "nosuchword"] {
            let (central, school): ([String], [String])
            (code, out, central, school) = try Self.searched(search, log: log.path, dir, pg)
            #expect(code == 0 && central == (search == "nosuchword" ? [] : [id]), "\(search): \(out.prefix(300))")
            #expect(central == school, "\(search): central \(central), at the school \(school)")
        }
    }

    @Test("a store in a UK server's locale (en_GB.UTF-8) compares its keys byte for byte, and every tool works in it")
    func serverLocale() throws {
        let dir = TempDir()
        // Two sites whose order the locale and the bytes disagree on (the locale ignores `_`).
        let sites = ["stmarks", "st_marys"]
        let pg = try Self.store(dir, locale: "en_GB.UTF-8", sites: sites)
        #expect(pg.value("SELECT current_setting('lc_collate')") == "en_GB.UTF-8")
        // Every text key of every index of the store, by the bytes (none by the locale's rules).
        let byLocale = pg.value(
            """
            SELECT coalesce(string_agg(DISTINCT i.relname, ', '), '') FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
            WHERE n.nspname = 'esafety' AND EXISTS (SELECT 1 FROM unnest(x.indcollation::oid[]) AS c
                WHERE c <> 0 AND c <> 'pg_catalog."C"'::regcollation)
            """
        )
        #expect(byLocale == "", "indexes comparing by the locale: \(byLocale)")
        var logs: [String: (path: String, lines: Int)] = [:]
        for site in sites {
            logs[site] = try Self.history(dir, site, incidents: 40)
            let (code, out) = try Self.forwardOnce(dir, pg, site: site, log: logs[site]!.path)
            #expect(code == 0, "\(out)")
            #expect(Self.shipped(pg, site) == logs[site]!.lines)
        }
        // The console's list of sites (CentralDesk), as the trust's role reads it: by the bytes,
        // as a school's own tools order them, not the locale's order (stmarks first).
        let listed = pg.sql(
            "SELECT site FROM esafety.heads ORDER BY site",
            user: "trust_dsl",
            password: "pw-trust_dsl"
        )
        #expect(listed.0 == 0 && listed.1 == "st_marys\nstmarks\n", "\(listed.1)")
        func tool(_ arguments: [String]) throws -> (Int32, String) {
            try Child.run(
                Self.esafety,
                arguments + ["--central", pg.url("trust_dsl"), "--password-file", dir.path + "/trust_dsl.pw"]
            )
        }
        var (code, out) = try tool(["incidents", "list", "--limit", "1000"])
        #expect(code == 0 && out.contains("80 incident(s)") && out.contains("st_marys  "), "\(out.suffix(300))")
        let id = pg.value("SELECT id FROM esafety.incidents WHERE site = 'st_marys' ORDER BY id LIMIT 1")
        (code, out) = try tool(["incidents", "note", id, "Spoke to Quokka's parents", "--site", "st_marys"])
        #expect(code == 0, "\(out)")
        (code, out) = try tool(["incidents", "list", "--search", "quokka"])
        #expect(code == 0 && out.contains(id) && out.contains("1 incident(s)"), "\(out)")
        (code, out) = try tool(["incidents", "show", String(id.prefix(12)), "--site", "st_marys"])
        #expect(code == 0 && out.contains("Spoke to Quokka's parents"), "\(out)")
        (code, out) = try tool(["report", "--since", "2000-01-01", "--until", "2100-01-01", "--format", "json"])
        let report = (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any] ?? [:]
        #expect(code == 0 && report["new_incidents"] as? Int == 80, "\(out.suffix(300))")
    }

    @Test(
        "a context line naming two of a pupil's incidents is shown centrally under each, as the school's own log shows it"
    )
    func sharedContext() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        // esafetyd's own writer: one pupil, two incidents ten seconds apart with categorised
        // requests between and after them, so one context line names both.
        let base = 1_795_255_200.0 + 100
        let path = try Self.written(
            dir,
            [
                match("first.example", user: "busy", time: base),
                match("news.example", user: "busy", time: base + 5, category: "news", severity: "info"),
                match("second.example", user: "busy", time: base + 10),
                match("sport.example", user: "busy", time: base + 15, category: "sports", severity: "info"),
            ]
        )
        let shared = lines(path).filter { $0.hasPrefix("{\"event\":\"context\"") && $0.contains("\"ids\":[") }
        #expect(!shared.isEmpty, "a context line naming both incidents")
        var (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: path)
        #expect(code == 0, "\(out)")
        let ids = try IncidentStore.load(path).map(\.id)
        #expect(ids.count == 2)
        for id in ids {
            let local: String
            (code, local) = try Child.run(Self.esafety, ["incidents", "show", id, "--log", path])
            #expect(code == 0 && local.contains("sport.example") && local.contains("news.example"), "\(local)")
            (code, out) = try Child.run(
                Self.esafety,
                [
                    "incidents", "show", id, "--central", pg.url("school_north"), "--password-file",
                    dir.path + "/school_north.pw",
                ]
            )
            #expect(code == 0, "\(out)")
            for host in ["news.example", "sport.example"] {
                #expect(
                    out.components(separatedBy: host).count == local.components(separatedBy: host).count,
                    "\(id): \(host) as often centrally as locally\n\(out)\n---\n\(local)"
                )
            }
        }
    }

    @Test(
        "a NUL character in a user name or a note (which PostgreSQL's text and jsonb cannot hold) is shipped as ␀, not retried for ever"
    )
    func nulCharacters() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        // esafetyd's own writer, a user name with a NUL from the proxy's log, then a note with one
        // (the console takes a note's text from a form, where %00 is a NUL).
        let path = try Self.written(dir, [match("first.example", user: "pu\u{0}pil", time: 1_795_255_300)])
        #expect(lines(path).first?.contains("pu\\u0000pil") == true, "the log holds the NUL, escaped")
        let id = try #require(try IncidentStore.load(path).first?.id)
        try Self.note(path, id, "before\u{0}after")
        let (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: path)
        #expect(code == 0, "\(out)")
        #expect(Self.shipped(pg, "north") == lines(path).count, "every line shipped")
        #expect(pg.value("SELECT person FROM esafety.incidents WHERE site = 'north'") == "pu␀pil")
        func field(_ key: String, _ event: String) -> String {
            pg.value("SELECT line::jsonb->>'\(key)' FROM esafety.lines WHERE site = 'north' AND event = '\(event)'")
        }
        #expect(field("user", "incident") == "pu␀pil")
        #expect(field("note", "note") == "before␀after")
        #expect(pg.value("SELECT count(*) FROM esafety.lines WHERE site = 'north' AND NOT intact") == "0")
        // The note's words are found as the school's index finds them: a NUL is not part of a word.
        let (found, listed) = try Child.run(
            Self.esafety,
            [
                "incidents", "list", "--search", "after", "--central", pg.url("school_north"), "--password-file",
                dir.path + "/school_north.pw",
            ]
        )
        #expect(found == 0 && listed.contains(id), "\(listed)")
        // An escaped backslash before `u0000` is text, not a NUL, and stays as it is.
        #expect(StoredText.json(#"{"a":"\\u0000","b":"\u0000\\"}"#) == #"{"a":"\\u0000","b":"\u2400\\"}"#)
        #expect(StoredText.json(#"{"a":"\\\u0000"}"#) == #"{"a":"\\\u2400"}"#)
    }

    @Test("tail -f --central prints each incident as its site ships it, whatever its time, and keeps to --site")
    func tailFollowCentral() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        /// What a follower printed, as it arrives.
        final class Printed: @unchecked Sendable {
            let data = Mutex(Data())
            var ids: [String] {
                CentralTests.ids(String(decoding: data.withLock { $0 }, as: UTF8.self))
            }
        }
        func follower(_ extra: [String]) throws -> (Process, Printed) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.esafety)
            p.arguments =
                ["incidents", "tail", "-f", "--json", "-n", "0", "--central", pg.url("trust_dsl")]
                + ["--password-file", dir.path + "/trust_dsl.pw"] + extra
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            let printed = Printed()
            out.fileHandleForReading.readabilityHandler = { h in
                let d = h.availableData
                printed.data.withLock { $0.append(d) }
            }
            try p.run()
            return (p, printed)
        }
        let (all, printedAll) = try follower([])
        let (south, printedSouth) = try follower(["--site", "south"])
        defer {
            for p in [all, south] {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        usleep(2_000_000)
        // North starts shipping: five incidents from January to August.
        let log = try Self.history(dir, "north", incidents: 5)
        let (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        let ids = try IncidentStore.load(log.path).map(\.id)
        #expect(poll(timeout: 20) { printedAll.ids.count >= 5 }, "\(printedAll.ids)")
        #expect(printedAll.ids == ids, "each once, in the site's order")
        usleep(1_500_000)
        #expect(printedSouth.ids.isEmpty, "--site south shows nothing of north")
    }

    @Test("a tampered site log is shipped marked and flagged centrally, with a critical line where it runs")
    func tamperFlagged() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let log = try Self.history(dir, "north", incidents: 100)
        var text = try String(contentsOfFile: log.path, encoding: .utf8).split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        #expect(text[9].contains("\"time\":\"2026"))
        text[9] = Substring(text[9].replacingOccurrences(of: "\"time\":\"2026", with: "\"time\":\"2025"))
        // And a corrupted byte that leaves line 20 no longer JSON: shipped too, marked, not retried for ever.
        text[19] = Substring(text[19].replacingOccurrences(of: "\",\"", with: "\u{01},\"", options: [], range: nil))
        #expect((try? JSONSerialization.jsonObject(with: Data(text[19].utf8))) == nil)
        // And line 30 copied after itself (line 31): the same bytes and chain value as line 30,
        // stored once, flagged all the same.
        text.insert(text[29], at: 30)
        try text.joined(separator: "\n").write(toFile: log.path, atomically: true, encoding: .utf8)
        let (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        #expect(out.components(separatedBy: "does not follow the hash chain").count == 4, "said once each: \(out)")
        #expect(
            pg.sql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM esafety.tamper WHERE site = 'north'").1
                .trimmingCharacters(in: .whitespacesAndNewlines) == "10,20,31"
        )
        #expect(pg.sql("SELECT count(*) FROM esafety.lines WHERE site = 'north'").1.hasPrefix("\(log.lines)"))
        #expect(Self.shipped(pg, "north") == log.lines + 1)
        #expect(pg.sql("SELECT tamper FROM esafety.health WHERE site = 'north'").1.hasPrefix("3"))
        // Shipped again from the start (its position lost): nothing flagged or said twice.
        #expect(unlink(dir.path + "/forward-north.position") == 0)
        let (again, said) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(again == 0 && !said.contains("does not follow"), "\(said)")
        #expect(pg.sql("SELECT count(*) FROM esafety.tamper").1.hasPrefix("3"))
        // The unreadable line's bytes are kept, as a string.
        #expect(
            pg.sql("SELECT line::jsonb->>'event', intact FROM esafety.lines WHERE site = 'north' AND seq = 20").1
                .hasPrefix("unreadable|f")
        )
    }

    @Test(
        "a batch's insert that stores fewer rows than it was given without failing (a trigger added by hand passing over one) goes again, nothing lost, and is said; passed over again, nothing moves on past it"
    )
    func uncountedBatch() throws {
        let dir = TempDir()
        let pg = try Self.store(dir, sites: ["north", "south", "east"])
        // North's first line and south's first incident the store is given are passed over,
        // once each (a sequence is not rolled back with the batch).
        for (site, table) in [("north", "lines"), ("south", "incidents")] {
            let trigger = pg.sql(
                """
                CREATE SEQUENCE public.passed_over_\(site);
                CREATE FUNCTION public.pass_over_\(site)() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $f$
                BEGIN IF nextval('public.passed_over_\(site)') = 1 THEN RETURN NULL; END IF; RETURN NEW; END $f$;
                CREATE TRIGGER pass_over_\(site) BEFORE INSERT ON esafety.\(table)
                    FOR EACH ROW WHEN (NEW.site = '\(site)') EXECUTE FUNCTION public.pass_over_\(site)();
                """
            )
            #expect(trigger.0 == 0, "\(trigger.1)")
        }
        for site in ["north", "south"] {
            let log = try Self.history(dir, site, incidents: 100)
            let (code, out) = try Self.forwardOnce(dir, pg, site: site, log: log.path)
            #expect(code == 0, "\(out)")
            #expect(out.contains("row(s) stored "), "\(site) said: \(out)")
            #expect(
                pg.value(
                    "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM esafety.lines WHERE site = '\(site)'"
                ) == "\(log.lines)|\(log.lines)|1|\(log.lines)",
                "\(site)"
            )
            let incidents = lines(log.path).filter { $0.contains("\"event\":\"incident\"") }.count
            #expect(pg.value("SELECT count(*) FROM esafety.incidents WHERE site = '\(site)'") == "\(incidents)")
        }
        #expect(pg.value("SELECT count(*) FROM esafety.tamper") == "0")
        // East's fifth line passed over at every try: the batch that holds it is never taken as
        // shipped, in the usual insert or when it goes again.
        let always = pg.sql(
            """
            CREATE FUNCTION public.pass_over() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NULL; END $f$;
            CREATE TRIGGER pass_over_east BEFORE INSERT ON esafety.lines
                FOR EACH ROW WHEN (NEW.site = 'east' AND NEW.seq = 5) EXECUTE FUNCTION public.pass_over();
            """
        )
        #expect(always.0 == 0, "\(always.1)")
        let log = try Self.history(dir, "east", incidents: 100)
        let (code, out) = try Self.forwardOnce(dir, pg, site: "east", log: log.path)
        #expect(code != 0, "\(out)")
        #expect(out.contains("1 line(s) of a batch neither stored nor held"), "\(out)")
        #expect(out.contains("stopped at line 0"), "\(out)")
        #expect(pg.value("SELECT count(*) FROM esafety.lines WHERE site = 'east'") == "0")
        #expect(Self.shipped(pg, "east") == 0)
        // As a service, it tries again and says why where `esafety status` reads it.
        let forwarder = try Self.forwarder(dir, pg, site: "east", log: log.path)
        defer { forwarder.stop() }
        #expect(
            poll(timeout: 30) {
                Forwarder.summary(besideLog: log.path).joined().contains(
                    "not shipping, trying again: postgresql://fwd_east@"
                )
                    && Forwarder.summary(besideLog: log.path).joined().contains("neither stored nor held")
            },
            "\(Forwarder.summary(besideLog: log.path))"
        )
        #expect(Self.shipped(pg, "east") == 0)
    }

    @Test(
        "lines longer than the forwarder reads at once are shipped (whole up to 64 MiB, else their start and length), marked; a line not yet ended is shown as not shipped"
    )
    func longLines() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let log = try Self.history(dir, "north", incidents: 20)
        var text = lines(log.path)
        // Two lines put into the log by hand (esafetyd writes none this long): 5 MiB and 70 MiB,
        // each the last of a batch (the line after it follows the chain of the one before it).
        text.insert(String(repeating: "x", count: 5 << 20), at: 10)
        text.insert(String(repeating: "y", count: 70 << 20), at: 30)
        // And the start of a line with no end of line yet.
        try (text.joined(separator: "\n") + "\n{\"event\":").write(toFile: log.path, atomically: true, encoding: .utf8)
        let (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        #expect(Self.shipped(pg, "north") == text.count, "every ended line shipped, those after the long ones too")
        #expect(pg.value("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM esafety.tamper") == "11,31")
        func stored(_ seq: Int) -> String {
            pg.value(
                "SELECT j->>'event', length(j->>'text'), j->>'bytes' FROM esafety.lines, "
                    + "LATERAL (SELECT line::jsonb AS j) AS p WHERE site = 'north' AND seq = \(seq)"
            )
        }
        #expect(stored(11) == "unreadable|5242880|", "read whole")
        #expect(stored(31) == "unreadable|4096|73400320", "its start and its length")
        #expect(pg.value("SELECT count(*) FROM esafety.lines WHERE site = 'north' AND NOT intact") == "2")
        let summary = Forwarder.summary(besideLog: log.path).joined(separator: "\n")
        #expect(summary.contains(" 9 byte(s) of the log not yet shipped"), "\(summary)")
    }

    @Test(
        "a batch is read in reads that grow while they hold less than a batch: lines across 64 KiB, 256 KiB, 1 MiB and 4 MiB are shipped whole, in order"
    )
    func readsGrow() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let log = try Self.history(dir, "north", incidents: 30)
        var bodies = try lines(log.path).map { String(try #require(HashChain.split(Substring($0))).body) + "}" }
        let id = try #require(HashChain.field(Substring(bodies[0]), "id"))
        // Notes whose lines end just past each read's size, and one as long as several reads.
        let sizes = [(1 << 16) + 10, (1 << 18) - 100, (1 << 18) + 1, (1 << 20) + 7, 3 << 20, (1 << 22) - 90]
        for (k, size) in sizes.enumerated() {
            let note = String(repeating: "word\(k) ", count: size / 6)
            bodies.insert(
                "{\"event\":\"note\",\"id\":\"\(id)\",\"time\":\"2026-01-01T00:00:0\(k).000Z\",\"by\":\"dsl\","
                    + "\"note\":\"\(note)\"}",
                at: 5 + 7 * k
            )
        }
        // Sealed again from the start, so the whole log follows its chain.
        var text: [UInt8] = []
        var previous = String(repeating: "0", count: 64)
        for body in bodies { previous = HashChain.seal(body, previous: previous, appendingTo: &text) }
        try Data(text).write(to: URL(fileURLWithPath: log.path))
        let expected = sizes.enumerated().map { String("word\($0.offset) ".count * ($0.element / 6)) }
            .joined(separator: ",")
        for batch in ["500", "3"] {
            #expect(
                pg.sql(
                    "TRUNCATE esafety.lines, esafety.incidents, esafety.heads, esafety.tamper, esafety.incident_words"
                )
                .0 == 0
            )
            unlink(dir.path + "/forward-north.position")
            let (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path, batch: batch)
            #expect(code == 0, "\(out)")
            #expect(Self.shipped(pg, "north") == bodies.count, "batch \(batch): every line shipped")
            #expect(pg.value("SELECT count(*) FROM esafety.lines WHERE NOT intact") == "0", "batch \(batch)")
            let notes = pg.value(
                "SELECT string_agg(length(line::jsonb->>'note')::text, ',' ORDER BY seq) FROM esafety.lines "
                    + "WHERE event = 'note'"
            )
            #expect(notes == expected, "batch \(batch)")
        }
    }

    @Test(
        "the forwarder's reads, without a store: lines of random lengths about every read's size, in batches of 3 and of 500, come back each once, whole, in order, following the chain"
    )
    func readsAnyLengths() throws {
        let dir = TempDir()
        let path = dir.path + "/north.jsonl"
        // Seeded, so that a failure is the same at every run (the seed is in its message).
        var scratch: [UInt8] = []
        for seed in UInt64(1)...2 {
            var rng = SplitMix(s: seed)
            var text: [UInt8] = []
            var previous = String(repeating: "0", count: 64)
            // Lines ending just under and just over each read's size from the read's start (a
            // batch's read starts at a line's start: 64 KiB, 256 KiB, 1 MiB and 4 MiB are its
            // edges), and some of any length up to 3 MiB, in a random order between runs of
            // short lines.
            let edges = [1 << 16, 1 << 18, 1 << 20, 1 << 22]
            var lengths = edges.flatMap { [$0 - 1 - rng.below(128), $0 + rng.below(128)] }
            lengths += (0..<4).map { _ in rng.below(3 << 20) }
            for k in lengths.indices.reversed() { lengths.swapAt(k, rng.below(k + 1)) }
            for (k, length) in lengths.enumerated() {
                for _ in 0..<rng.below(600) {
                    let short = String(repeating: "s", count: rng.below(300))
                    previous = HashChain.seal(
                        "{\"event\":\"hits\",\"id\":\"inc-\(k)\",\"hits\":2,\"x\":\"\(short)\"}",
                        previous: previous,
                        appendingTo: &text
                    )
                }
                // The note's text padded so that the whole line (its chain value and end of
                // line included) is `length` bytes.
                let body = "{\"event\":\"note\",\"id\":\"inc-\(k)\",\"by\":\"dsl\",\"note\":\"\"}"
                _ = HashChain.seal(body, previous: previous, appendingTo: &scratch)
                let note = String(repeating: "n", count: max(0, length - scratch.count))
                scratch.removeAll(keepingCapacity: true)
                previous = HashChain.seal(
                    "{\"event\":\"note\",\"id\":\"inc-\(k)\",\"by\":\"dsl\",\"note\":\"\(note)\"}",
                    previous: previous,
                    appendingTo: &text
                )
            }
            try Data(text).write(to: URL(fileURLWithPath: path))
            let written = lines(path)
            for batch in [3, 500] {
                var settings = Forwarder.Settings(logPath: path, site: "north", positionPath: dir.path + "/pos")
                settings.batch = batch
                let forwarder = Forwarder(
                    settings: settings,
                    database: try CentralDatabase(url: "postgresql://nobody@:1/esafety?host=\(dir.path)"),
                    logger: Logger(label: "test")
                )
                var read: [Forwarder.Line] = []
                while true {
                    let (_, inode, got, remaining) = forwarder.nextLines()
                    guard let last = got.last else { break }
                    #expect(got.count <= batch, "seed \(seed), batch \(batch)")
                    read += got
                    forwarder.moved(inode, last, remaining)
                }
                let what = "seed \(seed), batch \(batch)"
                #expect(read.count == written.count, "\(what): \(read.count) of \(written.count) lines")
                #expect(read.map(\.seq) == Array(1...Int64(written.count)), "\(what)")
                #expect(read.filter { !$0.intact }.isEmpty, "\(what): every line follows the chain")
                #expect(read.map(\.text) == written, "\(what): each line's bytes")
                #expect(read.last?.end == Int64(text.count), "\(what)")
            }
        }
    }

    @Test("TLS with verify-full against a local CA: the right CA connects, another CA is refused, plain TCP is refused")
    func tls() throws {
        let dir = TempDir()
        let d = dir.path
        try makeLocalCertificates(in: d, name: "server", subjectAltName: "DNS:localhost")
        let pg = try PostgresServer(
            extra: ["-c", "ssl=on", "-c", "ssl_cert_file=server.pem", "-c", "ssl_key_file=server.key"]
        ) { folder in
            for f in ["server.pem", "server.key"] {
                try FileManager.default.copyItem(atPath: "\(d)/\(f)", toPath: "\(folder)/data/\(f)")
            }
            chmod("\(folder)/data/server.key", 0o600)
        }
        let (code, out) = try Child.run(Self.esafety, ["central", "init", "--postgres", pg.url("postgres")])
        #expect(code == 0, "\(out)")
        #expect(pg.sql("CREATE ROLE trust_dsl LOGIN PASSWORD 'pw-trust'").0 == 0)
        _ = try Child.run(
            Self.esafety,
            ["central", "grant", "--postgres", pg.url("postgres"), "--role", "trust_dsl", "--as", "trust"]
        )
        dir.write("trust.pw", "pw-trust\n")
        chmod(d + "/trust.pw", 0o600)
        func list(_ query: String) throws -> (Int32, String) {
            try Child.run(
                Self.esafety,
                [
                    "central", "list", "--postgres", "postgresql://trust_dsl@localhost:\(pg.port)/esafety\(query)",
                    "--password-file", d + "/trust.pw",
                ]
            )
        }
        var (c, o) = try list("?sslmode=verify-full&sslrootcert=\(d)/ca.pem")
        #expect(c == 0 && o.contains("0 incident(s)"), "verify-full with the CA that signed it: \(o)")
        (c, o) = try list("?sslmode=verify-full&sslrootcert=\(d)/other-ca.pem")
        #expect(c == 1, "a certificate from another CA is refused: \(o)")
        (c, o) = try list("?sslmode=disable")
        #expect(c == 1, "without TLS the server lets nobody in over TCP: \(o)")
        #expect(!o.contains("pw-trust"))
    }

    @Test("credentials: a password in the URL and a password file others may read are refused, naming why")
    func credentials() throws {
        let dir = TempDir()
        var (code, out) = try Child.run(Self.esafety, ["central", "list", "--postgres", "postgresql://a:secret@db/x"])
        #expect(code == 2 && out.contains("holds a password") && !out.contains("secret"), "\(out)")
        dir.write("open.pw", "secret\n")
        chmod(dir.path + "/open.pw", 0o644)
        (code, out) = try Child.run(
            Self.esafety,
            ["central", "list", "--postgres", "postgresql://a@db/x", "--password-file", dir.path + "/open.pw"]
        )
        #expect(code == 2 && out.contains("must be 0600"), "\(out)")
        (code, out) = try Child.run(
            Self.esafety,
            ["central", "list", "--postgres", "postgresql://a@db/x?sslmode=verify-full"]
        )
        #expect(code == 2 && out.contains("sslrootcert"), "\(out)")
    }
    @Test(
        "a user name or a client longer than an index entry takes is stored cut with …, its line and record whole; a pupil's history finds it by the whole name"
    )
    func longKeys() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        // 12,000 characters no compression shortens (PostgreSQL compresses an index entry first).
        var generator = SystemRandomNumberGenerator()
        let noise = String(
            (0..<12_000).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement(using: &generator)! }
        )
        let path = try Self.written(
            dir,
            [
                match("first.example", user: noise, time: 1_795_255_300),
                match("second.example", user: nil, client: "c" + noise, time: 1_795_255_301),
                match("third.example", user: "pupil2", time: 1_795_255_302),
            ]
        )
        let (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: path)
        #expect(code == 0, "not stopped by an index entry's size: \(out)")
        #expect(Self.shipped(pg, "north") == lines(path).count, "every line shipped")
        #expect(pg.value("SELECT count(*) FROM esafety.incidents WHERE site = 'north'") == "3")
        #expect(
            pg.value(
                "SELECT string_agg(octet_length(person) || ':' || right(person, 1) || ':' || left(person, 5), ',' "
                    + "ORDER BY time) FROM esafety.incidents"
            ) == "512:…:\(noise.prefix(5)),512:…:c\(noise.prefix(4)),6:2:pupil"
        )
        #expect(pg.value("SELECT record->>'user' FROM esafety.incidents WHERE host = 'first.example'") == noise)
        #expect(pg.value("SELECT count(*) FROM esafety.tamper") == "0")
        // The store's copy is the school's log byte for byte.
        let restored = pg.sql(Self.restoreSQL).1
        #expect(restored == (try String(contentsOfFile: path, encoding: .utf8)))
        // A pupil's history by the whole name, as the school's tools name the pupil.
        let (found, listed) = try Child.run(
            Self.esafety,
            [
                "incidents", "list", "--person", noise, "--json", "--central", pg.url("school_north"),
                "--password-file", dir.path + "/school_north.pw",
            ]
        )
        #expect(found == 0, "\(listed)")
        #expect(Self.ids(listed).count == 1 && listed.contains("first.example"), "\(listed.prefix(300))")
        let (other, none) = try Child.run(
            Self.esafety,
            [
                "incidents", "list", "--person", String(noise.prefix(509)) + "…", "--json", "--central",
                pg.url("school_north"), "--password-file", dir.path + "/school_north.pw",
            ]
        )
        #expect(other == 0 && Self.ids(none).isEmpty, "the cut name is not the pupil's: \(none.prefix(300))")
    }

    @Test(
        "a line the store would refuse (JSON jsonb does not take, a value a constraint refuses) is shipped as text, marked and flagged, and the lines after it go on"
    )
    func refusedLines() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        // A rule of the trust's own on the store, which one edited incident breaks.
        #expect(
            pg.sql("ALTER TABLE esafety.incidents ADD CONSTRAINT no_refused CHECK (host <> 'refused.example')").0 == 0
        )
        let log = try Self.history(dir, "north", incidents: 30)
        var text = lines(log.path)
        let incident = try #require(text.first { $0.hasPrefix("{\"event\":\"incident\"") })
        let id = try #require(IncidentFields(line: incident)?.id)
        // Lines edited into the log, each JSON that Foundation's parser takes: a note with a
        // number jsonb's numeric cannot hold, a `hits` line with a fraction of 17,000 digits, an
        // incident of another id on a host the store's rule refuses.
        text.insert(#"{"event":"note","id":"\#(id)","time":"2026-11-20T09:00:00Z","note":"x","n":1e-999999}"#, at: 5)
        text.insert(
            #"{"event":"hits","id":"\#(id)","time":"2026-11-20T09:00:01Z","hits":0."#
                + String(repeating: "0", count: 17_000) + "1}",
            at: 12
        )
        let host = try #require(IncidentFields(line: incident)?.host)
        // (Its chain value changed too: a line that claims another's value is that line, stored once.)
        let refused = incident.replacingOccurrences(of: id, with: "ZZ" + id.dropFirst(2)).replacingOccurrences(
            of: #""host":"\#(host)""#,
            with: #""host":"refused.example""#
        ).replacingOccurrences(of: #""chain":""#, with: #""chain":"00"#)
        #expect(IncidentFields(line: refused)?.host == "refused.example")
        text.insert(refused, at: 20)
        // And `hits` lines of the first incident whose count is no count: JSON jsonb takes,
        // stored as the site wrote them; the tools reading them pass over the count.
        text.insert(#"{"event":"hits","id":"\#(id)","time":"2026-11-20T09:00:02Z","hits":"many"}"#, at: 25)
        text.insert(#"{"event":"hits","id":"\#(id)","time":"2026-11-20T09:00:03Z","hits":1e30}"#, at: 26)
        for t in [text[5], text[12], text[20]] {
            #expect((try? JSONSerialization.jsonObject(with: Data(t.utf8))) != nil)
        }
        try (text.joined(separator: "\n") + "\n").write(toFile: log.path, atomically: true, encoding: .utf8)
        let (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        #expect(Self.shipped(pg, "north") == text.count, "every line shipped, those after the refused ones too")
        func stored(_ seq: Int) -> String {
            pg.value(
                "SELECT event || '|' || intact || '|' || (line::jsonb->>'text' = \(Self.literal(text[seq - 1]))) "
                    + "|| '|' || (line::jsonb->>'refused') FROM esafety.lines WHERE site = 'north' AND seq = \(seq)"
            )
        }
        #expect(
            stored(6)
                == "unreadable|false|true|a number beyond PostgreSQL's numeric range; it was the note line of \(id)"
        )
        #expect(
            stored(13)
                == "unreadable|false|true|a number beyond PostgreSQL's numeric range; it was the hits line of \(id)"
        )
        // The incident whose row the store does not hold is named, for the trust to read its line.
        #expect(
            stored(21) == "unreadable|false|true|refused by the central store: SQLSTATE 23514: new row for relation "
                + "(table incidents, constraint no_refused); it was the incident line of ZZ\(id.dropFirst(2))"
        )
        #expect(pg.value("SELECT count(*) FROM esafety.incidents WHERE host = 'refused.example'") == "0")
        #expect(pg.value("SELECT count(*) FROM esafety.incidents WHERE site = 'north'") == "30", "every other incident")
        // Flagged centrally and said where it runs, each once; the line after each edited one
        // does not follow the chain (it followed the line before the edit).
        #expect(
            pg.value("SELECT string_agg(seq || ':' || detail, ',' ORDER BY seq) FROM esafety.tamper")
                .contains(
                    "6:line 6 (\(log.path)) kept as text (a number beyond PostgreSQL's numeric range; "
                        + "it was the note line of \(id))"
                )
        )
        #expect(pg.value("SELECT count(*) FROM esafety.tamper WHERE detail LIKE '%kept as text%'") == "3")
        #expect(out.components(separatedBy: "was kept as text").count == 4, "\(out)")
        // The trust's tools read the site's incidents (no line they parse is one jsonb refuses).
        for arguments in [["list", "--limit", "100"], ["show", id]] {
            let (listed, o) = try Child.run(
                Self.esafety,
                ["incidents"] + arguments + [
                    "--central", pg.url("trust_dsl"), "--password-file", dir.path + "/trust_dsl.pw",
                ]
            )
            #expect(listed == 0, "\(arguments): \(o.prefix(500))")
        }
        // The count shown is the last one that is a count, centrally as at the school.
        let (_, central) = try Child.run(
            Self.esafety,
            [
                "incidents", "list", "--limit", "100", "--json", "--central", pg.url("trust_dsl"), "--password-file",
                dir.path + "/trust_dsl.pw",
            ]
        )
        let (local, school) = try Child.run(
            Self.esafety,
            ["incidents", "list", "--limit", "100", "--json", "--log", log.path]
        )
        #expect(local == 0, "\(school.prefix(500))")
        func hits(_ json: String) -> Int? {
            json.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }.first { $0["id"] as? String == id }?["hits"] as? Int
        }
        #expect(hits(central) != nil && hits(central) == hits(school), "\(central.prefix(300)) / \(school.prefix(300))")
        // Shipped again from its start (the position lost): nothing stored or said twice.
        #expect(unlink(dir.path + "/forward-north.position") == 0)
        let (again, said) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(again == 0 && !said.contains("kept as text"), "\(said)")
        #expect(Self.shipped(pg, "north") == text.count)
    }

    @Test(
        "every read of children's records through the tools on the central store is recorded first, by the database's role and the person; a school reads its own site's views; a read that cannot be recorded is not shown"
    )
    func viewsRecorded() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        for site in ["north", "south"] {
            let log = try Self.history(dir, site, incidents: 20)
            let (code, out) = try Self.forwardOnce(dir, pg, site: site, log: log.path)
            #expect(code == 0, "\(out)")
        }
        func tool(_ role: String, _ arguments: [String]) throws -> (Int32, String) {
            try Child.run(
                Self.esafety,
                arguments + ["--central", pg.url(role), "--password-file", dir.path + "/\(role).pw"]
            )
        }
        func views(_ role: String, _ extra: [String] = []) throws -> [[String]] {
            let (code, out) = try Child.run(
                Self.esafety,
                ["central", "views", "--postgres", pg.url(role), "--password-file", dir.path + "/\(role).pw"] + extra
            )
            #expect(code == 0, "\(out)")
            return out.split(separator: "\n").map { $0.components(separatedBy: "  ") }.filter { $0.count == 8 }
        }
        #expect(try views("trust_dsl").isEmpty, "nothing read yet")
        // The trust lists both schools' incidents: a row per school, with the ids it showed.
        var (code, out) = try tool("trust_dsl", ["incidents", "list", "--json", "--limit", "30"])
        #expect(code == 0, "\(out)")
        let listed = Self.ids(out)
        #expect(listed.count == 30)
        let me = Identity.account()
        var rows = try views("trust_dsl")
        #expect(rows.map { "\($0[1]) \($0[2]) \($0[3])" } == ["trust_dsl \(me) list", "trust_dsl \(me) list"])
        #expect(Set(rows.map { $0[4] }) == ["north", "south"])
        #expect(rows.flatMap { $0[7].split(separator: ",").map(String.init) }.sorted() == listed.sorted())
        #expect(rows.map { Int($0[5]) ?? 0 }.reduce(0, +) == 30)
        // A school's role shows one of its incidents: recorded with its id; a person's history,
        // a report and the tail likewise.
        let id = pg.value("SELECT id FROM esafety.incidents WHERE site = 'north' ORDER BY time LIMIT 1")
        (code, out) = try tool("school_north", ["incidents", "show", id])
        #expect(code == 0, "\(out)")
        let person = pg.value("SELECT person FROM esafety.incidents WHERE site = 'north' AND id = '\(id)'")
        (code, out) = try tool("school_north", ["incidents", "list", "--person", person])
        #expect(code == 0, "\(out)")
        (code, out) = try tool("school_north", ["report", "--since", "2000-01-01", "--until", "2100-01-01"])
        #expect(code == 0, "\(out.suffix(300))")
        (code, out) = try tool("school_north", ["incidents", "tail", "-n", "3"])
        #expect(code == 0, "\(out)")
        rows = try views("school_north")
        #expect(rows.map(\.[3]) == ["list", "report", "person", "incident", "list"], "\(rows)")
        #expect(rows.allSatisfy { $0[4] == "north" }, "a school reads its own site's views only")
        #expect(rows[3][1] == "school_north" && rows[3][7] == id && rows[3][5] == "1")
        #expect(
            rows[1][6].hasPrefix("2000-01-01T00:00:00") && rows[1][6].contains(" to 2100-01-01T00:00:00"),
            "\(rows[1])"
        )
        #expect(try views("trust_dsl").count == 6, "the trust reads every site's")
        // docs/CENTRAL.md's command, its role and arguments as written there (the test server's
        // address and the role's password file in place of the trust's).
        let document = try String(contentsOfFile: repositoryRoot + "/docs/CENTRAL.md", encoding: .utf8)
            .replacingOccurrences(of: " \\\n        ", with: " ")
        let command = try #require(
            document.split(separator: "\n").first {
                $0.hasPrefix("    esafety central views --postgres 'postgresql://")
            }
        )
        let words = command.split(separator: " ").map(String.init)
        let role = try #require(words[4].dropFirst("'postgresql://".count).split(separator: "@").first.map(String.init))
        #expect(words[5] == "--password-file")
        #expect(try views(role, Array(words[7...])).count == 5)
        #expect(try views("trust_dsl", ["--site", "south"]).count == 1)
        // Nobody changes or removes a view, nor records one as another role or for another site.
        for sql in [
            "UPDATE esafety.views SET by = 'x'", "DELETE FROM esafety.views",
            "INSERT INTO esafety.views (account, by, what, site, ids) VALUES ('trust_dsl', 'x', 'list', 'north', '{}')",
            "INSERT INTO esafety.views (by, what, site, ids) VALUES ('x', 'list', 'south', '{}')",
        ] {
            #expect(pg.sql(sql, user: "school_north", password: "pw-school_north").0 != 0, "\(sql)")
        }
        #expect(pg.value("SELECT count(*) FROM esafety.views") == "6")
        // A read that cannot be recorded is not shown.
        #expect(pg.sql("REVOKE INSERT ON esafety.views FROM esafety_school").0 == 0)
        let host = pg.value("SELECT host FROM esafety.incidents WHERE site = 'north' AND id = '\(id)'")
        (code, out) = try tool("school_north", ["incidents", "show", id])
        #expect(code == 1 && !out.contains(host) && out.contains("permission denied"), "\(out)")
        (code, out) = try tool("school_north", ["incidents", "list"])
        #expect(code == 1 && !out.contains(host), "\(out)")
    }

    @Test(
        "a log lost and restored from the store (docs/CENTRAL.md's psql line), its position kept: followed on from the line last shipped, nothing flagged, nothing twice"
    )
    func logRestoredFromTheStore() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let log = try Self.history(dir, "north", incidents: 200)
        var (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0, "\(out)")
        // The school's log lost; the trust's role gives it back as docs/CENTRAL.md says, into a
        // new file (a new inode), and the school's esafetyd writes on.
        let original = try String(contentsOfFile: log.path, encoding: .utf8)
        let (c, restored) = try Self.logFromTheStore(pg)
        #expect(c == 0 && restored == original, "the log, byte for byte")
        // Written beside the lost one, then in its place: another inode, as on a new disk.
        try restored.write(toFile: log.path + ".restored", atomically: false, encoding: .utf8)
        #expect(rename(log.path + ".restored", log.path) == 0)
        let id = pg.value("SELECT id FROM esafety.incidents ORDER BY id LIMIT 1")
        try Self.note(log.path, id, "wombat")
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log.path)
        #expect(code == 0 && !out.contains("does not follow"), "\(out)")
        #expect(out.contains("found in \(log.path)"), "\(out)")
        #expect(pg.value("SELECT count(*) FROM esafety.tamper") == "0", "no false flag")
        #expect(
            pg.value("SELECT count(*), count(DISTINCT seq), max(seq) FROM esafety.lines")
                == "\(log.lines + 1)|\(log.lines + 1)|\(log.lines + 1)"
        )
        #expect(pg.value("SELECT count(*) FROM esafety.incident_words WHERE words @@ 'wombat'") == "1")
    }

    @Test(
        "the file shipped last gone with lines never shipped (a rotation lost): said, and the first line after the gap flagged"
    )
    func linesLost() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let history = try Self.history(dir, "whole", incidents: 100)
        let all = lines(history.path)
        let log = dir.path + "/north.jsonl"
        try (all[0..<200].joined(separator: "\n") + "\n").write(toFile: log, atomically: false, encoding: .utf8)
        var (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log)
        #expect(code == 0, "\(out)")
        // Lines 201 to 250 were written to a file since lost; the log now holds what came after.
        try (all[250...].joined(separator: "\n") + "\n").write(toFile: log + ".new", atomically: false, encoding: .utf8)
        #expect(rename(log + ".new", log) == 0)
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log)
        #expect(code == 0, "\(out)")
        #expect(out.contains("the line shipped last is in no file of the log"), "\(out)")
        #expect(out.contains("line 201 of site north does not follow the hash chain"), "\(out)")
        #expect(pg.value("SELECT string_agg(seq::text, ',') FROM esafety.tamper") == "201")
        #expect(Self.shipped(pg, "north") == 200 + all.count - 250)
    }

    @Test(
        "a log put back from a copy older than what was shipped is said as critical, with what to do; put back from the store, it goes on quietly"
    )
    func logOlderThanTheStore() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        let all = lines(try Self.history(dir, "whole", incidents: 100).path)
        let log = dir.path + "/north.jsonl"
        let position = dir.path + "/forward-north.position"
        try (all[0..<200].joined(separator: "\n") + "\n").write(toFile: log, atomically: false, encoding: .utf8)
        var (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log)
        #expect(code == 0, "\(out)")
        // Last week's copy of the school's state folder: the log and the position.
        let (olderLog, olderPosition) = (
            try String(contentsOfFile: log, encoding: .utf8), try String(contentsOfFile: position, encoding: .utf8)
        )
        // The week goes on: the rest written and shipped.
        let handle = try #require(FileHandle(forWritingAtPath: log))
        handle.seekToEndOfFile()
        handle.write(Data((all[200...].joined(separator: "\n") + "\n").utf8))
        handle.closeFile()
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log)
        #expect(code == 0 && Self.shipped(pg, "north") == all.count, "\(out)")
        // The disk lost; the folder put back from last week's copy.
        try olderLog.write(toFile: log + ".copy", atomically: false, encoding: .utf8)
        #expect(rename(log + ".copy", log) == 0)
        try olderPosition.write(toFile: position, atomically: true, encoding: .utf8)
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log)
        #expect(code == 0, "\(out)")
        #expect(
            out.contains(
                "the central store holds site north's lines up to line \(all.count), and its last line is in no file "
                    + "of this log, shipped up to line 200"
            ) && out.contains("Put the log back from the store"),
            "\(out)"
        )
        #expect(pg.value("SELECT count(*) FROM esafety.tamper") == "0")
        // Put back from the store as docs/CENTRAL.md says: nothing said, nothing stored twice.
        let (c, restored) = try Self.logFromTheStore(pg)
        #expect(c == 0 && restored.split(separator: "\n").count == all.count)
        try restored.write(toFile: log + ".copy", atomically: false, encoding: .utf8)
        #expect(rename(log + ".copy", log) == 0)
        (code, out) = try Self.forwardOnce(dir, pg, site: "north", log: log)
        #expect(code == 0 && !out.contains("critical") && !out.contains("older"), "\(out)")
        #expect(pg.value("SELECT count(*), count(DISTINCT seq) FROM esafety.lines") == "\(all.count)|\(all.count)")
        #expect(pg.value("SELECT count(*) FROM esafety.tamper") == "0")
    }

    @Test("the line shipped last is found by its chain value in any file of the log, across a read's 4 MiB boundary")
    func findsTheLineShippedLast() throws {
        let dir = TempDir()
        let chain = String(repeating: "ab", count: 32)
        let line = "{\"event\":\"note\",\"chain\":\"\(chain)\"}\n"
        // The pattern starts 10 bytes before the first read's end.
        let filler = String(repeating: "x", count: (1 << 22) - 10 - "{\"event\":\"note\",".count - 1) + "\n"
        try (filler + line + "{}\n").write(toFile: dir.path + "/a", atomically: false, encoding: .utf8)
        try "{}\n{}\n".write(toFile: dir.path + "/b", atomically: false, encoding: .utf8)
        let found = Forwarder.find(chain: chain, in: [dir.path + "/a", dir.path + "/b"])
        #expect(found?.index == 0 && found?.end == Int64(filler.utf8.count + line.utf8.count))
        #expect(
            Forwarder.find(chain: String(repeating: "cd", count: 32), in: [dir.path + "/a", dir.path + "/b"]) == nil
        )
        func first(_ pattern: String, in text: String, count: Int) -> Int? {
            Array(pattern.utf8).withUnsafeBytes { p in
                Array(text.utf8).withUnsafeBytes {
                    firstIndex(of: p, in: UnsafeRawBufferPointer(rebasing: $0[..<count]))
                }
            }
        }
        #expect(first("\"ab\"", in: "x\"a\"ab\"", count: 7) == 3)
        #expect(first("\"ab\"", in: "x\"a\"ab\"", count: 6) == nil)
    }

    /// docs/CENTRAL.md's `esafety central SUBCOMMAND` lines as PostgreSQL's administrator, each as
    /// its arguments (the test server's address in place of the documented one), in order.
    static func documentedCentral(_ subcommand: String, _ pg: PostgresServer) throws -> [[String]] {
        let document = try String(contentsOfFile: repositoryRoot + "/docs/CENTRAL.md", encoding: .utf8)
            .replacingOccurrences(of: " \\\n        ", with: " ")
        let start = "    sudo -u postgres esafety central \(subcommand) "
        let lines = document.split(separator: "\n").filter { $0.hasPrefix(start) }
        if lines.isEmpty { throw TestFailure(message: "docs/CENTRAL.md: no line starting \(start)") }
        return lines.map { line in
            line.split(separator: " ").dropFirst(4).map {
                $0.hasPrefix("'postgresql://") ? pg.url("postgres") : String($0)
            }
        }
    }

    @Test(
        "access taken away (docs/CENTRAL.md's revoke): a school's site, then every part; effective in a session already open; roles lists who may read what"
    )
    func accessRevoked() throws {
        let dir = TempDir()
        let pg = try Self.store(dir)
        for site in ["north", "south"] {
            let log = try Self.history(dir, site, incidents: 20)
            let (code, out) = try Self.forwardOnce(dir, pg, site: site, log: log.path)
            #expect(code == 0, "\(out)")
        }
        func roles() throws -> [String] {
            let (code, out) = try Child.run(Self.esafety, try Self.documentedCentral("roles", pg)[0])
            #expect(code == 0, "\(out)")
            return out.split(separator: "\n").map(String.init)
        }
        #expect(
            try roles() == [
                "fwd_north: forwarder for north", "fwd_south: forwarder for south", "governors: governor",
                "it_desk: it", "school_north: school for north", "trust_dsl: trust for every site",
            ]
        )
        // A session of the school's DSL open throughout: it reads the school's incidents, then
        // (the site taken away while it waits) none, then (every part taken away) nothing at all.
        let session = try Child(
            "/usr/bin/psql",
            [
                "-h", pg.dir, "-p", String(pg.port), "-U", "school_north", "-d", "esafety", "-At",
                "-c", "SELECT count(*) FROM esafety.incidents", "-c", "SELECT pg_sleep(3)",
                "-c", "SELECT count(*) FROM esafety.incidents", "-c", "SELECT pg_sleep(3.5)",
                "-c", "SELECT count(*) FROM esafety.incidents",
            ],
            capture: true,
            environment: ["PGPASSWORD": "pw-school_north"]
        )
        func sleeping(_ query: String) -> Bool {
            pg.value("SELECT count(*) FROM pg_stat_activity WHERE usename = 'school_north' AND query = '\(query)'")
                == "1"
        }
        #expect(poll(timeout: 20) { sleeping("SELECT pg_sleep(3)") })
        let revoke = try Self.documentedCentral("revoke", pg)
        #expect(revoke.count == 2 && revoke[0].contains("--site"))
        var (code, out) = try Child.run(Self.esafety, revoke[0])
        #expect(code == 0 && out == "school_north: no longer north\n", "\(out)")
        #expect(poll(timeout: 20) { sleeping("SELECT pg_sleep(3.5)") })
        (code, out) = try Child.run(Self.esafety, revoke[1])
        #expect(code == 0 && out == "school_north: no longer has a part in the store; taken away: school\n", "\(out)")
        let (status, printed) = session.wait()
        #expect(status != 0, "the last statement refused")
        #expect(printed.hasPrefix("20\n\n0\n\n") && printed.contains("permission denied"), "\(printed)")
        #expect(try roles().contains { $0.hasPrefix("school_north") } == false)
        (code, out) = try Child.run(
            Self.esafety,
            [
                "incidents", "list", "--central", pg.url("school_north"), "--password-file",
                dir.path + "/school_north.pw",
            ]
        )
        #expect(code != 0 && out.contains("permission denied"), "\(out)")
        // What was not there is said, and changes nothing.
        (code, out) = try Child.run(
            Self.esafety,
            ["central", "revoke", "--postgres", pg.url("postgres"), "--role", "fwd_south", "--site", "north"]
        )
        #expect(code == 1 && out.contains("fwd_south had no site north"), "\(out)")
        (code, out) = try Child.run(
            Self.esafety,
            ["central", "revoke", "--postgres", pg.url("postgres"), "--role", "nobody"]
        )
        #expect(code == 1 && out.contains("no login role nobody"), "\(out)")
        (code, out) = try Child.run(
            Self.esafety,
            ["central", "revoke", "--postgres", pg.url("postgres"), "--role", "school_north"]
        )
        #expect(code == 0 && out.contains("school_north: had no part in the store"), "\(out)")
        // A forwarder retired: it writes nothing more, and says why.
        (code, out) = try Child.run(
            Self.esafety,
            ["central", "revoke", "--postgres", pg.url("postgres"), "--role", "fwd_south"]
        )
        #expect(code == 0 && out.contains("taken away: forwarder (south)"), "\(out)")
        let south = dir.path + "/south.jsonl"
        try Self.note(south, pg.value("SELECT id FROM esafety.incidents WHERE site = 'south' LIMIT 1"), "wombat")
        (code, out) = try Self.forwardOnce(dir, pg, site: "south", log: south)
        #expect(code == 1 && out.contains("permission denied"), "\(out)")
        #expect(
            try roles() == [
                "fwd_north: forwarder for north", "governors: governor", "it_desk: it",
                "trust_dsl: trust for every site",
            ]
        )
        // Anyone but the administrator would see only their own sites: refused, not shown a part.
        (code, out) = try Child.run(
            Self.esafety,
            ["central", "roles", "--postgres", pg.url("trust_dsl"), "--password-file", dir.path + "/trust_dsl.pw"]
        )
        #expect(code == 1 && out.contains("trust_dsl sees only its own row") && !out.contains("fwd_north"), "\(out)")
        // Every change of access kept, newest first, for the trust to read; nobody changes one.
        (code, out) = try Child.run(
            Self.esafety,
            [
                "central", "roles", "--changes", "--postgres", pg.url("trust_dsl"), "--password-file",
                dir.path + "/trust_dsl.pw",
            ]
        )
        #expect(code == 0, "\(out)")
        let changes = out.split(separator: "\n").map {
            $0.split(separator: " ", maxSplits: 1).last.map(String.init) ?? ""
        }
        #expect(
            changes == [
                "postgres revoke fwd_south: forwarder for south", "postgres revoke school_north: school",
                "postgres revoke school_north: sites for north", "postgres grant governors: governor",
                "postgres grant it_desk: it", "postgres grant trust_dsl: trust",
                "postgres grant school_north: school for north", "postgres grant fwd_south: forwarder for south",
                "postgres grant fwd_north: forwarder for north",
            ],
            "\(out)"
        )
        #expect(out.hasPrefix(String(ISO8601DateFormatter().string(from: Date()).prefix(10))), "\(out)")
        for sql in ["UPDATE esafety.access_changes SET role = 'x'", "DELETE FROM esafety.access_changes"] {
            #expect(pg.sql(sql, user: "trust_dsl", password: "pw-trust_dsl").0 != 0, "\(sql)")
        }
        // A role made by hand with a terminal's escape in its name is listed, escaped.
        #expect(pg.sql("INSERT INTO esafety.site_roles (role, site) VALUES (E'x\\x1b[2J', 'north')").0 == 0)
        let listed = try roles()
        #expect(listed.last == "x\\x1B[2J (may not log in): no part for north", "\(listed)")
    }

    @Test("what jsonb would refuse is told before a line is sent; a key over 512 bytes is cut at a character, with …")
    func refusedByJSONB() {
        let refuses: [(String, String?)] = [
            (#"{"a":"\ud800"}"#, "a \\u escape of half a surrogate pair"),
            (#"{"a":"\udc00\ud800"}"#, "a \\u escape of half a surrogate pair"),
            (#"{"a":"x\uD83D"}"#, "a \\u escape of half a surrogate pair"),
            (#"{"a":"\ud83d\ude00"}"#, nil),  // a whole pair: 😀
            (#"{"a":"\\ud800"}"#, nil),  // an escaped backslash, then text
            (#"{"a":"1e999999"}"#, nil),  // a string, not a number
            (#"{"a":1e999999}"#, "a number beyond PostgreSQL's numeric range"),
            (#"{"a":2.5E-1001}"#, "a number beyond PostgreSQL's numeric range"),
            (#"{"a":1e300,"b":"\"e99999"}"#, nil),
            (#"{"a":0."# + String(repeating: "0", count: 16_001) + "1}", "a number beyond PostgreSQL's numeric range"),
            (
                String(repeating: "[", count: 1_001) + String(repeating: "]", count: 1_001),
                "arrays or objects nested more than 1,000 deep"
            ),
            (String(repeating: "[", count: 1_000) + String(repeating: "]", count: 1_000), nil),
        ]
        for (text, why) in refuses { #expect(StoredText.refusedByJSONB(text) == why, "\(text.prefix(40))") }
        #expect(StoredText.key(String(repeating: "a", count: 512)) == String(repeating: "a", count: 512))
        let cut = StoredText.key(String(repeating: "é", count: 300))  // two bytes each
        #expect(cut == String(repeating: "é", count: 254) + "…" && cut.utf8.count == 511)
        #expect(StoredText.key("pu\u{0}pil") == "pu␀pil")
    }

    /// A SQL string literal of `s`.
    static func literal(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

}
