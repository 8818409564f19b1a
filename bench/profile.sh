#!/usr/bin/env bash
# bench/profile.sh - where fluxgate's worker spends its CPU, by sampling (works without hardware
# counters and without valgrind, see bench/README.md).
#
#   bench/profile.sh [json|sse] [info|trace] [CONC=8] [SECONDS=5]
#
# Starts the nginx mock and fluxgate (workers: 1, FLUXGATE_LOG as given) on free 127.0.0.1 ports,
# runs wrk for SECONDS while `perf record -e cpu-clock -g` samples the worker, then prints the
# worker's CPU µs per request (from /proc), the top functions by self time, and the inclusive
# share of fluxgate's own hot-path functions. Shares are of the worker's own CPU time, so they move
# little with the neighbours' load. Output and perf.data go to OUT (bench/results/profile-…).
set -u
BENCH=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$BENCH")
PAYLOAD=${1:-json}; LEVEL=${2:-info}; CONC=${3:-8}; SECS=${4:-5}
FLUXGATE_BIN=${FLUXGATE_BIN:-$ROOT/.build-bench/release/fluxgate}
OUT=${OUT:-$BENCH/results/profile-$(date +%Y%m%d-%H%M%S)-$PAYLOAD-$LEVEL}
RUN=$(mktemp -d /tmp/fluxgate-profile.XXXXXX)
mkdir -p "$OUT"
for tool in perf nginx wrk python3; do command -v $tool >/dev/null || { echo "$tool missing (bench/install-deps; perf: apt-get install linux-perf)" >&2; exit 1; }; done
[ -x "$FLUXGATE_BIN" ] || { echo "no fluxgate at $FLUXGATE_BIN" >&2; exit 1; }
PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; sleep 1
            for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
. "$BENCH/single-target.sh"
render "$BENCH/conf/nginx-mock.conf.tmpl" "$RUN/mock.conf"
nginx -p "$RUN" -c "$RUN/mock.conf" -g 'daemon off;' > "$RUN/mock.out" 2>&1 & PIDS+=($!)
render "$BENCH/conf/fluxgate.yaml.tmpl" "$RUN/fluxgate.yaml"
FLUXGATE_LOG=$LEVEL "$FLUXGATE_BIN" --config "$RUN/fluxgate.yaml" > "$RUN/fluxgate.log" 2>&1 & MASTER=$!; PIDS+=($MASTER)
for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/v1/x")" = 401 ] && break; sleep 0.1; done
WORKER=$(pgrep -P "$MASTER" | head -1)
[ -n "$WORKER" ] || { echo "fluxgate did not start: $(tail -3 "$RUN/fluxgate.log")" >&2; exit 1; }
path=/v1/chat/completions; model=mock-json; stream=false
[ "$PAYLOAD" = sse ] && { path=/stream/v1/chat/completions; model=mock-stream; stream=true; }
wrkrun() { BODY_MODEL=$model BODY_STREAM=$stream timeout $(($1+20)) wrk -t1 -c"$CONC" -d"$1s" \
  -s "$BENCH/tools/post.lua" -H 'Authorization: Bearer sk-client-key' "http://127.0.0.1:$PORT$path"; }
wrkrun 1 > /dev/null   # warm-up: pool connections, first-use allocations
t0=$(python3 "$BENCH/tools/proctree.py" "$WORKER" | cut -d' ' -f1)
timeout $((SECS+30)) perf record -q -F 999 -e cpu-clock -g -p "$WORKER" -o "$OUT/perf.data" -- sleep $((SECS+1)) > /dev/null 2>&1 &
PERF=$!
wrkrun "$SECS" > "$OUT/wrk.txt" 2>&1
wait $PERF
t1=$(python3 "$BENCH/tools/proctree.py" "$WORKER" | cut -d' ' -f1)
n=$(sed -n 's/ *\([0-9]*\) requests in.*/\1/p' "$OUT/wrk.txt")
demangle() { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; }
{
  echo "payload=$PAYLOAD FLUXGATE_LOG=$LEVEL c=$CONC ${SECS}s; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "requests=$n worker CPU µs/request=$(python3 -c "print(round(($t1-$t0)*1e6/$(getconf CLK_TCK)/max(1,${n:-0}),1))")"
  echo; echo "## self time, top 30"
  perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep '%' | head -30 | demangle | cut -c1-160
  echo; echo "## inclusive, fluxgate's request path"
  perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep '%' | demangle | cut -c1-160 \
    | grep -E 'ClientConnectionHandler|ClientIdleHandler|ProxyExchange|UpstreamPool|UpstreamHandler|ForwardingHeaders|Router|Authenticator|RequestPreflight|RequestLogRecord|FluxgateLogHandler|LogLineFormatter|TargetURL|scheduleTask|Scheduled.cancel' | head -40
} | tee "$OUT/report.txt"
