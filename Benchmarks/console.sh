#!/usr/bin/env bash
# The console's pages on a generated history, through the real server (release build):
#   Benchmarks/console.sh [FOLDER]     (default /var/tmp/esafety-history, made by Benchmarks/index.sh)
# Starts `esafety web` on loopback beside FOLDER/incidents.jsonl and its index, logs in with
# curl, then requests each page 100 times (one at a time, a new connection each) and prints
# p50/p95 of the time to the first byte (the server's time plus a loopback round trip) and
# the server's peak RSS: the dashboard, the open list (50 rows), a category's list, an
# incident page, a pupil's history page (up to 200 rows), the JSON API (50).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
DIR="${1:-/var/tmp/esafety-history}"
LOG="$DIR/incidents.jsonl"
[ -f "$LOG.index.sqlite" ] || { echo "no history in $DIR: run Benchmarks/index.sh first" >&2; exit 2; }
swift build -c release --product esafety >/dev/null
BIN="$(swift build -c release --show-bin-path)"
WORK=$(mktemp -d)
trap 'kill "$WEB" 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "a benchmark password" | "$BIN/esafety" web user add bench --role dsl --accounts "$WORK/accounts" --owner root >/dev/null
PORT=18480
"$BIN/esafety" web --log "$LOG" --accounts "$WORK/accounts" --access-log "$WORK/access.log" \
    --listen "127.0.0.1:$PORT" 2>"$WORK/web.err" &
WEB=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -s -o /dev/null "$URL/login" && break; sleep 0.1; done
J="$WORK/jar"
CSRF=$(curl -s -c "$J" -b "$J" "$URL/login" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//;s/"$//')
curl -s -o /dev/null -c "$J" -b "$J" --data-urlencode "csrf=$CSRF" --data-urlencode username=bench \
    --data-urlencode "password=a benchmark password" "$URL/login"
ID=$("$BIN/esafety" incidents list --log "$LOG" --open --limit 1 --json 2>/dev/null | sed 's/.*"id":"\([^"]*\)".*/\1/')
CATEGORY=$("$BIN/esafety" incidents list --log "$LOG" --limit 1 --json 2>/dev/null | sed 's/.*"category":"\([^"]*\)".*/\1/')
measure() {
    local name="$1" path="$2"
    curl -s -o /dev/null -b "$J" "$URL$path"   # warm
    for _ in $(seq 100); do curl -s -o /dev/null -b "$J" -w '%{time_starttransfer}\n' "$URL$path"; done |
        sort -n | awk -v n="$name" '{a[NR]=$1} END {printf "%-26s p50 %6.1f ms  p95 %6.1f ms\n", n, a[int(NR*0.5)]*1000, a[int(NR*0.95)]*1000}'
}
echo "$(grep -c '"event":"incident"' "$LOG" 2>/dev/null || true) incidents in $LOG"
measure "dashboard" "/"
measure "list: open, 50" "/incidents?state=open"
measure "list: a category, 50" "/incidents?state=all&category=$CATEGORY"
measure "incident page" "/incidents/$ID"
measure "pupil's history, <=200" "/incidents/$ID/person"
measure "API: open, 50" "/api/incidents?state=open"
echo "server peak RSS: $(grep VmHWM /proc/$WEB/status | awk '{print $2, $3}')"
echo "views recorded: $(wc -l < "$WORK/access.log")"
