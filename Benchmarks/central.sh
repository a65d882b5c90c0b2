#!/usr/bin/env bash
# A trust's central store under many sites at once (release build, a real PostgreSQL):
#   Benchmarks/central.sh [SITES] [INCIDENTS]     (default 100 sites, 2,000 incidents each)
# Makes a PostgreSQL cluster in /var/tmp (initdb; the server's defaults, fsync on), runs
# `esafety central init`, one forwarder role per site, copies one generated history
# (esafety-bench --history INCIDENTS) to each site's log, then starts every site's
# `esafety forward --once` at the same moment and times until all have shipped: lines/s and
# incidents/s stored centrally, the CPU and WAL it took, the store's size on disk, then
# `central list --open --limit 50` as the trust's role.
# WORDS=off drops the search's word triggers (migration 7) first: what they cost the bulk.
# AFTER_INIT=FILE runs FILE's SQL (as the superuser) after `central init`.
# BIN=DIR: the binaries there instead of a release build (Benchmarks/central-store.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
SITES="${1:-100}"
INCIDENTS="${2:-2000}"
. Benchmarks/central-store.sh
# PGOPTS: more server settings (e.g. PGOPTS="-c wal_compression=lz4"), for an A/B of them.
central_cluster /var/tmp/esafety-central-bench 25432 -c max_connections=$((SITES + 20)) ${PGOPTS:-}
DIR="$CENTRAL_DIR"
"$BIN/esafety-bench" --history "$INCIDENTS" "$DIR/history.jsonl" >/dev/null
LINES=$(wc -l < "$DIR/history.jsonl")
for i in $(seq "$SITES"); do
    mkdir -p "$DIR/site$i"
    cp "$DIR/history.jsonl" "$DIR/site$i/incidents.jsonl"
    echo "pw-site$i" > "$DIR/site$i/pw"; chmod 600 "$DIR/site$i/pw"
    echo "CREATE ROLE fwd_site$i LOGIN PASSWORD 'pw-site$i';"
done | psql -h "$DIR" -p 25432 -U postgres -d esafety -q
for i in $(seq "$SITES"); do
    "$BIN/esafety" central grant --postgres "$ADMIN" --role "fwd_site$i" --as forwarder --site "site$i" >/dev/null
done
psql -h "$DIR" -p 25432 -U postgres -d esafety -qc "CREATE ROLE trust_dsl LOGIN PASSWORD 'pw-trust'"
"$BIN/esafety" central grant --postgres "$ADMIN" --role trust_dsl --as trust >/dev/null
echo "pw-trust" > "$DIR/trust.pw"; chmod 600 "$DIR/trust.pw"
# AFTER_INIT=FILE: SQL run as the superuser after `central init` (an A/B of a schema change).
if [ -n "${AFTER_INIT:-}" ]; then SQL < "$AFTER_INIT"; fi
if [ "${WORDS:-on}" = off ]; then
    for t in incidents lines actions; do SQL -c "DROP TRIGGER words ON esafety.$t"; done
fi
echo "$SITES sites, $LINES lines ($INCIDENTS incidents) each; PostgreSQL $(basename "$(dirname "$PGBIN")") on this machine"
# CPU seconds of PostgreSQL (the postmaster and the backends it has reaped) and of the forwarders.
pgcpu() { awk '{ print ($14 + $15 + $16 + $17) / 100 }' "/proc/$PG/stat"; }
PGCPU0=$(pgcpu)
LSN0=$(SQL -c 'SELECT pg_current_wal_lsn()')
CHECKPOINTS0=$(SQL -c 'SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter')
# `times` in this shell (not in a subshell, which would count only its own): its second line is
# the CPU of the children waited for.
childcpu() { awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] } print t }' "$1"; }
times > "$DIR/times0"; FWCPU0=$(childcpu "$DIR/times0")
START=$(date +%s.%N)
FORWARDERS=()
for i in $(seq "$SITES"); do
    "$BIN/esafety" forward --once ${BATCH:+--batch "$BATCH"} --log "$DIR/site$i/incidents.jsonl" --site "site$i" \
        --postgres "postgresql://fwd_site$i@:25432/esafety?host=$DIR" --password-file "$DIR/site$i/pw" \
        2>"$DIR/site$i/forward.err" &
    FORWARDERS+=($!)
done
# A forwarder that stops on an error (--once does not retry) is counted and its error shown.
FAILED=0
for p in "${FORWARDERS[@]}"; do wait "$p" || FAILED=$((FAILED + 1)); done
END=$(date +%s.%N)
if [ "$FAILED" -gt 0 ]; then
    echo "$FAILED forwarder(s) stopped on an error, the first:"
    grep -h -m1 -i "error\|fatal" "$DIR"/site*/forward.err | head -3
fi
# A backend's CPU is counted once the postmaster has reaped it: wait for the forwarders' to end.
for _ in $(seq 100); do
    [ "$(SQL -c "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 'fwd\_%'")" = 0 ] && break
    sleep 0.1
done
sleep 0.2
PGCPU1=$(pgcpu)
# What PostgreSQL wrote to its WAL meanwhile, and how many checkpoints it made (each makes the
# next change to every page a full page image).
SQL -c "SELECT 'WAL: ' || round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$LSN0') / 1048576) || ' MB, '
    || (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) - $CHECKPOINTS0 || ' checkpoint(s)'"
times > "$DIR/times1"; FWCPU1=$(childcpu "$DIR/times1")
awk -v a="$PGCPU0" -v b="$PGCPU1" -v c="$FWCPU0" -v d="$FWCPU1" 'BEGIN {
    printf "CPU: PostgreSQL %.1f s, the forwarders %.1f s\n", b - a, d - c }'
STORED=$(psql -h "$DIR" -p 25432 -U postgres -d esafety -Atc 'SELECT count(*) FROM esafety.lines')
STORED_INCIDENTS=$(psql -h "$DIR" -p 25432 -U postgres -d esafety -Atc 'SELECT count(*) FROM esafety.incidents')
awk -v s="$START" -v e="$END" -v l="$STORED" -v n="$STORED_INCIDENTS" -v want=$((SITES * LINES)) 'BEGIN {
    t = e - s; printf "shipped %d of %d lines (%d incidents) in %.1f s: %.0f lines/s, %.0f incidents/s\n", l, want, n, t, l / t, n / t }'
# What the store holds on disk (its tables, indexes and TOAST; WAL apart), for sizing a server.
SQL -c "SELECT 'store: ' || round(pg_database_size('esafety') / 1048576.0) || ' MB, '
    || round(pg_database_size('esafety') / 1024.0 / greatest(1, (SELECT count(*) FROM esafety.incidents)), 1)
    || ' KB an incident'"
for _ in 1 2 3; do
    /usr/bin/time -f "central list --open --limit 50 (trust): %e s" "$BIN/esafety" central list --open --limit 50 \
        --postgres "postgresql://trust_dsl@:25432/esafety?host=$DIR" --password-file "$DIR/trust.pw" >/dev/null 2>"$DIR/list.err" || true
    tail -1 "$DIR/list.err"
done
