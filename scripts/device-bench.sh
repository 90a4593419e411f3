#!/usr/bin/env bash
# Multi-core scaling and memory per connection, for a lent many-core machine that has no cargo,
# rustc or node: build here, carry the two release binaries, run this from the repository root.
#
#   cargo build --release --bin ringio -p loadtest      # here
#   scripts/device-bench.sh [OUT_DIR]                    # there (OUT_DIR default: $OUT or /tmp/device-bench)
#
# For each shard count in 1 2 4 8 16 (up to the machine's cores): closed-loop echo (server CPU
# per echo+ack, acks/s) and fan-out (server CPU per delivery), the ringio server with N shards
# and the generator on the remaining cores; then the raw-TCP floor at the largest count, and
# idle memory per connection (18,000 connections over 2 generator processes: every process has
# its own open-file limit). Results: one text report and one JSON file per run in OUT_DIR, and a
# summary table on stdout. Bounded: about 2 minutes on 16 cores.
set -u
cd "$(dirname "$0")/.."
OUTDIR=${1:-${OUT:-/tmp/device-bench}}
mkdir -p "$OUTDIR"
LT=target/release/loadtest
[ -x "$LT" ] && [ -x target/release/ringio ] || {
    echo "device-bench: target/release/{ringio,loadtest} missing (build them before carrying)" >&2
    exit 2
}
cores=$(nproc)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "device-bench: $cores cores, $(uname -r), open-file limit $(ulimit -n), output in $OUTDIR"

# metric NAME FILE: the value column of the report line that starts with NAME
metric() {
    grep -m1 -E "^  $1 " "$2" 2>/dev/null | sed -E "s|^  $1 +||; s| +$||"
}

run() { # name args...
    local name=$1
    shift
    timeout 120 "$LT" "$@" --no-build --json "$OUTDIR/$name.json" >"$OUTDIR/$name.txt" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || echo "device-bench: $name exited $rc (see $OUTDIR/$name.txt)" >&2
}

max=1
for s in 1 2 4 8 16; do
    [ "$s" -le "$cores" ] || continue
    max=$s
    client=$((cores - s))
    [ "$client" -ge 2 ] || client=2 # at 16 shards on 16 cores the generator shares them
    run "echo-$s" echo --shards "$s" --threads "$client" --echo-conns $((200 * s)) -d 6
    run "fanout-$s" fanout --shards "$s" --threads "$client" --fanout-receivers $((2000 * s)) --broadcasts 20
done
client=$((cores - max))
[ "$client" -ge 2 ] || client=2
run "floor-$max" floor echo fanout --shards "$max" --threads "$client" --echo-conns $((200 * max)) \
    --fanout-receivers $((2000 * max)) -d 6 --broadcasts 20
run idle idle --shards "$max" --procs 2 --idle-conns 18000 --rate 4000 --hold 5

printf '\n%-8s %-16s %-22s %-16s %-22s\n' shards "echo acks/s" "server CPU/echo+ack" "fan-out deliv/s" "server CPU/delivery"
for s in 1 2 4 8 16; do
    [ -f "$OUTDIR/echo-$s.txt" ] || continue
    printf '%-8s %-16s %-22s %-16s %-22s\n' "$s" \
        "$(metric 'echo acks/s' "$OUTDIR/echo-$s.txt")" \
        "$(metric 'server CPU per echo\+ack' "$OUTDIR/echo-$s.txt")" \
        "$(metric 'deliveries/s' "$OUTDIR/fanout-$s.txt")" \
        "$(metric 'server CPU per delivery' "$OUTDIR/fanout-$s.txt")"
done
echo
echo "floor ($max shards):"
grep -E '^\s+(echo|fanout)\s+server CPU per op' "$OUTDIR/floor-$max.txt" 2>/dev/null
echo "idle ($max shards, 18,000 connections): server RSS per connection $(metric 'server RSS per connection' "$OUTDIR/idle.txt")," \
    "failures $(metric failures "$OUTDIR/idle.txt")"
