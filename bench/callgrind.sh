#!/usr/bin/env bash
# bench/callgrind.sh - instructions per proxied request, fluxgate's worker vs nginx's worker.
#
#   bench/callgrind.sh [N=2000]        # env: CONC (1), TARGETS ("fluxgate nginx"), PAYLOADS ("json sse"),
#                                      #      LOGMODES ("off on"), FLUXGATE_BIN, OUT, TOP (25),
#                                      #      FLUXGATE_CONF (conf/fluxgate.yaml.tmpl; conf/fluxgate-models.yaml.tmpl
#                                      #      routes the JSON requests by model instead of by prefix;
#                                      #      conf/fluxgate-gateway.yaml.tmpl has every gateway feature on),
#                                      #      REDIS (1: a redis-server started here keeps the key's
#                                      #      requests_per_minute, `rate_limits.redis` added to the conf),
#                                      #      START_S (60: seconds a target under valgrind may take to answer),
#                                      #      CALLGRIND_OPTS (more valgrind options, e.g. --dump-instr=yes)
#
# Instruction counts do not depend on what else runs on the machine, unlike wall-clock numbers.
# For each target x payload x logging mode: start the proxy under `valgrind --tool=callgrind` (the
# nginx mock upstream runs natively), send 200 warm-up requests, zero the counters
# (callgrind_control -z), send exactly N requests with tools/fixed_load.py, dump (callgrind_control
# -d) and divide the instructions (Ir) of the dump by N. nginx runs with `master_process off` (one
# process doing the worker's job); fluxgate's worker is followed through exec (--trace-children)
# and only the worker's counters are used. Writes results.tsv and, per run, the top functions by
# exclusive Ir (Swift names demangled) to OUT. Loopback only; stops what it started.
set -u
BENCH=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$BENCH")
N=${1:-2000}; CONC=${CONC:-1}; TOP=${TOP:-25}
TARGETS=${TARGETS:-"fluxgate nginx"}; PAYLOADS=${PAYLOADS:-"json sse"}; LOGMODES=${LOGMODES:-"off on"}
FLUXGATE_BIN=${FLUXGATE_BIN:-$ROOT/.build-bench/release/fluxgate}
OUT=${OUT:-$BENCH/results/callgrind-$(date +%Y%m%d-%H%M%S)}
RUN=$(mktemp -d /tmp/fluxgate-callgrind.XXXXXX)
mkdir -p "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/driver.log" >&2; }
PIDS=()
stop_pid() {   # TERM the PID and its descendants, KILL after 10 s (valgrind exits slowly)
  local p=$1 all; all=$(python3 "$BENCH/tools/proctree.py" --pids "$p")
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  for k in $all; do kill -KILL "$k" 2>/dev/null; done
  wait "$p" 2>/dev/null
}
cleanup() { local p; for p in "${PIDS[@]}"; do stop_pid "$p"; done; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
for tool in valgrind callgrind_control callgrind_annotate nginx python3; do
  command -v $tool >/dev/null || { log "$tool missing: run bench/install-deps"; exit 1; }; done
case " $TARGETS " in *" fluxgate "*) [ -x "$FLUXGATE_BIN" ] || { log "no fluxgate at $FLUXGATE_BIN (packaging/swift-build-release --scratch-path .build-bench)"; exit 1; };; esac
. "$BENCH/single-target.sh"
wait_code() {  # wait_code URL SECONDS CODE
  for _ in $(seq 1 $(($2*10))); do
    [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$1")" = "$3" ] && return 0; sleep 0.1; done; return 1; }

# valgrind 3.19 cannot read the DWARF 5 that Swift 6.3 emits: run copies without debug info
# (symbols stay, so functions keep their names). The master starts the worker found next to it.
if case " $TARGETS " in *" fluxgate "*) true;; *) false;; esac; then
  mkdir -p "$RUN/bin"
  cp "$FLUXGATE_BIN" "$(dirname "$FLUXGATE_BIN")/fluxgate-worker" "$RUN/bin/" && strip --strip-debug "$RUN"/bin/*
  FLUXGATE_BIN=$RUN/bin/fluxgate
fi
render "$BENCH/conf/nginx-mock.conf.tmpl" "$RUN/mock.conf"
nginx -p "$RUN" -c "$RUN/mock.conf" -g 'daemon off;' > "$RUN/mock.out" 2>&1 & PIDS+=($!)
wait_code "http://127.0.0.1:$MOCK_PORT/health" 10 200 || { log "mock did not start"; exit 1; }
if [ "${REDIS:-0}" = 1 ]; then
  command -v redis-server >/dev/null || { log "redis-server missing: run .ci/install-deps"; exit 1; }
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no > "$RUN/redis.out" 2>&1 & PIDS+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
fi
{ echo "date: $(date -Is)"; echo "command: bench/callgrind.sh $N (CONC=$CONC FLUXGATE_CONF=${FLUXGATE_CONF:-conf/fluxgate.yaml.tmpl} REDIS=${REDIS:-0})"; echo "nproc: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo; echo "loadavg: $(cat /proc/loadavg)"; valgrind --version; nginx -v 2>&1
  echo "fluxgate: $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- Sources || echo ' + uncommitted changes')"; } > "$OUT/env.txt"
[ -f "$OUT/results.tsv" ] || echo -e "target\tpayload\tlogging\trequests\tok\tinstructions\tinstructions_per_request" > "$OUT/results.tsv"

for t in $TARGETS; do for lm in $LOGMODES; do for p in $PAYLOADS; do
  name=${t}_${p}_log$lm
  rm -f "$RUN"/cg.*.out
  case $t in
    nginx)
      render "$BENCH/conf/nginx-proxy.conf.tmpl" "$RUN/proxy.conf"
      [ $lm = on ] && sed -i "s#access_log off;#access_log $RUN/access.log;#" "$RUN/proxy.conf"
      valgrind --tool=callgrind ${CALLGRIND_OPTS:-} --callgrind-out-file="$RUN/cg.%p.out" \
        nginx -p "$RUN" -c "$RUN/proxy.conf" -g 'daemon off; master_process off;' > "$RUN/$name.out" 2>&1 &
      ;;
    fluxgate)
      render "$BENCH/${FLUXGATE_CONF:-conf/fluxgate.yaml.tmpl}" "$RUN/proxy.yaml"
      # timeout_ms: valgrind slows the worker ~50x; a check must not time out for that.
      [ "${REDIS:-0}" = 1 ] && printf 'rate_limits:\n  redis:\n    url: redis://127.0.0.1:%s/0\n    timeout_ms: 2000\n    on_unavailable: reject\n' \
        "$REDIS_PORT" >> "$RUN/proxy.yaml"
      level=info; [ $lm = on ] && level=trace
      FLUXGATE_LOG=$level valgrind --tool=callgrind ${CALLGRIND_OPTS:-} --trace-children=yes --callgrind-out-file="$RUN/cg.%p.out" \
        "$FLUXGATE_BIN" --config "$RUN/proxy.yaml" > "$RUN/$name.out" 2> "$RUN/$name.err" &
      ;;
  esac
  top=$!; PIDS+=($top)
  if ! wait_code "http://127.0.0.1:$PORT/v1/x" "${START_S:-60}" 401; then log "$name did not come up"; stop_pid $top; continue; fi
  # the process whose counters we want: nginx itself, or fluxgate's worker (the master's child)
  vp=$top; [ $t = fluxgate ] && vp=$(pgrep -P $top | head -1)
  if [ $p = sse ]; then url=http://127.0.0.1:$PORT/stream/v1/chat/completions; else url=http://127.0.0.1:$PORT/v1/chat/completions; fi
  timeout 600 python3 "$BENCH/tools/fixed_load.py" "$url" sk-client-key $p 200 "$CONC" > /dev/null
  callgrind_control -z "$vp" > /dev/null 2>&1 || log "callgrind_control -z $vp failed"
  res=$(timeout 1800 python3 "$BENCH/tools/fixed_load.py" "$url" sk-client-key $p "$N" "$CONC")
  callgrind_control -d "$name" "$vp" > /dev/null 2>&1 || log "callgrind_control -d $vp failed"
  sleep 1
  dump=$(ls -t "$RUN"/cg.$vp.out.* 2>/dev/null | head -1)
  if [ -z "$dump" ]; then log "$name: no dump"; stop_pid $top; continue; fi
  ir=$(awk '/^(summary|totals):/{print $2; exit}' "$dump")
  ok=$(echo "$res" | sed -n 's/.*ok=\([0-9]*\).*/\1/p')
  if [ $t = fluxgate ]; then   # one parseHead per request: does the dump hold all N? (tools/cg_calls.py)
    held=$(python3 "$BENCH/tools/cg_calls.py" "$dump" 'RequestParser.*parseHead')
    [ "$held" = "$N" ] || log "WARNING $name: the dump holds $held of the $N requests (the zeroing landed late); per request is Ir/$held=$(python3 -c "print(round($ir/max(1,$held)))")"
  fi
  echo -e "$t\t$p\t$lm\t$N\t$ok\t$ir\t$(python3 -c "print(round($ir/$N))")" >> "$OUT/results.tsv"
  log "$name: $res Ir=$ir per request=$(python3 -c "print(round($ir/$N))") load=$(cut -d' ' -f1 /proc/loadavg)"
  cp "$dump" "$OUT/$name.callgrind"
  callgrind_annotate --threshold=100 "$dump" 2>/dev/null | head -$((TOP+30)) \
    | { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; } > "$OUT/$name.top.txt"
  callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null | head -$((TOP+45)) \
    | { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; } > "$OUT/$name.inclusive.txt"
  stop_pid $top
done; done; done
column -t "$OUT/results.tsv"
log "results in $OUT"
