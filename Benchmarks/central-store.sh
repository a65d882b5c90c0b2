# Sourced by the central benchmarks (bash): a PostgreSQL cluster of their own, and generated
# incidents in it. BIN=DIR: the esafety and esafety-bench binaries there (an A/B of two
# builds); otherwise both are built for release as scripts/install builds them.
#
#   central_cluster DIR PORT [POSTGRES-OPTION...]
#       A new cluster in DIR (initdb; the server's defaults; the superuser over the socket by
#       trust, every other role by password), started as `postgres` on the Unix socket in DIR
#       only (killed when the script exits), with the database esafety and its schema
#       (`esafety central init`). Sets PG (the postmaster's pid), SQL (psql as the superuser on
#       esafety: SQL -c "..." or SQL < file) and ADMIN (the superuser's URL).
#   central_reuse DIR PORT
#       The same cluster started again as the last run left it (0 when it is there).
#   central_role ROLE PART [SITE...]
#       A login role with its password in DIR/ROLE.pw (0600), granted its part.
#   central_generate ROWS SITES
#       ROWS incidents straight into esafety.incidents (generate_series: SITES sites, one a
#       second per site from 2024-01-01; severity, category, group, pupil (of 50,000), website
#       and state (2% open) drawn independently by hash; every record a real incident line's keys),
#       each incident's line and a `hits` line for every third in esafety.lines, VACUUMed and ANALYZEd.
if [ -z "${BIN:-}" ]; then
    swift build -c release --static-swift-stdlib --product esafety >/dev/null
    swift build -c release --static-swift-stdlib --product esafety-bench >/dev/null
    BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)"
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)

central_start() {
    setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" -D "$CENTRAL_DIR/data" \
        -k "$CENTRAL_DIR" -p "$CENTRAL_PORT" -c listen_addresses= "$@" >>"$CENTRAL_DIR/postgres.log" 2>&1 &
    PG=$!
    # Stopped at exit, and waited for: a run right after would find the port still taken.
    trap 'kill $PG 2>/dev/null && wait $PG 2>/dev/null || true' EXIT
    for _ in $(seq 150); do
        psql -h "$CENTRAL_DIR" -p "$CENTRAL_PORT" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 && break
        sleep 0.2
    done
    ADMIN="postgresql://postgres@:$CENTRAL_PORT/esafety?host=$CENTRAL_DIR"
}

SQL() { psql -h "$CENTRAL_DIR" -p "$CENTRAL_PORT" -U postgres -d esafety -qAt "$@"; }

central_cluster() {
    CENTRAL_DIR="$1" CENTRAL_PORT="$2"
    shift 2
    rm -rf "$CENTRAL_DIR"; mkdir -p "$CENTRAL_DIR"; chown postgres "$CENTRAL_DIR"
    # INITDB_OPTS: the cluster's locale, for one (e.g. INITDB_OPTS="--locale=en_GB.UTF-8"); the
    # environment's otherwise.
    runuser -u postgres -- "$PGBIN/initdb" -D "$CENTRAL_DIR/data" -U postgres --auth-local=trust \
        ${INITDB_OPTS:-} >/dev/null
    printf 'local all postgres trust\nlocal all all scram-sha-256\n' > "$CENTRAL_DIR/data/pg_hba.conf"
    chown -R postgres "$CENTRAL_DIR"
    central_start "$@"
    runuser -u postgres -- "$PGBIN/createdb" -h "$CENTRAL_DIR" -p "$CENTRAL_PORT" --encoding=UTF8 --template=template0 esafety
    "$BIN/esafety" central init --postgres "$ADMIN" >/dev/null
}

central_reuse() {
    CENTRAL_DIR="$1" CENTRAL_PORT="$2"
    [ -f "$CENTRAL_DIR/data/PG_VERSION" ] || return 1
    central_start
    "$BIN/esafety" central init --postgres "$ADMIN" >/dev/null
}

central_role() {
    local role="$1" part="$2"
    shift 2
    SQL -c "DO \$\$ BEGIN CREATE ROLE $role LOGIN PASSWORD 'pw-$role'; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
    echo "pw-$role" > "$CENTRAL_DIR/$role.pw"; chmod 600 "$CENTRAL_DIR/$role.pw"
    local sites=()
    for s in "$@"; do sites+=(--site "$s"); done
    "$BIN/esafety" central grant --postgres "$ADMIN" --role "$role" --as "$part" "${sites[@]}" >/dev/null
}

central_generate() {
    local rows="$1" sites="$2"
    SQL -c "
INSERT INTO esafety.incidents (site, id, time, severity, category, grp, person, host, state, due, record)
SELECT site, id, t, sev, cat, grp, person, host, state, due,
    jsonb_build_object('event', 'incident', 'id', id, 'time', t, 'severity', sev, 'category', cat, 'group', grp,
        'client', '10.1.' || (abs(hashint4(g + 3)) % 250) || '.7', 'user', person, 'device', null, 'host', host,
        'url', 'https://' || host || '/', 'search_term', null, 'action', 'allowed', 'blocked_by', null,
        'source', jsonb_build_object('format', 'squid', 'peer', 'ingest:squid'),
        'rule', jsonb_build_object('kind', 'domain', 'file', 'Blocklists/' || cat || '/domains', 'line', 3,
            'rule', host, 'generation', 1, 'locked', false),
        'repeated', false, 'window', null, 'route', jsonb_build_array('DSL'), 'hits', 1,
        'first_seen', t, 'last_seen', t, 'due', due)
FROM (
    SELECT g, 'site' || (g % $sites + 1) AS site, 'inc-' || lpad(to_hex(g), 12, '0') || '-000000-001092' AS id,
        to_char(timestamp '2024-01-01' + (g / $sites) * interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS t,
        to_char(timestamp '2024-01-02' + (g / $sites) * interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS due,
        (ARRAY['critical', 'high', 'medium', 'low', 'info'])[abs(hashint4(g)) % 5 + 1] AS sev,
        (ARRAY['gambling', 'pornography', 'violence', 'self-harm', 'games'])[abs(hashint4(g + 1)) % 5 + 1] AS cat,
        'year' || (7 + abs(hashint4(g + 2)) % 6) AS grp, 'pupil' || (abs(hashint4(g + 3)) % 50000) AS person,
        'www.site' || (abs(hashint4(g + 4)) % 20000) || '.example' AS host,
        CASE abs(hashint4(g + 5)) % 50 WHEN 0 THEN 'new' WHEN 1 THEN 'acknowledged' ELSE 'resolved' END AS state
    FROM generate_series(1, $rows) AS g
) AS s"
    # Each incident's own line in esafety.lines (what `show` folds), and a `hits` line for every
    # third (what `list` reads the latest count from); chain values are stand-ins, unique per line.
    SQL -c "
INSERT INTO esafety.lines (site, seq, chain, event, id, time, line, intact)
SELECT site, row_number() OVER (PARTITION BY site ORDER BY time), 'gen-' || id, 'incident', id, time, record::text, true
FROM esafety.incidents"
    SQL -c "
INSERT INTO esafety.lines (site, seq, chain, event, id, time, line, intact)
SELECT site, 1000000000 + row_number() OVER (PARTITION BY site ORDER BY time), 'gen-hits-' || id, 'hits', id, time,
    jsonb_build_object('event', 'hits', 'id', id, 'time', time, 'hits', 3, 'first_seen', time, 'last_seen', time,
        'sample_urls', jsonb_build_array())::text, true
FROM esafety.incidents WHERE hashtext(id) % 3 = 0"
    # As autovacuum leaves a table after inserts: its visibility map set, for index-only scans
    # (every table of the schema, whichever build made it: the words' are migration 7's or 14's).
    SQL -c "VACUUM (ANALYZE)"
}
