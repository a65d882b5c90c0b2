#!/usr/bin/env bash
# The console's pages at scale, through the real server (release build):
#   Benchmarks/console.sh [FOLDER]                  a school: FOLDER/incidents.jsonl and its index
#                                                   (default /var/tmp/esafety-history, made by Benchmarks/index.sh)
#   Benchmarks/console.sh --central [ROWS] [SITES]  a trust: `esafety web --central` over a PostgreSQL
#                                                   store of ROWS generated incidents (default 10,000,000
#                                                   over 100 sites; Benchmarks/central-store.sh), kept in
#                                                   /var/tmp/esafety-central-console and reused when it
#                                                   holds ROWS already
# Starts `esafety web` on loopback, logs in with curl, then requests each page 100 times (one at
# a time, a new connection each) and prints p50/p95 of the time to the first byte (the server's
# time plus a loopback round trip) and the server's peak RSS: the dashboard, the open list (50
# rows), a category's list, an incident page, a pupil's history page (up to 200 rows), the JSON
# API (50). A trust's pages are timed for a DSL of one school and for the trust's DSL (every
# school), each narrowed by the database.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
if [ -z "${BIN:-}" ]; then   # BIN=DIR: the esafety binary there (an A/B of two builds)
    swift build -c release --static-swift-stdlib --product esafety >/dev/null
    BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)"
fi
WORK=$(mktemp -d)
PORT=18480
URL="http://127.0.0.1:$PORT"
WEB=
stop_web() { [ -z "$WEB" ] || kill "$WEB" 2>/dev/null || true; }
trap 'stop_web; rm -rf "$WORK"' EXIT

adduser() {  # NAME ROLE [SITE...]
    local name="$1" role="$2" sites=()
    shift 2
    for s in "$@"; do sites+=(--site "$s"); done
    echo "a benchmark password" | "$BIN/esafety" web user add "$name" --role "$role" "${sites[@]}" \
        --accounts "$WORK/accounts" --owner root >/dev/null
}
serve() {  # esafety web's own options
    "$BIN/esafety" web --accounts "$WORK/accounts" --access-log "$WORK/access.log" --listen "127.0.0.1:$PORT" \
        "$@" 2>"$WORK/web.err" &
    WEB=$!
    for _ in $(seq 100); do curl -s -o /dev/null "$URL/login" && break; sleep 0.1; done
}
login() {  # NAME: the cookie jar $WORK/NAME
    local j="$WORK/$1" csrf
    csrf=$(curl -s -c "$j" -b "$j" "$URL/login" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//;s/"$//')
    curl -s -o /dev/null -c "$j" -b "$j" --data-urlencode "csrf=$csrf" --data-urlencode "username=$1" \
        --data-urlencode "password=a benchmark password" "$URL/login"
}
measure() {  # NAME JAR PATH
    local name="$1" jar="$2" path="$3" status
    status=$(curl -s -o /dev/null -b "$jar" -w '%{http_code}' "$URL$path")   # warm, and checked
    [ "$status" = 200 ] || { echo "$name: $path answered $status" >&2; exit 1; }
    for _ in $(seq 100); do curl -s -o /dev/null -b "$jar" -w '%{time_starttransfer}\n' "$URL$path"; done |
        sort -n | awk -v n="$name" '{a[NR]=$1} END {printf "%-34s p50 %6.1f ms  p95 %6.1f ms\n", n, a[int(NR*0.5)]*1000, a[int(NR*0.95)]*1000}'
}
pages() {  # LABEL JAR ID CATEGORY [?site=S]
    local label="$1" jar="$2" id="$3" category="$4" site="${5:-}"
    measure "$label dashboard" "$jar" "/"
    measure "$label list: open, 50" "$jar" "/incidents?state=open"
    measure "$label list: a category, 50" "$jar" "/incidents?state=all&category=$category"
    measure "$label incident page" "$jar" "/incidents/$id$site"
    measure "$label pupil's history, <=200" "$jar" "/incidents/$id/person$site"
    measure "$label API: open, 50" "$jar" "/api/incidents?state=open"
}

if [ "${1:-}" = "--central" ]; then
    ROWS="${2:-10000000}"
    SITES="${3:-100}"
    . Benchmarks/central-store.sh
    if central_reuse /var/tmp/esafety-central-console 25434 && [ "$(SQL -c 'SELECT count(*) FROM esafety.incidents')" = "$ROWS" ]; then
        echo "reusing $ROWS incidents in $CENTRAL_DIR"
    else
        stop_pg() { kill "$PG" 2>/dev/null || true; wait "$PG" 2>/dev/null || true; }
        [ -z "${PG:-}" ] || stop_pg
        central_cluster /var/tmp/esafety-central-console 25434 -c max_wal_size=8GB
        START=$(date +%s)
        central_generate "$ROWS" "$SITES"
        echo "generated $ROWS incidents over $SITES sites in $(( $(date +%s) - START )) s"
    fi
    trap 'stop_web; kill $PG 2>/dev/null || true; rm -rf "$WORK"' EXIT
    central_role web_bench console
    adduser school_dsl dsl site1
    adduser trust_dsl dsl '*'
    serve --log "$WORK/none.jsonl" --central "postgresql://web_bench@:25434/esafety?host=$CENTRAL_DIR" \
        --password-file "$CENTRAL_DIR/web_bench.pw"
    login school_dsl
    login trust_dsl
    ID=$(SQL -c "SELECT id FROM esafety.incidents WHERE site = 'site1' AND state = 'new' ORDER BY time DESC OFFSET 100 LIMIT 1")
    echo "$(SQL -c 'SELECT count(*) FROM esafety.incidents') incidents over $SITES sites; PostgreSQL $(basename "$(dirname "$PGBIN")")"
    pages "school (site1)" "$WORK/school_dsl" "$ID" self-harm "?site=site1"
    pages "trust (all)" "$WORK/trust_dsl" "$ID" self-harm "?site=site1"
else
    DIR="${1:-/var/tmp/esafety-history}"
    LOG="$DIR/incidents.jsonl"
    [ -f "$LOG.index.sqlite" ] || { echo "no history in $DIR: run Benchmarks/index.sh first" >&2; exit 2; }
    adduser bench dsl
    serve --log "$LOG"
    login bench
    ID=$("$BIN/esafety" incidents list --log "$LOG" --open --limit 1 --json 2>/dev/null | sed 's/.*"id":"\([^"]*\)".*/\1/')
    CATEGORY=$("$BIN/esafety" incidents list --log "$LOG" --limit 1 --json 2>/dev/null | sed 's/.*"category":"\([^"]*\)".*/\1/')
    echo "$(grep -c '"event":"incident"' "$LOG" 2>/dev/null || true) incidents in $LOG"
    pages "" "$WORK/bench" "$ID" "$CATEGORY"
fi
echo "server peak RSS: $(grep VmHWM /proc/$WEB/status | awk '{print $2, $3}')"
echo "views recorded: $(wc -l < "$WORK/access.log")"
