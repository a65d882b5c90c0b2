#!/usr/bin/env bash
# How long a forwarder takes to find its place again when the central store is behind it
# (restored from a backup): Benchmarks/central-rewind.sh [INCIDENTS]  (default 1,000,000)
# One generated history (esafety-bench --history INCIDENTS) as site north's log; a position
# saying the whole log was shipped; a store (its own cluster, central-store.sh) whose head of
# north is the log's last line but one, by its count and chain value. Then `esafety forward
# --once`, timed whole with its peak RSS: it reads the log from its start to that line, checks
# its chain value, and ships the last line again.
# BIN=DIR: the binaries there instead of a release build (Benchmarks/central-store.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
INCIDENTS="${1:-1000000}"
. Benchmarks/central-store.sh
central_cluster /var/tmp/esafety-central-rewind 25434
DIR="$CENTRAL_DIR"
LOG="$DIR/north.jsonl"
"$BIN/esafety-bench" --history "$INCIDENTS" "$LOG" >/dev/null
LINES=$(wc -l < "$LOG")
central_role fwd_north forwarder north
chain_of() { sed -n "${1}p" "$LOG" | grep -o '"chain":"[0-9a-f]*"' | cut -d'"' -f4; }
if [ -n "${AHEAD:-}" ]; then
    # AHEAD=1: the other way round, as after a crash between a batch's commit and the position's
    # save: the store's head the log's last line, the position one line before it (the search
    # for the head's line in the log, which finds it at the end of the newest file).
    SQL -c "INSERT INTO esafety.heads (site, seq, chain) VALUES ('north', $LINES, '$(chain_of "$LINES")')"
    printf '{"inode":%s,"offset":%s,"seq":%s,"chain":"%s"}' "$(stat -c %i "$LOG")" \
        "$(( $(stat -c %s "$LOG") - $(tail -1 "$LOG" | wc -c) ))" "$((LINES - 1))" "$(chain_of $((LINES - 1)))" \
        > "$DIR/forward-north.position"
    HEAD_AT=$LINES
else
    SQL -c "INSERT INTO esafety.heads (site, seq, chain) VALUES ('north', $((LINES - 1)), '$(chain_of $((LINES - 1)))')"
    printf '{"inode":%s,"offset":%s,"seq":%s,"chain":"%s"}' "$(stat -c %i "$LOG")" "$(stat -c %s "$LOG")" \
        "$LINES" "$(chain_of "$LINES")" > "$DIR/forward-north.position"
    HEAD_AT=$((LINES - 1))
fi
echo "$INCIDENTS incidents, $LINES lines, $(du -m "$LOG" | cut -f1) MB; the store's head at line $HEAD_AT"
/usr/bin/time -f "forward --once: %e s, peak RSS %M KB" "$BIN/esafety" forward --once --log "$LOG" --site north \
    --postgres "postgresql://fwd_north@:25434/esafety?host=$DIR" --password-file "$DIR/fwd_north.pw" 2>&1 |
    grep -E "central store holds|forward --once|error|critical" | sed 's/^.*forward: the/the/' | cut -c1-200
echo "the store's head now: line $(SQL -c "SELECT seq FROM esafety.heads WHERE site = 'north'")"
