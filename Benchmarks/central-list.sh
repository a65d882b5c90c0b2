#!/usr/bin/env bash
# The central store's list at scale (release build, a real PostgreSQL):
#   Benchmarks/central-list.sh [ROWS] [SITES]     (default 10,000,000 incidents over 100 sites)
# Makes a PostgreSQL cluster in /var/tmp (initdb; the server's defaults), runs
# `esafety central init`, then generates ROWS incidents straight into esafety.incidents with
# SQL (generate_series: one a second per site from 2024-01-01, 2% open, every record a real
# incident line's keys), ANALYZEs, and times `esafety incidents list --open --limit 50
# --central` 20 times as the trust's role and as one school's role (row-level security),
# printing p50 and p95 of the whole command; then `incidents show ID` (the whole id, and its
# first 20 characters) as the school's role, with the id's index (migration 4) and without it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
ROWS="${1:-10000000}"
SITES="${2:-100}"
swift build -c release --product esafety >/dev/null
BIN="$(swift build -c release --show-bin-path)"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
DIR=/var/tmp/esafety-central-list
rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres "$DIR"
runuser -u postgres -- "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust >/dev/null
printf 'local all postgres trust\nlocal all all scram-sha-256\n' > "$DIR/data/pg_hba.conf"
chown -R postgres "$DIR"
setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" -D "$DIR/data" -k "$DIR" -p 25433 \
    -c listen_addresses= -c max_wal_size=8GB >"$DIR/postgres.log" 2>&1 &
PG=$!
trap 'kill $PG 2>/dev/null || true' EXIT
for _ in $(seq 100); do psql -h "$DIR" -p 25433 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
SQL() { psql -h "$DIR" -p 25433 -U postgres -d esafety -qAt "$@"; }
psql -h "$DIR" -p 25433 -U postgres -d postgres -qc 'CREATE DATABASE esafety'
ADMIN="postgresql://postgres@:25433/esafety?host=$DIR"
"$BIN/esafety" central init --postgres "$ADMIN" >/dev/null
START=$(date +%s)
SQL -c "
INSERT INTO esafety.incidents (site, id, time, severity, category, grp, person, host, state, due, record)
SELECT site, id, t, sev, cat, grp, person, host, state, due,
    jsonb_build_object('event', 'incident', 'id', id, 'time', t, 'severity', sev, 'category', cat, 'group', grp,
        'client', '10.1.' || (g % 250) || '.7', 'user', person, 'device', null, 'host', host,
        'url', 'https://' || host || '/', 'search_term', null, 'action', 'allowed', 'blocked_by', null,
        'source', jsonb_build_object('format', 'squid', 'peer', 'ingest:squid'),
        'rule', jsonb_build_object('kind', 'domain', 'file', 'Blocklists/' || cat || '/domains', 'line', 3,
            'rule', host, 'generation', 1, 'locked', false),
        'repeated', false, 'window', null, 'route', jsonb_build_array('DSL'), 'hits', 1,
        'first_seen', t, 'last_seen', t, 'due', due)
FROM (
    SELECT g, 'site' || (g % $SITES + 1) AS site, 'inc-' || lpad(to_hex(g), 12, '0') || '-000000-001092' AS id,
        to_char(timestamp '2024-01-01' + (g / $SITES) * interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS t,
        to_char(timestamp '2024-01-02' + (g / $SITES) * interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS due,
        (ARRAY['critical', 'high', 'medium', 'low', 'info'])[g % 5 + 1] AS sev,
        (ARRAY['gambling', 'pornography', 'violence', 'self-harm', 'games'])[g % 5 + 1] AS cat,
        'year' || (7 + g % 6) AS grp, 'pupil' || (g % 50000) AS person, 'www.site' || (g % 20000) || '.example' AS host,
        CASE g % 50 WHEN 0 THEN 'new' WHEN 1 THEN 'acknowledged' ELSE 'resolved' END AS state
    FROM generate_series(1, $ROWS) AS g
) AS s"
# Each incident's own line in esafety.lines (what `show` folds), and a `hits` line for every third
# (what `list` reads the latest count from); chain values are stand-ins, unique per line.
SQL -c "
INSERT INTO esafety.lines (site, seq, chain, event, id, time, line, intact)
SELECT site, row_number() OVER (PARTITION BY site ORDER BY time), 'gen-' || id, 'incident', id, time, record, true
FROM esafety.incidents"
SQL -c "
INSERT INTO esafety.lines (site, seq, chain, event, id, time, line, intact)
SELECT site, 1000000000 + row_number() OVER (PARTITION BY site ORDER BY time), 'gen-hits-' || id, 'hits', id, time,
    jsonb_build_object('event', 'hits', 'id', id, 'time', time, 'hits', 3, 'first_seen', time, 'last_seen', time,
        'sample_urls', jsonb_build_array()), true
FROM esafety.incidents WHERE hashtext(id) % 3 = 0"
SQL -c "ANALYZE esafety.incidents; ANALYZE esafety.lines"
echo "generated $(SQL -c 'SELECT count(*) FROM esafety.incidents') incidents and $(SQL -c 'SELECT count(*) FROM esafety.lines') lines over $SITES sites in $(( $(date +%s) - START )) s; $(SQL -c "SELECT pg_size_pretty(pg_database_size('esafety'))")"
for role in trust_dsl school_site1; do
    psql -h "$DIR" -p 25433 -U postgres -d esafety -qc "CREATE ROLE $role LOGIN PASSWORD 'pw-$role'"
    echo "pw-$role" > "$DIR/$role.pw"; chmod 600 "$DIR/$role.pw"
done
"$BIN/esafety" central grant --postgres "$ADMIN" --role trust_dsl --as trust >/dev/null
"$BIN/esafety" central grant --postgres "$ADMIN" --role school_site1 --as school --site site1 >/dev/null
for role in trust_dsl school_site1; do
    for _ in $(seq 20); do
        /usr/bin/time -f "%e %M" "$BIN/esafety" incidents list --open --limit 50 \
            --central "postgresql://$role@:25433/esafety?host=$DIR" --password-file "$DIR/$role.pw" \
            >/dev/null 2>>"$DIR/times-$role"
    done
    grep -v incident "$DIR/times-$role" | sort -n | awk -v r="$role" '{ t[NR] = $1; m = ($2 > m ? $2 : m) } END {
        printf "%s: list --open --limit 50 --central: p50 %.0f ms, p95 %.0f ms, peak RSS %d MB (%d runs)\n",
            r, t[int(NR * 0.5 + 0.5)] * 1000, t[int(NR * 0.95 + 0.5)] * 1000, m / 1024, NR }'
done
ID=$(SQL -c "SELECT id FROM esafety.incidents WHERE site = 'site1' ORDER BY time DESC OFFSET 1000 LIMIT 1")
timeshow() {
    : > "$DIR/times-show"
    for _ in $(seq 10); do
        /usr/bin/time -f "%e %M" "$BIN/esafety" incidents show "$1" \
            --central "postgresql://school_site1@:25433/esafety?host=$DIR" --password-file "$DIR/school_site1.pw" \
            >/dev/null 2>>"$DIR/times-show"
    done
    grep -E '^[0-9.]+ [0-9]+$' "$DIR/times-show" | sort -n | awk -v w="$2" '{ t[NR] = $1 } END {
        printf "show %s: p50 %.0f ms, p95 %.0f ms (%d runs)\n", w, t[int(NR * 0.5 + 0.5)] * 1000, t[int(NR * 0.95 + 0.5)] * 1000, NR }'
}
timeshow "$ID" "ID (whole), with the id index"
timeshow "${ID:0:20}" "ID (first 20 characters), with the id index"
SQL -c "DROP INDEX esafety.incidents_id"
timeshow "$ID" "ID (whole), without it"
timeshow "${ID:0:20}" "ID (first 20 characters), without it"
