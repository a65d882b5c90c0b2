#!/usr/bin/env bash
# The central store's list at scale (release build, a real PostgreSQL):
#   Benchmarks/central-list.sh [ROWS] [SITES]     (default 10,000,000 incidents over 100 sites)
# Makes a PostgreSQL cluster in /var/tmp (Benchmarks/central-store.sh: the server's defaults),
# generates ROWS incidents and their lines there (central_generate), and times `esafety incidents list --open --limit 50
# --central` 20 times as the trust's role and as one school's role (row-level security),
# printing p50 and p95 of the whole command; then `incidents show ID` (the whole id, and its
# first 20 characters) as the school's role, with the id's index (migration 4) and without it;
# and `incidents list --search WORDS --limit 50` (migration 7's words) as both roles, for a word
# no incident has, a website's name (about 50 incidents a site), and a word every incident has.
# BIN=DIR: the binaries there instead of a release build (Benchmarks/central-store.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
ROWS="${1:-10000000}"
SITES="${2:-100}"
. Benchmarks/central-store.sh
# REUSE=1: the store the last run left (its generation took 23 minutes at ten million), its id's
# index made again when that run dropped it; ROWS and SITES must be the last run's.
if [ -n "${REUSE:-}" ] && central_reuse /var/tmp/esafety-central-list 25433; then
    DIR="$CENTRAL_DIR"
    SQL -c "CREATE INDEX IF NOT EXISTS incidents_id ON esafety.incidents (id text_pattern_ops)"
    echo "reused $(SQL -c 'SELECT count(*) FROM esafety.incidents') incidents and" \
        "$(SQL -c 'SELECT count(*) FROM esafety.lines') lines;" \
        "$(SQL -c "SELECT pg_size_pretty(pg_database_size('esafety'))")"
else
    central_cluster /var/tmp/esafety-central-list 25433 -c max_wal_size=8GB
    DIR="$CENTRAL_DIR"
    START=$(date +%s)
    central_generate "$ROWS" "$SITES"
    echo "generated $(SQL -c 'SELECT count(*) FROM esafety.incidents') incidents and" \
        "$(SQL -c 'SELECT count(*) FROM esafety.lines') lines over $SITES sites in $(( $(date +%s) - START )) s;" \
        "$(SQL -c "SELECT pg_size_pretty(pg_database_size('esafety'))")"
fi
central_role trust_dsl trust
central_role school_site1 school site1
for role in trust_dsl school_site1; do
    : > "$DIR/times-$role"
    for _ in $(seq 20); do
        /usr/bin/time -f "%e %M" "$BIN/esafety" incidents list --open --limit 50 \
            --central "postgresql://$role@:25433/esafety?host=$DIR" --password-file "$DIR/$role.pw" \
            >/dev/null 2>>"$DIR/times-$role"
    done
    grep -v incident "$DIR/times-$role" | sort -n | awk -v r="$role" '{ t[NR] = $1; m = ($2 > m ? $2 : m) } END {
        printf "%s: list --open --limit 50 --central: p50 %.0f ms, p95 %.0f ms, peak RSS %d MB (%d runs)\n",
            r, t[int(NR * 0.5 + 0.5)] * 1000, t[int(NR * 0.95 + 0.5)] * 1000, m / 1024, NR }'
done
# An incident 1,000 from site1's newest (half-way down a smaller store).
ID=$(SQL -c "SELECT id FROM esafety.incidents WHERE site = 'site1' ORDER BY time DESC
    OFFSET $(( ROWS / SITES / 2 < 1000 ? ROWS / SITES / 2 : 1000 )) LIMIT 1")
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
timesearch() {
    for role in trust_dsl school_site1; do
        : > "$DIR/times-search"
        for _ in $(seq 10); do
            /usr/bin/time -f "%e %M" "$BIN/esafety" incidents list --search "$1" --limit 50 \
                --central "postgresql://$role@:25433/esafety?host=$DIR" --password-file "$DIR/$role.pw" \
                >"$DIR/search.out" 2>>"$DIR/times-search"
        done
        grep -E '^[0-9.]+ [0-9]+$' "$DIR/times-search" | sort -n | awk -v w="$1" -v r="$role" \
            -v n="$(wc -l < "$DIR/search.out") incidents" '{ t[NR] = $1 } END {
            printf "%s: list --search \"%s\" --limit 50 (%s): p50 %.0f ms, p95 %.0f ms (%d runs)\n", r, w, n,
                t[int(NR * 0.5 + 0.5)] * 1000, t[int(NR * 0.95 + 0.5)] * 1000, NR }'
    done
}
timesearch "weather"
timesearch "site1234.example"
timesearch "example"
timeshow "$ID" "ID (whole), with the id index"
timeshow "${ID:0:20}" "ID (first 20 characters), with the id index"
SQL -c "DROP INDEX esafety.incidents_id"
timeshow "$ID" "ID (whole), without it"
timeshow "${ID:0:20}" "ID (first 20 characters), without it"
