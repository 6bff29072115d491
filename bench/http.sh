#!/usr/bin/env bash
# bench/http.sh — "HTTP: the seed's service".
#
# Measures examples/items (Ferry) against the reference, a plain net/http
# handler doing the same work (bench/plain), and the seed's FastAPI app
# (bench/fastapi, uvicorn, 1 worker, uvloop + httptools, access log off):
#
#   (a) N requests in flight over already-open keep-alive connections, delay 1s
#   (b) N simultaneous new connections, one request each, delay 1s
#   (c) requests/s with delay 0 (wrk), and requests per server CPU-second
#
# Ferry is measured in variants, each a server of its own to list in
# SERVERS, so that their figures come from the same interleaved runs:
#
#   items            examples/items: the full default stack (request ID,
#                    recovery, metrics, logs at their default, tracing off)
#   items-bare       the bare path: no metrics, no logs
#   items-accesslog  the access log on (FERRY_ACCESS_LOG; off by default),
#                    written to the server's log file
#   items-metrics    metrics on (the default; named for the tables)
#   items-tracing    tracing on, every span sampled and batched to an
#                    exporter that drops it (examples/items -trace-discard):
#                    the cost of the spans themselves
#   items-tracing-otlp  tracing on, to an OTLP endpoint nobody listens on:
#                    the spans, and failed exports (a refused connection
#                    per batch)
#   <any of these>@REV   the same, with examples/items built from commit REV
#                    (git archive), e.g. items@HEAD~1 for before/after
#
# A variant is examples/items with extra environment (variant_env, below,
# or ITEMS_ENV_<name with - as _>, e.g. ITEMS_ENV_items_tracing='…') and
# flags (variant_args).
#
# Every server is built once and started fresh for each measurement, so the
# peak RSS (VmHWM) is per measurement. Runs are interleaved and the order of
# the servers rotates from run to run; the table shows the median of RUNS
# runs, as ratios to the plain net/http handler measured in the same run.
#
# Usage: bench/http.sh            (from anywhere inside the repository)
# Environment:
#   RUNS=3  N=10000  DELAY=1s  WRK="-t1 -c64 -d10s"  SERVERS="plain items fastapi"
#   SCENARIOS="a b c" (c alone for the overhead figures: see bench/README.md)
#   PAUSE=2 (seconds between measurements)  RES=/tmp/ferry-bench-http-<time>
#   PY=/usr/bin/python3 (a Python with fastapi, uvicorn, uvloop, httptools)
#   BASE_PORT=19000
#   ITEMS_REV=HEAD: build examples/items from that commit (git archive) rather
#     than from the work tree; bench/plain and bench/load come from the work tree.
#   QUIET_BUSY=0.10 QUIET_MAX=180s: before each measurement wait, at most
#     QUIET_MAX, until the machine's CPUs are at most QUIET_BUSY busy (other
#     jobs on a shared machine); CPU used by others during each run is
#     recorded (foreign_cpu_sec) and shown per run in the table.
#   FOREIGN_MAX=0.08 TRIES=3: a measurement during which other processes
#     used more than FOREIGN_MAX of the machine is repeated, up to TRIES times.
# Needs: go, wrk, curl; Debian: apt-get install -y wrk python3-fastapi
#   python3-uvicorn python3-uvloop python3-httptools
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
N=${N:-10000}
DELAY=${DELAY:-1s}
WRK=${WRK:--t1 -c64 -d10s}
SERVERS=${SERVERS:-plain items fastapi}
SCENARIOS=${SCENARIOS:-a b c}
PAUSE=${PAUSE:-2}
PY=${PY:-/usr/bin/python3}
BASE_PORT=${BASE_PORT:-19000}
ITEMS_REV=${ITEMS_REV:-}
QUIET_BUSY=${QUIET_BUSY:-0.10}
QUIET_MAX=${QUIET_MAX:-180s}
FOREIGN_MAX=${FOREIGN_MAX:-0.08}
TRIES=${TRIES:-3}
RES=${RES:-/tmp/ferry-bench-http-$(date +%Y%m%d-%H%M%S)}
BIN=$RES/bin
mkdir -p "$BIN"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- build once -------------------------------------------------------------
go build -o "$BIN/load" ./bench/load
go build -o "$BIN/plain" ./bench/plain
# variant_env NAME: the environment examples/items runs with as variant
# NAME (without @REV); fails for a variant this build cannot run yet.
variant_env() {
	local override=ITEMS_ENV_${1//-/_}
	if [[ -n ${!override+set} ]]; then
		echo "${!override}"
		return
	fi
	case $1 in
	items) echo "" ;; # the default stack: metrics on, access log off, tracing off
	items-bare) echo "FERRY_METRICS=off FERRY_LOG_LEVEL=error" ;;
	items-accesslog) echo "FERRY_ACCESS_LOG=true" ;;
	items-metrics) echo "FERRY_METRICS=on" ;;
	# Tracing on to a no-op exporter: variant_args.
	items-tracing) echo "" ;;
	# Tracing on, every span sampled and exported in batches to an OTLP
	# endpoint nobody listens on (each batch's export fails).
	items-tracing-otlp) echo "OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9" ;;
	*) return 1 ;;
	esac
}

# variant_args NAME: the flags examples/items runs with as variant NAME
# (without @REV), besides -addr and -delay.
variant_args() {
	case $1 in
	# Every span sampled and batched, then dropped by the exporter.
	items-tracing) echo "-trace-discard" ;;
	esac
}

# build_items REV: builds examples/items from commit REV ("" for the work
# tree, or ITEMS_REV when set) once, into $BIN/items@REV; prints the path.
build_items() {
	local rev=${1:-$ITEMS_REV} tag bin
	tag=${rev:-worktree}
	tag=${tag//\//_}
	bin=$BIN/items@$tag
	if [[ ! -x $bin ]]; then
		if [[ -n $rev ]]; then
			local src=$RES/src-$tag
			rm -rf "$src" && mkdir -p "$src"
			git archive "$rev" | tar -x -C "$src"
			(cd "$src" && go build -o "$bin" ./examples/items) >&2
		else
			go build -o "$bin" ./examples/items >&2
		fi
	fi
	echo "$bin"
}

declare -A ITEMS_BIN ITEMS_ENV ITEMS_ARGS
servers=()
for s in $SERVERS; do
	case $s in
	items | items-* | items@*)
		variant=${s%%@*} rev=
		[[ $s == *@* ]] && rev=${s#*@}
		if ! env_=$(variant_env "$variant"); then
			log "variant $variant is not available in this build (see variant_env in bench/http.sh): skipping $s"
			continue
		fi
		if [[ ! -d examples/items && -z $rev$ITEMS_REV ]]; then
			log "examples/items does not exist yet: skipping $s"
			continue
		fi
		ITEMS_BIN[$s]=$(build_items "$rev")
		ITEMS_ENV[$s]=$env_
		ITEMS_ARGS[$s]=$(variant_args "$variant")
		servers+=("$s")
		;;
	fastapi)
		if "$PY" -c 'import fastapi, uvicorn, uvloop, httptools' 2>/dev/null; then
			servers+=(fastapi)
		else
			log "$PY lacks fastapi/uvicorn/uvloop/httptools: skipping fastapi"
		fi
		;;
	*) servers+=("$s") ;;
	esac
done
command -v wrk >/dev/null || { log "wrk not found"; exit 1; }

# --- environment --------------------------------------------------------------
{
	echo "date: $(date -Is)"
	echo "nproc: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "kernel: $(uname -r)"
	echo "go: $(go version)"
	echo "python: $("$PY" -c 'import sys, fastapi, uvicorn; print(sys.version.split()[0], "fastapi", fastapi.__version__, "uvicorn", uvicorn.__version__)' 2>/dev/null || echo none)"
	echo "wrk: $(wrk -v 2>&1 | head -1)"
	echo "ulimit -n: $(ulimit -n)"
	for k in net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_syncookies \
		net.ipv4.ip_local_port_range net.ipv4.tcp_tw_reuse; do
		echo "$k: $(sysctl -n "$k" 2>/dev/null | tr '\t' ' ')"
	done
	echo "git: $(git log -1 --oneline 2>/dev/null || echo none); files modified in the work tree: $(git status --porcelain -uno 2>/dev/null | wc -l)"
	if [[ -n $ITEMS_REV ]]; then
		echo "items built from: commit $(git rev-parse --short "$ITEMS_REV") (git archive)"
	else
		echo "items built from: work tree"
	fi
	for s in "${!ITEMS_BIN[@]}"; do
		echo "$s: $(basename "${ITEMS_BIN[$s]}") env '${ITEMS_ENV[$s]}' args '${ITEMS_ARGS[$s]}'"
	done
	echo "settings: RUNS=$RUNS N=$N DELAY=$DELAY WRK='$WRK' SCENARIOS='$SCENARIOS' servers='${servers[*]}'"
} >"$RES/env.txt"
cat "$RES/env.txt" >&2
SOMAXCONN=$(sysctl -n net.core.somaxconn 2>/dev/null || echo 4096)

# Go duration (1s, 500ms, 0) -> seconds for the FastAPI app's DELAY.
seconds() {
	case $1 in
	*ms) awk -v v="${1%ms}" 'BEGIN{print v/1000}' ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

port=$BASE_PORT
SPID=

# start_server NAME DELAY LOGFILE: starts NAME on a fresh port, sets SPID and URL.
start_server() {
	local name=$1 delay=$2 logf=$3
	port=$((port + 1))
	case $name in
	plain) "$BIN/plain" -addr "127.0.0.1:$port" -delay "$delay" >"$logf" 2>&1 & ;;
	items | items-* | items@*)
		# shellcheck disable=SC2086 # the variant's environment (words NAME=VALUE) and flags
		env ${ITEMS_ENV[$name]} "${ITEMS_BIN[$name]}" ${ITEMS_ARGS[$name]} -addr "127.0.0.1:$port" -delay "$delay" >"$logf" 2>&1 &
		;;
	fastapi)
		# --backlog: uvicorn's default is 2048, Go listens with somaxconn;
		# give both the same kernel queue. --timeout-keep-alive: uvicorn's
		# default 5s would close connections opened early in the warm-up.
		DELAY=$(seconds "$delay") "$PY" -m uvicorn main:app --app-dir bench/fastapi \
			--host 127.0.0.1 --port "$port" --workers 1 --loop uvloop --http httptools \
			--no-access-log --backlog "$SOMAXCONN" --timeout-keep-alive 300 >"$logf" 2>&1 &
		;;
	*) log "unknown server $name"; return 1 ;;
	esac
	SPID=$!
	URL=http://127.0.0.1:$port/items/42
	for _ in $(seq 100); do
		if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/items/abc"; then
			return 0
		fi
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
	done
	log "$name did not start; see $logf"
	stop_server
	return 1
}

stop_server() {
	if [[ -n $SPID ]]; then
		kill "$SPID" 2>/dev/null || true
		wait "$SPID" 2>/dev/null || true
		SPID=
	fi
}
trap stop_server EXIT

# foreign_share FILE: CPU used by other processes during the run, as a
# share of the machine (foreign CPU-seconds / (wall × nproc)).
foreign_share() {
	awk -v n="$(nproc)" -F'[:,]' '/"wall_sec"/{w=$2} /"foreign_cpu_sec"/{f=$2}
		END{if (w > 0) printf "%.3f", f/(w*n); else print 1}' "$1"
}

# measure SCENARIO SERVER RUN: one measurement, repeated (at most TRIES
# times) while other processes took more than FOREIGN_MAX of the machine
# during it; the least disturbed attempt is kept, the others are kept as
# *.json.discarded-N.
measure() {
	local sc=$1 s=$2 run=$3 tag=$1-$2-$3 try share best=-1 bshare=2
	for try in $(seq "$TRIES"); do
		measure_once "$sc" "$s" "$run"
		[[ -f $RES/$tag.json ]] || continue
		share=$(foreign_share "$RES/$tag.json")
		mv "$RES/$tag.json" "$RES/$tag.json.try-$try"
		mv "$RES/$tag.log" "$RES/$tag.log.try-$try" 2>/dev/null || true
		if awk -v a="$share" -v b="$bshare" 'BEGIN{exit !(a < b)}'; then
			best=$try bshare=$share
		fi
		if awk -v a="$share" -v b="$FOREIGN_MAX" 'BEGIN{exit !(a <= b)}'; then
			break
		fi
		log "$tag: other processes used $share of the machine during the run${try:+ (try $try of $TRIES)}"
	done
	((best > 0)) || return 0
	mv "$RES/$tag.json.try-$best" "$RES/$tag.json"
	mv "$RES/$tag.log.try-$best" "$RES/$tag.log" 2>/dev/null || true
	for f in "$RES/$tag".*.try-*; do
		[[ -e $f ]] && mv "$f" "${f%.try-*}.discarded-${f##*.try-}"
	done
	if awk -v a="$bshare" -v b="$FOREIGN_MAX" 'BEGIN{exit !(a > b)}'; then
		log "$tag: kept try $best, the least disturbed ($bshare of the machine used by others)"
	fi
}

measure_once() {
	local sc=$1 s=$2 run=$3 tag=$1-$2-$3
	local delay=$DELAY
	[[ $sc == c ]] && delay=0
	# A shared machine: wait (bounded) until other jobs leave the CPUs idle.
	"$BIN/load" -mode quiet -max-busy "$QUIET_BUSY" -d "$QUIET_MAX"
	start_server "$s" "$delay" "$RES/$tag.server.log" || return 0
	local note="delay $delay"
	[[ $sc == c ]] && note="delay 0, wrk $WRK"
	local common=(-pid "$SPID" -json -label "$s" -scenario "$sc" -run "$run" -note "$note")
	case $sc in
	a) "$BIN/load" -mode burst -n "$N" -conns open -url "$URL" -expect '{"item_id":42}' "${common[@]}" \
		>"$RES/$tag.json" 2>"$RES/$tag.log" || log "$tag failed" ;;
	b) "$BIN/load" -mode burst -n "$N" -conns new -url "$URL" -expect '{"item_id":42}' "${common[@]}" \
		>"$RES/$tag.json" 2>"$RES/$tag.log" || log "$tag failed" ;;
	# shellcheck disable=SC2086
	c) "$BIN/load" -mode exec "${common[@]}" -- wrk $WRK --latency "$URL" \
		>"$RES/$tag.json" 2>"$RES/$tag.log" || log "$tag failed" ;;
	esac
	stop_server
	[[ -s $RES/$tag.json ]] || rm -f "$RES/$tag.json"
	if [[ -f $RES/$tag.json ]]; then
		log "$tag: $(grep -E '"(wall_sec|rps|lat_p99_ms|non_200|errors|server_peak_rss_kib)"' "$RES/$tag.json" | tr -d ' \n')"
	fi
	sleep "$PAUSE"
}

# --- interleaved runs, rotating the order of the servers ----------------------
for run in $(seq "$RUNS"); do
	k=$(((run - 1) % ${#servers[@]}))
	order=("${servers[@]:k}" "${servers[@]:0:k}")
	for sc in $SCENARIOS; do
		for s in "${order[@]}"; do
			measure "$sc" "$s" "$run"
		done
	done
done

"$BIN/load" -mode table -ref plain "$RES" | tee "$RES/table.md"
log "raw results in $RES"
