#!/usr/bin/env bash
# The incident index on a generated history, through the real tool (release build):
#   Benchmarks/index.sh COUNT [FOLDER]     (default 1000000 incidents in /var/tmp/esafety-history)
# Generates COUNT incidents (esafety-bench --history: 2,000 pupils, 12 categories, a hits
# event each, 60% acknowledged, 24% resolved, 2% with a note), rebuilds the index (time,
# peak RSS), then runs each query 20 times and prints its p50/p95 and the tool's peak RSS:
# list --open --limit 50, show (by an 12-character prefix), ack (which first brings the index
# up to date), a pupil's history (list --person), and text searches: a common phrase, a rare
# one, and a word no incident has.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
COUNT="${1:-1000000}"
DIR="${2:-/var/tmp/esafety-history}"
swift build -c release --static-swift-stdlib --product esafety >/dev/null
swift build -c release --static-swift-stdlib --product esafety-bench >/dev/null
BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)"
mkdir -p "$DIR"
LOG="$DIR/incidents.jsonl"
if [ "${REUSE:-0}" != 1 ]; then   # REUSE=1: the history and index already in FOLDER
    rm -f "$LOG" "$LOG".*
    /usr/bin/time -f "generate: %e s" "$BIN/esafety-bench" --history "$COUNT" "$LOG"
    ls -la "$LOG"
    /usr/bin/time -f "rebuild: %e s, peak RSS %M KB" "$BIN/esafety" index rebuild --log "$LOG"
fi
ls -la "$LOG.index.sqlite"
ID=$("$BIN/esafety" incidents list --log "$LOG" --open --limit 1 --json 2>/dev/null | sed 's/.*"id":"\([^"]*\)".*/\1/')
measure() {
    local name="$1"; shift
    local times=() rss=0 out r
    local tmp; tmp=$(mktemp)
    for i in $(seq 20); do
        /usr/bin/time -o "$tmp" -f "%e %M" "$@" >/dev/null 2>&1 || true
        out=$(tail -1 "$tmp")
        times+=("$(echo "$out" | cut -d' ' -f1)")
        r=$(echo "$out" | cut -d' ' -f2)
        if [ "$r" -gt "$rss" ]; then rss=$r; fi
    done
    rm -f "$tmp"
    printf '%s\n' "${times[@]}" | sort -n | awk -v n="$name" -v rss="$rss" '{a[NR]=$1} END {printf "%-28s p50 %4.0f ms  p95 %4.0f ms  peak RSS %d KB\n", n, a[int(NR*0.5)]*1000, a[int(NR*0.95)]*1000, rss}'
}
measure "list --open --limit 50" "$BIN/esafety" incidents list --log "$LOG" --open --limit 50
measure "show (prefix)" "$BIN/esafety" incidents show --log "$LOG" "${ID:0:12}"
measure "note (an action)" "$BIN/esafety" incidents note --log "$LOG" "$ID" "benchmark note"
measure "list --person (history)" "$BIN/esafety" incidents list --log "$LOG" --person pupil42
measure "list --search" "$BIN/esafety" incidents list --log "$LOG" --search "call home" --limit 50
measure "list --search (a rare word)" "$BIN/esafety" incidents list --log "$LOG" --search "suicide 42" --limit 50
measure "list --search (no incident)" "$BIN/esafety" incidents list --log "$LOG" --search "weather" --limit 50
