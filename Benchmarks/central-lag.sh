#!/usr/bin/env bash
# The forwarder's lag at a steady rate (release build, a real PostgreSQL):
#   Benchmarks/central-lag.sh [SITES] [INCIDENTS_PER_SECOND] [SECONDS]   (default 10 sites, 1000/s in all, 60 s)
# Each site's log grows at its share of the rate (lines of a generated history appended in
# chain order, as esafetyd writes them, the time of each write noted); each site's
# `esafety forward` follows its log; the lag of a line is the time PostgreSQL stored it
# (esafety.lines.received) minus the time it was written. Prints p50/p99/max.
# BIN=DIR: the binaries there instead of a release build (Benchmarks/central-store.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
SITES="${1:-10}"
RATE="${2:-1000}"
SECONDS_="${3:-60}"
. Benchmarks/central-store.sh
central_cluster /var/tmp/esafety-central-lag 25433
DIR="$CENTRAL_DIR"
FWD=()
cleanup() { kill "${FWD[@]}" 2>/dev/null || true; kill $PG 2>/dev/null || true; }
trap cleanup EXIT
P="psql -h $DIR -p 25433 -U postgres -d esafety -Atq"
# Enough history for the run: incidents per site = its rate x seconds.
PER_SITE=$(( RATE * SECONDS_ / SITES + 100 ))
"$BIN/esafety-bench" --history "$PER_SITE" "$DIR/history.jsonl" >/dev/null
for i in $(seq "$SITES"); do
    mkdir -p "$DIR/site$i"; : > "$DIR/site$i/incidents.jsonl"
    echo "pw-site$i" > "$DIR/site$i/pw"; chmod 600 "$DIR/site$i/pw"
    echo "CREATE ROLE fwd_site$i LOGIN PASSWORD 'pw-site$i';" | $P
    "$BIN/esafety" central grant --postgres "$ADMIN" --role "fwd_site$i" --as forwarder --site "site$i" >/dev/null
    "$BIN/esafety" forward --log "$DIR/site$i/incidents.jsonl" --site "site$i" \
        --postgres "postgresql://fwd_site$i@:25433/esafety?host=$DIR" --password-file "$DIR/site$i/pw" 2>/dev/null &
    FWD+=($!)
done
sleep 2
# The writers: one thread per site, appending whole lines at the site's rate, noting each time.
python3 - "$DIR" "$SITES" "$RATE" "$SECONDS_" <<'PY'
import sys, time, threading, json
d, sites, rate, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
lines = open(f"{d}/history.jsonl", "rb").read().split(b"\n")[:-1]
incidents_per_line = sum(1 for l in lines if b'"event":"incident"' in l) / len(lines)
per_site_lines = rate / sites / incidents_per_line          # lines/s per site for the incident rate
def write(i):
    out = open(f"{d}/site{i}/incidents.jsonl", "ab", buffering=0)
    notes = open(f"{d}/site{i}/written.tsv", "w")
    start = time.time(); n = 0
    while time.time() - start < secs and n < len(lines):
        due = start + n / per_site_lines
        now = time.time()
        if due > now: time.sleep(due - now)
        l = lines[n]
        out.write(l + b"\n")
        chain = l[l.rfind(b'"chain":"') + 9:-2].decode()
        notes.write(f"site{i}\t{chain}\t{time.time():.6f}\n")
        n += 1
    notes.close()
ts = [threading.Thread(target=write, args=(i,)) for i in range(1, sites + 1)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
sleep 5
WANT=$(cat "$DIR"/site*/written.tsv | wc -l)
for _ in $(seq 60); do
    GOT=$($P -c "SELECT count(*) FROM esafety.lines")
    [ "$GOT" -ge "$WANT" ] && break; sleep 1
done
$P -c "CREATE TABLE written (site text, chain text, t double precision)"
cat "$DIR"/site*/written.tsv | $P -c "COPY written FROM STDIN"
echo "$SITES sites, $RATE incidents/s in all for $SECONDS_ s: $WANT lines written, $GOT stored"
$P -F ' ' -c "SELECT 'lag (stored - written): p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag)::numeric, 3)
    || ' s, p99 ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag)::numeric, 3)
    || ' s, max ' || round(max(lag)::numeric, 3) || ' s'
    FROM (SELECT extract(epoch FROM l.received) - w.t AS lag FROM written w JOIN esafety.lines l USING (site, chain)) x"
