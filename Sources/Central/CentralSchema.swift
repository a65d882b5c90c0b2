import Foundation
import Logging
import PostgresNIO

/// The central store's schema, as versioned migrations: each runs once, in its own
/// transaction, recorded in `esafety.migrations`; `esafety central init` runs those not yet
/// applied, so it is safe to run again (and to run after an upgrade).
///
/// Access is the database's to enforce, with row-level security, not the tools': a school's
/// login role is a member of `esafety_school` and mapped to its site(s) in
/// `esafety.site_roles`, and sees only those sites' rows; a member of `esafety_trust` sees
/// every site; `esafety_forwarder` members insert their own sites' lines and nothing else;
/// `esafety_it` reads health (no child's record); `esafety_governor` reads daily counts only;
/// `esafety_console` members (the web console) see what their school or trust mapping gives
/// them, narrowed to the logged-in account's sites (migration 5).
public enum CentralSchema {
    /// Row-level security's rule since migration 2: the trust sees every site, anyone else the
    /// sites mapped to their role; each function in a scalar subquery, so PostgreSQL decides it
    /// once per statement (an InitPlan), not once per row.
    static let visible = "((SELECT esafety.sees_all()) OR site = ANY ((SELECT esafety.own_sites())::text[]))"

    /// Row-level security of a table whose rows name the role that wrote them (`account`, set
    /// by the database: the central actions, the views): read as `visible`, written only as
    /// oneself and for a site one sees.
    static let signed = "USING \(visible) WITH CHECK (account = current_user AND \(visible))"

    public static let migrations: [(version: Int, sql: String)] = [
        (
            1,
            """
            CREATE TABLE esafety.site_roles (
                role name NOT NULL,
                site text NOT NULL,
                PRIMARY KEY (role, site)
            );
            -- Every line of every site's incident log: a line's chain value names it (SHA-256 of
            -- the line before and its bytes), so a line shipped twice (a retry, a forwarder
            -- restarted) is the same row; seq is its place in the site's chain, in order.
            CREATE TABLE esafety.lines (
                site text NOT NULL,
                seq bigint NOT NULL,
                chain text NOT NULL,
                event text NOT NULL,
                id text,
                time text,
                line jsonb NOT NULL,
                intact boolean NOT NULL,
                received timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (site, chain)
            );
            CREATE INDEX lines_seq ON esafety.lines (site, seq);
            CREATE INDEX lines_id ON esafety.lines (site, id, seq);
            -- Each incident once per site, with its state as the workflow leaves it.
            CREATE TABLE esafety.incidents (
                site text NOT NULL,
                id text NOT NULL,
                time text NOT NULL,
                severity text,
                category text NOT NULL,
                grp text NOT NULL,
                person text NOT NULL,
                host text NOT NULL,
                state text NOT NULL DEFAULT 'new',
                due text,
                record jsonb NOT NULL,
                PRIMARY KEY (site, id)
            );
            CREATE INDEX incidents_open ON esafety.incidents (state, time);
            CREATE INDEX incidents_time ON esafety.incidents (time);
            -- What each site's chain has reached, as the forwarder shipped it: escrow of the head.
            CREATE TABLE esafety.heads (
                site text PRIMARY KEY,
                seq bigint NOT NULL,
                chain text NOT NULL,
                updated timestamptz NOT NULL DEFAULT now()
            );
            -- A line that does not follow the chain, flagged where the trust's DSLs see it.
            CREATE TABLE esafety.tamper (
                site text NOT NULL,
                seq bigint NOT NULL,
                detail text NOT NULL,
                found timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (site, seq)
            );

            -- The group roles are the cluster's, shared by every database in it: a store made in
            -- another database at the same moment may make them first (a unique violation in
            -- pg_authid rather than duplicate_object), and then they are there all the same.
            DO $$ BEGIN CREATE ROLE esafety_school NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
            DO $$ BEGIN CREATE ROLE esafety_trust NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
            DO $$ BEGIN CREATE ROLE esafety_forwarder NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
            DO $$ BEGIN CREATE ROLE esafety_it NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
            DO $$ BEGIN CREATE ROLE esafety_governor NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;

            GRANT USAGE ON SCHEMA esafety TO esafety_school, esafety_trust, esafety_forwarder, esafety_it,
                esafety_governor;
            -- The sites a role may see: its own mapping only.
            GRANT SELECT ON esafety.site_roles TO esafety_school, esafety_trust, esafety_forwarder;
            ALTER TABLE esafety.site_roles ENABLE ROW LEVEL SECURITY;
            CREATE POLICY own_mapping ON esafety.site_roles FOR SELECT USING (role = current_user);

            CREATE FUNCTION esafety.may_see(s text) RETURNS boolean LANGUAGE sql STABLE AS $f$
                SELECT pg_has_role(current_user, 'esafety_trust', 'MEMBER')
                    OR EXISTS (SELECT 1 FROM esafety.site_roles WHERE role = current_user AND site = s)
            $f$;

            GRANT SELECT ON esafety.lines, esafety.incidents, esafety.heads, esafety.tamper
                TO esafety_school, esafety_trust;
            GRANT SELECT, INSERT, UPDATE ON esafety.lines, esafety.incidents, esafety.heads, esafety.tamper
                TO esafety_forwarder;
            GRANT INSERT ON esafety.lines TO esafety_school, esafety_trust;
            ALTER TABLE esafety.lines ENABLE ROW LEVEL SECURITY;
            ALTER TABLE esafety.incidents ENABLE ROW LEVEL SECURITY;
            ALTER TABLE esafety.heads ENABLE ROW LEVEL SECURITY;
            ALTER TABLE esafety.tamper ENABLE ROW LEVEL SECURITY;
            CREATE POLICY by_site ON esafety.lines USING (esafety.may_see(site)) WITH CHECK (esafety.may_see(site));
            CREATE POLICY by_site ON esafety.incidents USING (esafety.may_see(site))
                WITH CHECK (esafety.may_see(site));
            CREATE POLICY by_site ON esafety.heads USING (esafety.may_see(site)) WITH CHECK (esafety.may_see(site));
            CREATE POLICY by_site ON esafety.tamper USING (esafety.may_see(site)) WITH CHECK (esafety.may_see(site));

            -- Health without a child's record: what each site shipped, and when.
            CREATE VIEW esafety.health AS
                SELECT h.site, h.seq AS lines, h.chain AS head, h.updated AS last_shipped,
                    (SELECT count(*) FROM esafety.tamper t WHERE t.site = h.site) AS tamper
                FROM esafety.heads h;
            GRANT SELECT ON esafety.health TO esafety_it, esafety_trust;
            -- Governors: new incidents per site, day and severity; nobody named.
            CREATE VIEW esafety.daily_counts AS
                SELECT site, substr(time, 1, 10) AS day, severity, count(*) AS incidents
                FROM esafety.incidents GROUP BY 1, 2, 3;
            GRANT SELECT ON esafety.daily_counts TO esafety_governor, esafety_trust;
            """
        ),
        (
            2,
            """
            -- The same rule, decided once per statement instead of once per row: each function
            -- is called in a scalar subquery, which PostgreSQL runs once (an InitPlan) and
            -- reuses for every row; `may_see(site)` ran its subquery for every row inserted,
            -- returned or read, most of a bulk insert's time.
            CREATE FUNCTION esafety.sees_all() RETURNS boolean LANGUAGE sql STABLE AS $f$
                SELECT pg_has_role(current_user, 'esafety_trust', 'MEMBER')
            $f$;
            CREATE FUNCTION esafety.own_sites() RETURNS text[] LANGUAGE sql STABLE AS $f$
                SELECT coalesce(array_agg(site), '{}') FROM esafety.site_roles WHERE role = current_user
            $f$;
            \(["lines", "incidents", "heads", "tamper"].map {
                "ALTER POLICY by_site ON esafety.\($0) USING \(visible) WITH CHECK \(visible);\n"
            }.joined())
            """
        ),
        (
            3,
            """
            -- Workflow actions taken centrally (`esafety incidents ... --central`, a trust's DSL
            -- acting on a school's incident): the event as the tool writes it, who acted as they
            -- gave it (`by`) and the database role that wrote it (`account`, set by the database,
            -- not the client). The site's own log does not hold these; the incident's state here
            -- is its log's actions and these, in the order they were applied.
            CREATE TABLE esafety.actions (
                site text NOT NULL,
                id text NOT NULL,
                n bigserial NOT NULL,
                time text NOT NULL,
                action text NOT NULL,
                by text NOT NULL,
                account name NOT NULL DEFAULT current_user,
                line jsonb NOT NULL,
                recorded timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (site, id, n)
            );
            ALTER TABLE esafety.actions ENABLE ROW LEVEL SECURITY;
            CREATE POLICY by_site ON esafety.actions \(signed);
            GRANT SELECT, INSERT ON esafety.actions TO esafety_school, esafety_trust;
            GRANT USAGE ON SEQUENCE esafety.actions_n_seq TO esafety_school, esafety_trust;
            GRANT UPDATE (state) ON esafety.incidents TO esafety_school, esafety_trust;
            """
        ),
        (
            4,
            """
            -- An incident by its id (or the start of it) without its site, as the tools name it:
            -- the primary key leads with the site, so this was a scan of every row.
            -- text_pattern_ops serves both `id = X` and `id LIKE 'X%'` whatever the collation.
            CREATE INDEX incidents_id ON esafety.incidents (id text_pattern_ops);
            """
        ),
        (
            5,
            """
            -- The web console's role (`esafety central grant --as console`): it serves many
            -- accounts, each limited to some sites, so every statement it makes is narrowed to
            -- the account's sites by the setting esafety.sites (comma-separated; '*' for all the
            -- role may see), which the console sets before each use of a connection. The
            -- database applies it to every row: a narrowing only ever removes sites from what
            -- the role may see, any role may narrow itself, and a console role that has not set
            -- it sees nothing (fail closed).
            DO $$ BEGIN CREATE ROLE esafety_console NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
            CREATE FUNCTION esafety.narrowed() RETURNS text[] LANGUAGE sql STABLE AS $f$
                SELECT CASE
                    WHEN coalesce(current_setting('esafety.sites', true), '') = '' THEN
                        CASE WHEN pg_has_role(current_user, 'esafety_console', 'MEMBER') THEN '{}'::text[] END
                    WHEN current_setting('esafety.sites', true) = '*' THEN NULL
                    ELSE string_to_array(current_setting('esafety.sites', true), ',')
                END
            $f$;
            CREATE OR REPLACE FUNCTION esafety.sees_all() RETURNS boolean LANGUAGE sql STABLE AS $f$
                SELECT pg_has_role(current_user, 'esafety_trust', 'MEMBER') AND esafety.narrowed() IS NULL
            $f$;
            CREATE OR REPLACE FUNCTION esafety.own_sites() RETURNS text[] LANGUAGE sql STABLE AS $f$
                SELECT CASE
                    WHEN n IS NULL THEN
                        (SELECT coalesce(array_agg(site), '{}') FROM esafety.site_roles WHERE role = current_user)
                    WHEN pg_has_role(current_user, 'esafety_trust', 'MEMBER') THEN n
                    ELSE (SELECT coalesce(array_agg(site), '{}') FROM esafety.site_roles
                        WHERE role = current_user AND site = ANY (n))
                END FROM (SELECT esafety.narrowed() AS n) AS narrowing
            $f$;
            GRANT USAGE ON SCHEMA esafety TO esafety_console;
            GRANT SELECT ON esafety.site_roles, esafety.lines, esafety.incidents, esafety.heads, esafety.tamper,
                esafety.actions TO esafety_console;
            GRANT INSERT ON esafety.actions TO esafety_console;
            GRANT USAGE ON SEQUENCE esafety.actions_n_seq TO esafety_console;
            GRANT UPDATE (state) ON esafety.incidents TO esafety_console;
            """
        ),
        (
            6,
            """
            -- The console's questions at a trust's scale: a school's incidents newest first, a
            -- pupil's history, and the open incidents by severity and site from the index alone
            -- (a partial index of the open ones, with what the counts read). No more: every
            -- workflow action updates an incident's row and so every index of the table (a
            -- category and a group are read through the time order; category indexes cost the
            -- bulk forwarding a quarter of its rate for 1-2 ms here).
            CREATE INDEX incidents_site_time ON esafety.incidents (site, time);
            CREATE INDEX incidents_site_person ON esafety.incidents (site, person, time);
            CREATE INDEX incidents_open_severity ON esafety.incidents (severity, site, state, due)
                WHERE state IN ('new', 'acknowledged', 'escalated');
            """
        ),
        (
            7,
            """
            -- A search's words from an index, not a scan: each incident's words (its website, URL
            -- and search term, and every note taken on it, in the school's log or centrally), one
            -- row per word, kept by triggers as rows arrive. Row-level security keeps any
            -- operator that is not leakproof (LIKE, trigram and full-text matches alike) away from
            -- every index, so a search of a trust's incidents read each row (75 s at ten million),
            -- a word is found here with `=` and a range (`>=`, `<`), which are leakproof.
            -- A word is a run of letters and digits, lowercased, its first 64 characters (an
            -- index entry is bounded; a URL may hold a long token).
            -- One definition, inlined where it is used (a SQL function over one SELECT).
            CREATE FUNCTION esafety.words_of(t text) RETURNS SETOF text LANGUAGE sql STABLE AS $f$
                SELECT left(w, 64) FROM regexp_split_to_table(lower(coalesce(t, '')), '[^[:alnum:]]+') AS w
                WHERE w <> ''
            $f$;
            -- The text of an incident its words are taken from: one definition for the trigger,
            -- the backfill and a search's check of a word's start.
            CREATE FUNCTION esafety.incident_text(host text, record jsonb) RETURNS text LANGUAGE sql STABLE AS $f$
                SELECT concat_ws(' ', host, record->>'url', record->>'search_term')
            $f$;
            -- A search's own words in the order they were written (its last word is also the start
            -- of a word, as in a school's index).
            CREATE FUNCTION esafety.search_words(t text) RETURNS text[] LANGUAGE sql STABLE AS $f$
                SELECT coalesce(array_agg(w ORDER BY n), '{}') FROM esafety.words_of(t) WITH ORDINALITY AS s(w, n)
            $f$;
            -- Each word once per text (a word in both an incident's URL and a note on it is two
            -- rows: nothing is checked for uniqueness, an index less to keep).
            CREATE TABLE esafety.words (
                word text COLLATE "C" NOT NULL,
                site text NOT NULL,
                id text NOT NULL
            );
            CREATE INDEX words_word ON esafety.words (word, site, id);
            ALTER TABLE esafety.words ENABLE ROW LEVEL SECURITY;
            CREATE POLICY by_site ON esafety.words USING \(visible) WITH CHECK \(visible);
            GRANT SELECT ON esafety.words TO esafety_school, esafety_trust, esafety_console;
            -- The triggers write as the schema's owner (no role is granted INSERT here): what they
            -- index is a row its writer was allowed to insert, under that table's policy.
            CREATE FUNCTION esafety.words_of_incidents() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp AS $f$ BEGIN
                INSERT INTO esafety.words (word, site, id)
                SELECT w, n.site, n.id FROM added n, LATERAL (SELECT DISTINCT w
                    FROM esafety.words_of(esafety.incident_text(n.host, n.record)) AS w) AS d
                ; RETURN NULL; END
            $f$;
            CREATE FUNCTION esafety.words_of_lines() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp AS $f$ BEGIN
                INSERT INTO esafety.words (word, site, id)
                SELECT w, n.site, n.id FROM added n,
                LATERAL (SELECT DISTINCT w FROM esafety.words_of(n.line->>'note') AS w) AS d
                WHERE n.event = 'note' AND n.id IS NOT NULL; RETURN NULL; END
            $f$;
            CREATE FUNCTION esafety.words_of_actions() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp AS $f$ BEGIN
                INSERT INTO esafety.words (word, site, id)
                SELECT w, n.site, n.id FROM added n,
                LATERAL (SELECT DISTINCT w FROM esafety.words_of(n.line->>'note') AS w) AS d
                WHERE n.action = 'note'; RETURN NULL; END
            $f$;
            REVOKE ALL ON FUNCTION esafety.words_of_incidents(), esafety.words_of_lines(), esafety.words_of_actions()
                FROM PUBLIC;
            CREATE TRIGGER words AFTER INSERT ON esafety.incidents REFERENCING NEW TABLE AS added
                FOR EACH STATEMENT EXECUTE FUNCTION esafety.words_of_incidents();
            CREATE TRIGGER words AFTER INSERT ON esafety.lines REFERENCING NEW TABLE AS added
                FOR EACH STATEMENT EXECUTE FUNCTION esafety.words_of_lines();
            CREATE TRIGGER words AFTER INSERT ON esafety.actions REFERENCING NEW TABLE AS added
                FOR EACH STATEMENT EXECUTE FUNCTION esafety.words_of_actions();
            -- What the store already holds (at ten million incidents, minutes).
            INSERT INTO esafety.words (word, site, id)
            SELECT w, i.site, i.id FROM esafety.incidents i, LATERAL (SELECT DISTINCT w
                FROM esafety.words_of(esafety.incident_text(i.host, i.record)) AS w) AS d;
            INSERT INTO esafety.words (word, site, id)
            SELECT w, l.site, l.id FROM esafety.lines l,
                LATERAL (SELECT DISTINCT w FROM esafety.words_of(l.line->>'note') AS w) AS d
            WHERE l.event = 'note' AND l.id IS NOT NULL;
            INSERT INTO esafety.words (word, site, id)
            SELECT w, a.site, a.id FROM esafety.actions a,
                LATERAL (SELECT DISTINCT w FROM esafety.words_of(a.line->>'note') AS w) AS d
            WHERE a.action = 'note'
            """
        ),
        (
            8,
            """
            -- Each line as the school wrote it, byte for byte: jsonb rewrote it in PostgreSQL's
            -- own key order and spacing, so the central copy could not be checked against its
            -- chain, nor a school's log restored from it; and it parsed every line on the way in
            -- (about a tenth of PostgreSQL's work per line). The forwarder ships only JSON (a
            -- line that is not is kept as an `unreadable` record), so a reader may still take a
            -- line as jsonb. Lines stored before keep jsonb's form. The table is rewritten:
            -- minutes at ten million lines.
            ALTER TABLE esafety.lines ALTER COLUMN line TYPE text USING line::text;
            CREATE OR REPLACE FUNCTION esafety.words_of_lines() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp AS $f$ BEGIN
                INSERT INTO esafety.words (word, site, id)
                SELECT w, n.site, n.id FROM added n,
                LATERAL (SELECT DISTINCT w FROM esafety.words_of(n.line::jsonb->>'note') AS w) AS d
                WHERE n.event = 'note' AND n.id IS NOT NULL; RETURN NULL; END
            $f$
            """
        ),
        (
            9,
            """
            -- A search ignores accents, as a school's index does (`cafe` finds "café", `ecole`
            -- "École"), and finds the same words whatever the database's locale: with LC_CTYPE
            -- C, lower() and [:alnum:] knew only ASCII, so "naïve" was the words `na` and `ve`.
            -- Text that is all ASCII (most URLs) is split as before, by the C rules; any other
            -- by ICU's (the und-x-icu collation, in every UTF-8 database of a PostgreSQL built
            -- with ICU, as Debian's is): lowercased, decomposed, its combining marks (the
            -- diacritics of Latin, Greek and Cyrillic letters) dropped, composed again.
            -- (Each branch's condition is in its function's argument, so the other branch splits
            -- nothing: a condition in WHERE is checked after the split.)
            CREATE OR REPLACE FUNCTION esafety.words_of(t text) RETURNS SETOF text LANGUAGE sql STABLE AS $f$
                SELECT left(w, 64) COLLATE "C" FROM regexp_split_to_table(
                    CASE WHEN octet_length(t) = char_length(t) THEN lower(t COLLATE "C") END, '[^[:alnum:]]+') AS w
                WHERE w <> ''
                UNION ALL
                SELECT left(w, 64) COLLATE "C" FROM regexp_split_to_table(
                    CASE WHEN octet_length(t) <> char_length(t) THEN normalize(regexp_replace(
                        normalize(lower(t COLLATE "und-x-icu"), NFD),
                        '[\\u0300-\\u036f\\u1ab0-\\u1aff\\u1dc0-\\u1dff\\u20d0-\\u20ff\\ufe20-\\ufe2f]+',
                        '', 'g'), NFC) END,
                    '[^[:alnum:]]+') AS w
                WHERE w <> ''
            $f$;
            -- The words the store holds, made again by the new rule (the index built once, after
            -- them: at ten million incidents, minutes).
            DROP INDEX esafety.words_word;
            TRUNCATE esafety.words;
            INSERT INTO esafety.words (word, site, id)
            SELECT w, i.site, i.id FROM esafety.incidents i, LATERAL (SELECT DISTINCT w
                FROM esafety.words_of(esafety.incident_text(i.host, i.record)) AS w) AS d;
            INSERT INTO esafety.words (word, site, id)
            SELECT w, l.site, l.id FROM esafety.lines l,
                LATERAL (SELECT DISTINCT w FROM esafety.words_of(l.line::jsonb->>'note') AS w) AS d
            WHERE l.event = 'note' AND l.id IS NOT NULL;
            INSERT INTO esafety.words (word, site, id)
            SELECT w, a.site, a.id FROM esafety.actions a,
                LATERAL (SELECT DISTINCT w FROM esafety.words_of(a.line->>'note') AS w) AS d
            WHERE a.action = 'note';
            CREATE INDEX words_word ON esafety.words (word, site, id)
            """
        ),
        (
            10,
            """
            -- Keys compared byte for byte, whatever the database's locale. A site's name, an id, a
            -- chain value, a time, a state are machine text: under a server's locale (en_GB.UTF-8)
            -- each comparison in every index went through the locale's rules (strcoll), a fifth
            -- of PostgreSQL's CPU per incident stored, and a list ordered by site followed the
            -- locale's order ("st-marys" after "stmarks") where a school's tools order bytes.
            -- Changing a column's collation keeps its rows (no rewrite) and rebuilds the indexes
            -- on it (at ten million incidents, minutes); the policies and views that name the
            -- columns are made again around it, as they were.
            DROP VIEW esafety.health;
            DROP VIEW esafety.daily_counts;
            \(byteKeys.keys.sorted().filter { $0 != "site_roles" }.map {
                "DROP POLICY by_site ON esafety.\($0);\n"
            }.joined())\
            \(byteKeys.sorted { $0.key < $1.key }.map { table, columns in
                "ALTER TABLE esafety.\(table) "
                    + columns.map { "ALTER COLUMN \"\($0)\" TYPE text COLLATE \"C\"" }.joined(separator: ", ")
                    + ";\n"
            }.joined())\
            \(["lines", "incidents", "heads", "tamper", "words"].map {
                "CREATE POLICY by_site ON esafety.\($0) USING \(visible) WITH CHECK \(visible);\n"
            }.joined())\
            CREATE POLICY by_site ON esafety.actions \(signed);
            CREATE VIEW esafety.health AS
                SELECT h.site, h.seq AS lines, h.chain AS head, h.updated AS last_shipped,
                    (SELECT count(*) FROM esafety.tamper t WHERE t.site = h.site) AS tamper
                FROM esafety.heads h;
            GRANT SELECT ON esafety.health TO esafety_it, esafety_trust;
            CREATE VIEW esafety.daily_counts AS
                SELECT site, substr(time, 1, 10) AS day, severity, count(*) AS incidents
                FROM esafety.incidents GROUP BY 1, 2, 3;
            GRANT SELECT ON esafety.daily_counts TO esafety_governor, esafety_trust;
            """
        ),
        (
            11,
            """
            -- Who sees what, decided without parsing SQL for every statement: row-level security
            -- calls these three in each statement's InitPlans (a batch's inserts, each policy's
            -- USING and WITH CHECK), and a SQL function's body was parsed, analysed and planned at
            -- each call (a twentieth of PostgreSQL's CPU per incident shipped). PL/pgSQL keeps a
            -- function's plans for the session. The rules are migration 5's, unchanged.
            CREATE OR REPLACE FUNCTION esafety.narrowed() RETURNS text[] LANGUAGE plpgsql STABLE AS $f$
            DECLARE
                s text := coalesce(current_setting('esafety.sites', true), '');
            BEGIN
                IF s = '' THEN
                    RETURN CASE WHEN pg_has_role(current_user, 'esafety_console', 'MEMBER') THEN '{}'::text[] END;
                END IF;
                IF s = '*' THEN
                    RETURN NULL;
                END IF;
                RETURN string_to_array(s, ',');
            END
            $f$;
            CREATE OR REPLACE FUNCTION esafety.sees_all() RETURNS boolean LANGUAGE plpgsql STABLE AS $f$
            BEGIN
                RETURN pg_has_role(current_user, 'esafety_trust', 'MEMBER') AND esafety.narrowed() IS NULL;
            END
            $f$;
            CREATE OR REPLACE FUNCTION esafety.own_sites() RETURNS text[] LANGUAGE plpgsql STABLE AS $f$
            DECLARE
                n text[] := esafety.narrowed();
            BEGIN
                IF n IS NOT NULL AND pg_has_role(current_user, 'esafety_trust', 'MEMBER') THEN
                    RETURN n;
                END IF;
                RETURN (SELECT coalesce(array_agg(site), '{}') FROM esafety.site_roles
                    WHERE role = current_user AND (n IS NULL OR site = ANY (n)));
            END
            $f$
            """
        ),
        (
            12,
            """
            -- Every read of a child's record through the tools on the central store (`esafety
            -- incidents list/show/tail --central`, `report --central`, `central list`): who (the
            -- database role, set by the database, not the client; and the person as the tool names
            -- them), what, which school's incidents (their ids), when. Written before the records
            -- are shown: a view that cannot be recorded is not shown. Nobody may change or delete
            -- a row (no UPDATE or DELETE is granted). A school's role reads the views of its own
            -- site's records, the trust every site's. The web console writes here too (besides its
            -- own access log).
            CREATE TABLE esafety.views (
                n bigserial PRIMARY KEY,
                at timestamptz NOT NULL DEFAULT now(),
                account name NOT NULL DEFAULT current_user,
                by text NOT NULL,
                what text NOT NULL,
                site text COLLATE "C" NOT NULL,
                ids text[] NOT NULL,
                detail text
            );
            CREATE INDEX views_site ON esafety.views (site, at);
            ALTER TABLE esafety.views ENABLE ROW LEVEL SECURITY;
            CREATE POLICY by_site ON esafety.views \(signed);
            GRANT SELECT, INSERT ON esafety.views TO esafety_school, esafety_trust;
            GRANT USAGE ON SEQUENCE esafety.views_n_seq TO esafety_school, esafety_trust;
            -- The web console records there too what each of its accounts is shown (by: the account).
            GRANT INSERT ON esafety.views TO esafety_console;
            GRANT USAGE ON SEQUENCE esafety.views_n_seq TO esafety_console;
            """
        ),
        (
            13,
            """
            -- Every change of who may read or write what (`esafety central grant` and `revoke`):
            -- when, by which database role (set by the database), what (grant or revoke), the
            -- login role, the parts and the sites given or taken. Written in the change's own
            -- transaction by the database's administrator; nobody may change or delete a row. The
            -- trust and IT read it (no child's record is in it).
            CREATE TABLE esafety.access_changes (
                n bigserial PRIMARY KEY,
                at timestamptz NOT NULL DEFAULT now(),
                account name NOT NULL DEFAULT current_user,
                what text NOT NULL CHECK (what IN ('grant', 'revoke')),
                role text NOT NULL,
                parts text[] NOT NULL,
                sites text[] NOT NULL
            );
            GRANT SELECT ON esafety.access_changes TO esafety_trust, esafety_it;
            """
        ),
        (
            14,
            """
            -- A search's words as one row per text (an incident's website, URL and search term;
            -- each note on it), its words a tsvector in a GIN index, instead of one row per word
            -- in a B-tree (migration 7): each incident's ten or so B-tree entries, every site
            -- writing into the same pages for common words, were two fifths of PostgreSQL's CPU
            -- per incident shipped; a GIN index gathers new entries in a pending list and merges
            -- them in bulk. The words are split as before (esafety.words_of); each row also holds
            -- its site as the word `@site` (no word has `@`), so the index finds a school's
            -- incidents of a word common across the trust without reading the others'.
            -- A tsvector's match (@@) is not leakproof, so row-level security keeps it off the
            -- GIN index for every role but the owner: the index is read through
            -- esafety.word_matches, which narrows to the sites the login role sees (the same rule
            -- as the policies', esafety.seen_by); the rows themselves are read under the policy.
            CREATE FUNCTION esafety.seen_by(r name) RETURNS text[] LANGUAGE plpgsql STABLE AS $f$
            DECLARE
                s text := coalesce(current_setting('esafety.sites', true), '');
                n text[];
            BEGIN
                IF s = '' THEN
                    IF pg_has_role(r, 'esafety_console', 'MEMBER') THEN
                        RETURN '{}'::text[];
                    END IF;
                ELSIF s <> '*' THEN
                    n := string_to_array(s, ',');
                END IF;
                IF pg_has_role(r, 'esafety_trust', 'MEMBER') THEN
                    RETURN n;
                END IF;
                RETURN (SELECT coalesce(array_agg(site), '{}') FROM esafety.site_roles
                    WHERE role = r AND (n IS NULL OR site = ANY (n)));
            END
            $f$;
            -- The policies' rule, in one place: every site (NULL) or these.
            CREATE OR REPLACE FUNCTION esafety.sees_all() RETURNS boolean LANGUAGE plpgsql STABLE AS $f$
            BEGIN
                RETURN esafety.seen_by(current_user) IS NULL;
            END
            $f$;
            CREATE OR REPLACE FUNCTION esafety.own_sites() RETURNS text[] LANGUAGE plpgsql STABLE AS $f$
            BEGIN
                RETURN coalesce(esafety.seen_by(current_user), '{}'::text[]);
            END
            $f$;
            DROP FUNCTION esafety.narrowed();
            -- A word of a search as a tsquery of that word alone (quoted: nothing in it is an
            -- operator), or of the words it starts.
            CREATE FUNCTION esafety.word_query(w text, start boolean) RETURNS tsquery LANGUAGE sql IMMUTABLE AS $f$
                SELECT ('''' || replace(replace(w, '\\', '\\\\'), '''', '''''') || ''''
                    || CASE WHEN start THEN ':*' ELSE '' END)::tsquery
            $f$;
            CREATE TABLE esafety.incident_words (
                site text COLLATE "C" NOT NULL,
                id text COLLATE "C" NOT NULL,
                words tsvector NOT NULL
            );
            ALTER TABLE esafety.incident_words ENABLE ROW LEVEL SECURITY;
            CREATE POLICY by_site ON esafety.incident_words USING \(visible) WITH CHECK \(visible);
            GRANT SELECT ON esafety.incident_words TO esafety_school, esafety_trust, esafety_console;
            -- The incidents (site, id) with a word (or a word's start), up to `lim` (NULL: all), of
            -- the sites the login role sees: planned for the word at each call (EXECUTE), so a word
            -- most incidents have is read from the table, stopping at the limit, a rare one from
            -- the index. The login role (session_user), since current_user here is the owner: it
            -- differs from the policies' current_user only after SET ROLE, to a role the login
            -- role is a member of, so it never answers with more than the login role may see.
            CREATE FUNCTION esafety.word_matches(q tsquery, lim bigint) RETURNS TABLE (site text, id text)
            LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
            DECLARE
                sites text[] := esafety.seen_by(session_user);
            BEGIN
                IF sites IS NOT NULL THEN
                    IF cardinality(sites) = 0 THEN
                        RETURN;
                    END IF;
                    q := q && (SELECT string_agg(esafety.word_query('@' || s, false)::text, ' | ')::tsquery
                        FROM unnest(sites) AS s);
                END IF;
                RETURN QUERY EXECUTE 'SELECT w.site, w.id FROM esafety.incident_words w '
                    || 'WHERE w.words @@ $1 AND ($2::text[] IS NULL OR w.site = ANY ($2)) LIMIT $3'
                    USING q, sites, lim;
            END
            $f$;
            REVOKE ALL ON FUNCTION esafety.word_matches(tsquery, bigint) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION esafety.word_matches(tsquery, bigint)
                TO esafety_school, esafety_trust, esafety_console;
            -- A long text's words in rows of 2,000 words (at most 512 KB: a word is at most 64
            -- characters), for a text over `shortText` bytes: a tsvector holds at most 1 MB of
            -- words, and PostgreSQL's array_to_tsvector makes a damaged one past that, saying
            -- nothing (its later words then match nothing).
            CREATE FUNCTION esafety.long_text_words(site text, t text) RETURNS SETOF tsvector LANGUAGE sql STABLE AS $f$
                SELECT array_to_tsvector(array_agg(w) || ('@' || site))
                FROM esafety.words_of(t) WITH ORDINALITY AS x(w, n)
                GROUP BY (n - 1) / 2000
            $f$;
            -- The triggers write as the schema's owner, as migration 7's did (which they replace).
            CREATE FUNCTION esafety.incident_words_of_incidents() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp AS $f$ BEGIN
                \(wordRows("n", "esafety.incident_text(n.host, n.record)", from: "added"));
                RETURN NULL; END
            $f$;
            CREATE FUNCTION esafety.incident_words_of_lines() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp AS $f$ BEGIN
                \(wordRows(
                    "n", "n.line::jsonb->>'note'", from: "added", where: "n.event = 'note' AND n.id IS NOT NULL"));
                RETURN NULL; END
            $f$;
            CREATE FUNCTION esafety.incident_words_of_actions() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp AS $f$ BEGIN
                \(wordRows("n", "n.line->>'note'", from: "added", where: "n.action = 'note'"));
                RETURN NULL; END
            $f$;
            REVOKE ALL ON FUNCTION esafety.incident_words_of_incidents(), esafety.incident_words_of_lines(),
                esafety.incident_words_of_actions() FROM PUBLIC;
            DROP FUNCTION esafety.words_of_incidents(), esafety.words_of_lines(), esafety.words_of_actions() CASCADE;
            CREATE TRIGGER words AFTER INSERT ON esafety.incidents REFERENCING NEW TABLE AS added
                FOR EACH STATEMENT EXECUTE FUNCTION esafety.incident_words_of_incidents();
            CREATE TRIGGER words AFTER INSERT ON esafety.lines REFERENCING NEW TABLE AS added
                FOR EACH STATEMENT EXECUTE FUNCTION esafety.incident_words_of_lines();
            CREATE TRIGGER words AFTER INSERT ON esafety.actions REFERENCING NEW TABLE AS added
                FOR EACH STATEMENT EXECUTE FUNCTION esafety.incident_words_of_actions();
            -- What the store holds, its indexes built once after it (at ten million incidents,
            -- minutes); the words' rows of migration 7 dropped.
            \(wordRows("i", "esafety.incident_text(i.host, i.record)", from: "esafety.incidents"));
            \(wordRows(
                "l", "l.line::jsonb->>'note'", from: "esafety.lines", where: "l.event = 'note' AND l.id IS NOT NULL"));
            \(wordRows("a", "a.line->>'note'", from: "esafety.actions", where: "a.action = 'note'"));
            CREATE INDEX incident_words_words ON esafety.incident_words USING gin (words);
            CREATE INDEX incident_words_site_id ON esafety.incident_words (site, id);
            DROP TABLE esafety.words;
            ANALYZE esafety.incident_words
            """
        ),
        (
            15,
            """
            -- The open incidents newest first, of every site or of some, from an index of the open
            -- ones only (time, then site and state, checked in the index), instead of one of every
            -- incident by state and time: at ten million incidents a school's open list read the
            -- whole school's incidents and every open one through two indexes (p50/p95 80/120 ms,
            -- 40/50 ms with this), and an incident closed is no longer an entry of it. A list of
            -- closed ones reads the incidents by time (incidents_time), as most incidents are closed.
            DROP INDEX IF EXISTS esafety.incidents_open;
            CREATE INDEX incidents_open ON esafety.incidents (time, site, state)
                WHERE state IN ('new', 'acknowledged', 'escalated')
            """
        ),
    ]

    /// Migration 14's rows of `esafety.incident_words` for `text` of each row `r` of `source`
    /// (those `filter` keeps): one row of the text's words and its site's (`@site`) as a
    /// tsvector, or for a text over `shortText` bytes several (`esafety.long_text_words`).
    /// Written out where it is used rather than a SQL function, which PostgreSQL runs as a
    /// query of its own for every row (a third of its CPU per incident shipped, measured),
    /// and `words_of` read as a table so that PostgreSQL inlines it. Part of migration 14's text.
    static func wordRows(_ r: String, _ text: String, from source: String, where filter: String? = nil) -> String {
        let first = filter.map { "\($0) AND " } ?? ""
        return """
            INSERT INTO esafety.incident_words (site, id, words)
            SELECT \(r).site, \(r).id, array_to_tsvector(ARRAY(SELECT w FROM esafety.words_of(\(text)) AS w)
                || ('@' || \(r).site))
            FROM \(source) \(r) WHERE \(first)octet_length(\(text)) <= \(shortText)
            UNION ALL
            SELECT \(r).site, \(r).id, p.words
            FROM \(source) \(r), LATERAL esafety.long_text_words(\(r).site, \(text)) AS p(words)
            WHERE \(first)octet_length(\(text)) > \(shortText)
            """
    }

    /// The longest text whose words are one row: its words, lowercased and their accents
    /// dropped, at most three times its bytes, well within a tsvector's 1 MB.
    static let shortText = 300_000

    /// The text columns migration 10 made compare byte for byte (`COLLATE "C"`): every one an
    /// index or a search compares; the words' own word has since migration 7. Part of migration
    /// 10's text, so kept as it was applied: a later change of collation is a migration of its own.
    static let byteKeys: [String: [String]] = [
        "site_roles": ["site"],
        "lines": ["site", "chain", "event", "id", "time"],
        "incidents": ["site", "id", "time", "severity", "category", "grp", "person", "host", "state", "due"],
        "heads": ["site", "chain"],
        "tamper": ["site"],
        "actions": ["site", "id", "time", "action", "by"],
        "words": ["site", "id"],
    ]

    /// A migration's statements, one per query (the extended protocol takes one): the text
    /// splits after each line that ends with `;` outside a dollar-quoted body (`$f$ ... $f$`, a
    /// function's, whose own statements end lines too); lines that are comments are left out.
    static func statements(_ sql: String) -> [String] {
        var out: [String] = []
        var lines: [Substring] = []
        var quote: Substring? = nil
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            if quote == nil && line.trimmingCharacters(in: .whitespaces).hasPrefix("--") { continue }
            // Each dollar quote's tag ($f$, $$) opens a body, and the same tag closes it.
            var rest = line[...]
            while let open = rest.firstIndex(of: "$") {
                let after = rest.index(after: open)
                guard let close = rest[after...].firstIndex(of: "$"),
                    rest[after..<close].allSatisfy({ $0.isLetter || $0 == "_" })
                else {
                    rest = rest[after...]
                    continue
                }
                let tag = rest[open...close]
                if quote == nil { quote = tag } else if quote == tag { quote = nil }
                rest = rest[rest.index(after: close)...]
            }
            lines.append(line)
            if quote == nil, line.hasSuffix(";") {
                let text = lines.joined(separator: "\n").dropLast()
                if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { out.append(String(text)) }
                lines = []
            }
        }
        let text = lines.joined(separator: "\n")
        if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { out.append(text) }
        return out
    }

    public struct Applied: Sendable {
        public var applied: [Int]
        public var current: Int
    }

    /// Creates the schema or brings it up to date; safe to run again.
    public static func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> Applied {
        try await checkEncoding(connection, logger: logger)
        // One migrator at a time from the first statement: `CREATE ... IF NOT EXISTS` is not
        // safe against another session making the same thing at once (two `central init` on a
        // new database, as a deployment tool runs it from several hosts, failed with a
        // duplicate key in PostgreSQL's catalog). The lock is the session's, released when it
        // ends however it ends.
        try await connection.query("SELECT pg_advisory_lock(\(migrationLock))", logger: logger)
        do {
            let applied = try await migrateLocked(connection, logger: logger)
            try await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
            return applied
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
            throw error
        }
    }

    /// The advisory lock `central init` holds while it migrates (a constant of its own: "esaf").
    static let migrationLock: Int64 = 0x6573_6166

    static func migrateLocked(_ connection: PostgresConnection, logger: Logger) async throws -> Applied {
        try await connection.query("CREATE SCHEMA IF NOT EXISTS esafety", logger: logger)
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS esafety.migrations (
                version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())
            """,
            logger: logger
        )
        var applied: [Int] = []
        for (version, sql) in migrations {
            let done = try await connection.withTransaction(logger: logger) { c in
                // One migrator at a time: two `central init` at once wait for each other.
                try await c.query("LOCK TABLE esafety.migrations IN EXCLUSIVE MODE", logger: logger)
                let rows = try await c.query(
                    "SELECT count(*) FROM esafety.migrations WHERE version = \(version)",
                    logger: logger
                )
                var present = false
                for try await n in rows.decode(Int.self) { present = n > 0 }
                if present { return false }
                for text in statements(sql) {
                    try await c.query(PostgresQuery(unsafeSQL: text), logger: logger)
                }
                try await c.query("INSERT INTO esafety.migrations (version) VALUES (\(version))", logger: logger)
                return true
            }
            if done { applied.append(version) }
        }
        return Applied(applied: applied, current: migrations.last?.version ?? 0)
    }

    /// A store's text is its schools' (a pupil's search term, a note, in any language): its
    /// database must be UTF-8, and its PostgreSQL built with ICU (the search's words are split
    /// by ICU's rules, migration 9). A database made by `createdb` on a server whose locale is
    /// C or POSIX is SQL_ASCII, which keeps bytes without knowing their characters.
    static func checkEncoding(_ connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.query(
            """
            SELECT current_database(), current_setting('server_encoding'),
                EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')
            """,
            logger: logger
        )
        for try await (database, encoding, icu) in rows.decode((String, String, Bool).self) {
            guard encoding == "UTF8" else {
                throw CentralDatabase.Failure(
                    "the database \(database) is encoded \(encoding), not UTF8: a central store keeps its schools' "
                        + "text as UTF-8; make it with `createdb --encoding=UTF8 --template=template0 \(database)` "
                        + "(a store that holds rows already: pg_dump it, make it so, restore into it)"
                )
            }
            guard icu else {
                throw CentralDatabase.Failure(
                    "the database \(database) has no ICU collation (und-x-icu): a central store needs a PostgreSQL "
                        + "built with ICU, as Debian's and the PostgreSQL project's packages are"
                )
            }
        }
    }
}
