#!/bin/sh
# Where Ferry's consume path spends its time: runs Ferry, raw jetstream and
# the diagnostic replicas of replica.go (raw plus some of Ferry's per-event
# steps) on the consume-only scenario, each measurement in a process of its
# own (the Go runtime's adaptive starting stack size and GC pacing carry over
# between measurements in one process, and the per-event goroutine is
# sensitive to both), interleaved over ROUNDS rounds; then prints medians.
#
#	bench/events/diag.sh                      # sync 1s, 100,000 events, 3 rounds
#	ROUNDS=5 N=200000 MODES=always bench/events/diag.sh
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
N=${N:-100000}
MODES=${MODES:-interval}
OUT=${OUT:-$(mktemp -d /tmp/ferry-bench-events-diag-XXXXXX)}
CONTENDERS=${CONTENDERS:-"ferry raw replica+all
replica+all-goroutine replica+all-validate replica+all-ticker replica+all-timeout replica+all-context replica+all-metadata
replica+all-ticker+afterfunc
replica+all-goroutine-ticker-timeout+sweeper
replica+all-goroutine-ticker-timeout+sweeper-validate
replica+all-goroutine-ticker-timeout+sweeper-validate-context-metadata"}
# Extra runs of a contender under a GODEBUG setting, as contender@tag.
GODEBUGS=${GODEBUGS-"ferry:adaptivestackstart=0"}

go build -o "$OUT/events" ./bench/events
r=0
while [ "$r" -lt "$ROUNDS" ]; do
	for c in $CONTENDERS; do
		"$OUT/events" -contenders "$c" -scenarios consume -modes "$MODES" -n "$N" -n-always "$N" \
			-rounds 1 -round-base "$r" -json >"$OUT/$r-$c.json"
	done
	for g in $GODEBUGS; do
		c=${g%%:*}
		GODEBUG=${g#*:} "$OUT/events" -contenders "$c" -scenarios consume -modes "$MODES" -n "$N" -n-always "$N" \
			-rounds 1 -round-base "$r" -tag "${g#*:}" -json >"$OUT/$r-$c-${g#*:}.json"
	done
	r=$((r + 1))
done
"$OUT/events" -merge "$OUT"/*.json | tee "$OUT/table.md"
echo "raw results: $OUT" >&2
