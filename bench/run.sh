#!/usr/bin/env bash
# bench/run.sh - fluxgate against nginx and HAProxy doing the identical job, on loopback.
#
#   bench/run.sh --short     # a few minutes: S1, S2, S3/S4 (2 reps x 3 s), S5 small, S6, S7 idle/after,
#                            #   S8 reload under load, 1 GiB up/down (SOAK_S=60 adds a one-minute soak)
#   bench/run.sh             # full: 4 reps x 10 s, S1-S5 incl. SSE c=1, S6 x5, S7 with a 10-minute soak, S8, 1 GiB
#                            # (both: S9, the extra p99 of a refused connection before failover, fluxgate1 vs fluxgate1r)
#
# Everything listens on 127.0.0.1 on free ports picked at start. Started here: an nginx mock upstream
# (static 580 B JSON and 13,405 B SSE; 401 unless it sees the provider key), a paced SSE mock (50
# events x 20 ms; tools/sse_bench.c, compiled here, with tools/paced_sse_mock.py as the fallback
# when there is no C compiler; the S5 probe likewise), nginx (1 worker, 1 worker with 16 KiB proxy buffers, 2 workers), HAProxy
# (2 threads) and fluxgate (workers: 1 and 2; fluxgate1m = 1 worker with the observability listener on
# and /metrics scraped every second by curl, against fluxgate1 in the same run: docs/observability.md;
# fluxgate1t2: workers 1, the JSON upstream over two targets; fluxgate1mr: 1 worker with the JSON
# requests routed by their body's model, conf/fluxgate-models.yaml.tmpl, compared with fluxgate1's
# prefix route), plus a bulk-body mock for the 1 GiB transfers. Every
# proxy checks `Authorization: Bearer sk-client-key`, sends `Authorization: Bearer upstream-key`
# upstream and keeps connections alive.
# Each scenario runs with per-request logging off (FLUXGATE_LOG=info, nginx access_log off) and on
# (fluxgate's request lines and nginx's access log written to files). Targets are rotated every rep;
# the table shows medians of per-rep ratios measured in the same run. Everything started here is
# stopped by PID on exit (trap). Every loop is bounded in count, every client in time.
#
# Scenarios (SCENARIOS): json_cN / sse_cN (wrk, N connections), bigbody (1 GiB up and down through
# BIGBODY_TARGETS, worker RSS sampled every 50 ms), reload (S8: 2 + 6 x RELOAD_GAP + 3 s of wrk c=64
# JSON plus 16 paced SSE streams while tools/reload_driver.py makes six configuration changes, one a
# worker-count change N->N+1->N, on RELOAD_TARGETS). SOAK_S > 0 adds the S7 soak (c=8, logging off only).
#
# Rate limits (docs/rate-limits.md): the targets fluxgate2rl (2 workers, the bench key with a
# requests_per_minute high enough never to trigger, host-local) and fluxgate2redis (the same limit
# kept in a redis-server started here), against fluxgate2 in the same run:
#   TARGETS="fluxgate2 fluxgate2rl fluxgate2redis" SCENARIOS=json_c64 bench/run.sh --short
# With fluxgate2redis, S10 also measures the latency Redis adds below saturation (S10_N, S10_REPS).
#
# The whole gateway at once (issue 23): fluxgate1gw is 1 worker with every feature on together
# (conf/fluxgate-gateway.yaml.tmpl: the observability listener scraped every second, usage auto,
# the bench key's requests_per_minute that never triggers, host-local, the JSON upstream over two
# healthy targets, the JSON requests routed by model); fluxgate1gwredis the same with the limit
# kept in the redis-server started here. Both against nginx1 doing the plain proxy job:
#   TARGETS="nginx1 fluxgate1 fluxgate1gw fluxgate1gwredis" SCENARIOS=json_c64 bench/run.sh --short
#
# Paired A/B (AB_PAIRS): goals a few per cent wide, decided in the same minutes. The VM's speed
# drifts by tens of per cent over seconds, more than a rep's rotation through every target can
# cancel. With AB_PAIRS="A:B ..." (every pair's targets must be in TARGETS), the REPS rotations are
# replaced by AB_BLOCKS blocks: in each block every pair runs AB_DUR seconds of wrk on A and then
# AB_DUR on B (B first in every even block, so neither side always goes first), pairs in rotated
# order. Both sides of a ratio are measured a second apart. A pair written A:B@SCENARIO runs in
# that scenario only. ab-runs.tsv holds every burst (runs.tsv's columns); ab.tsv one row per pair
# and block; summary.md gives the median of the per-block ratios with a 95% bootstrap interval
# (tools/ab_summary.py). With AB_SLICE_MS (e.g. 100) a pair is instead one slice of A and one of B
# that long, sent by tools/abload.c (compiled here): one process holding c connections to each side
# and loading one side at a time, AB_BLOCKS pairs per A:B, CPU per request from /proc/TID/schedstat;
# both sides of a ratio are then measured within 2 x AB_SLICE_MS; AB_SKIP_MS leaves each slice's
# first milliseconds (the switch) out of both the count and the CPU. Issues 19, 20 and 23's goals:
#   AB_PAIRS="fluxgate1m:fluxgate1@json_c64 fluxgate1m:nginx1@json_c64 fluxgate1:fluxgate1off \
#     fluxgate1mr:fluxgate1@json_c64 fluxgate1gw:nginx1@json_c64" \
#   TARGETS="nginx1 fluxgate1 fluxgate1off fluxgate1m fluxgate1mr fluxgate1gw" SCENARIOS="json_c64 sse_c64" \
#   LOGMODES=off FIDELITY=0 COLDSTART_TRIALS=0 bench/run.sh --short
#
# PIN=P:C runs the proxies (their workers too) on CPU list P and wrk and the mocks on C (taskset),
# so the scheduler's placement of a proxy beside wrk does not differ from burst to burst.
#
# Env overrides: DUR REPS SCENARIOS LOGMODES TARGETS FIDELITY COLDSTART_TRIALS SOAK_S OUT FLUXGATE_BIN
#                RELOAD_TARGETS RELOAD_GAP RELOAD_STEPS (e.g. 1,2,3: hot reloads only) BIGBODY_TARGETS
#                AB_PAIRS AB_BLOCKS (30) AB_DUR (1) AB_SLICE_MS AB_SKIP_MS (0) PIN
set -u
BENCH=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$BENCH")
MODE=full
for a in "$@"; do case $a in --short) MODE=short;; --full) MODE=full;;
  -h|--help) sed -n 2,25p "$0"; exit 0;; *) echo "unknown argument $a" >&2; exit 2;; esac; done
if [ $MODE = short ]; then
  DUR=${DUR:-3}; REPS=${REPS:-2}; SCENARIOS=${SCENARIOS:-"json_c1 json_c64 sse_c64 bigbody reload"}
  FID_N1=4; FID_N32=32; COLDSTART_TRIALS=${COLDSTART_TRIALS:-2}; SOAK_S=${SOAK_S:-0}
else
  DUR=${DUR:-10}; REPS=${REPS:-4}; SCENARIOS=${SCENARIOS:-"json_c1 json_c64 sse_c64 sse_c1 bigbody reload"}
  FID_N1=10; FID_N32=96; COLDSTART_TRIALS=${COLDSTART_TRIALS:-5}; SOAK_S=${SOAK_S:-600}
fi
LOGMODES=${LOGMODES:-"off on"}; FIDELITY=${FIDELITY:-1}
AB_PAIRS=${AB_PAIRS:-}; AB_BLOCKS=${AB_BLOCKS:-30}; AB_DUR=${AB_DUR:-1}; AB_SKIP_MS=${AB_SKIP_MS:-0}
# PIN=P:C (e.g. 0:1): the proxies (and their workers) on CPU list P, wrk and the mocks on C (taskset)
PIN=${PIN:-}; PIN_PROXY=(); PIN_CLIENT=()
if [ -n "$PIN" ]; then PIN_PROXY=(taskset -c "${PIN%%:*}"); PIN_CLIENT=(taskset -c "${PIN#*:}"); fi
RELOAD_TARGETS=${RELOAD_TARGETS:-"fluxgate1 nginx1"}; RELOAD_GAP=${RELOAD_GAP:-2.5}; RELOAD_STEPS=${RELOAD_STEPS:-1,2,3,4,5,6}
BIGBODY_TARGETS=${BIGBODY_TARGETS:-"fluxgate1 nginx1"}
WRK_SCENARIOS=""; DO_RELOAD=0; DO_BIGBODY=0
for sc in $SCENARIOS; do case $sc in
  json_c[0-9]*|sse_c[0-9]*) WRK_SCENARIOS+="$sc ";;
  reload) DO_RELOAD=1;; bigbody) DO_BIGBODY=1;;
  *) echo "unknown scenario $sc (json_cN sse_cN bigbody reload)" >&2; exit 2;; esac; done
TARGETS=${TARGETS:-"direct nginx1 nginx1t nginx2 haproxy fluxgate1 fluxgate1off fluxgate1m fluxgate1mr fluxgate2 fluxgate1t2"}
OUT=${OUT:-$BENCH/results/$(date +%Y%m%d-%H%M%S)-$MODE}
FLUXGATE_BIN=${FLUXGATE_BIN:-}
CLIENT_KEY=sk-client-key; UPSTREAM_KEY=upstream-key
RUN=$(mktemp -d /tmp/fluxgate-bench.XXXXXX)
mkdir -p "$OUT/raw"
RES=$OUT/runs.tsv; FID=$OUT/fidelity.jsonl; MEM=$OUT/memory.tsv; COLD=$OUT/coldstart.tsv
BIG=$OUT/bigbody.tsv; RLD=$OUT/reload.jsonl; SOAK=$OUT/soak.tsv
echo -e "logmode\tscenario\ttarget\trep\trps\tp50_ms\tp99_ms\trequests\tnon2xx\tsockerr\tproxy_cpu_us_per_req\tproxy_rss_kb\tforeign_cpu_pct\tloadavg1" > "$RES"
[ -n "$AB_PAIRS" ] && { head -1 "$RES" > "$OUT/ab-runs.tsv"
  echo -e "logmode\tscenario\tpair\tblock\tfirst\trps_a\trps_b\tcpu_a\tcpu_b\tfailed" > "$OUT/ab.tsv"; }
echo -e "logmode\ttarget\tphase\tmaster_kb\tworkers_kb\tworkers" > "$MEM"
echo -e "logmode\ttarget\tdirection\thttp_code\tbytes\tseconds\tverified\tbefore_workers_kb\tmax_workers_kb\tmax_one_worker_kb\tafter_workers_kb\tmax_master_kb\tsamples" > "$BIG"
echo -e "logmode\ttarget\tseconds\tstep_s\trequests\tnon2xx\tsockerr" > "$SOAK"
: > "$FID"; : > "$RLD"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/driver.log" >&2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- processes started here
declare -A PID=()
STARTED=()
stop_one() {   # TERM, wait up to 5 s, then KILL this PID and any descendants it left behind
  local name=$1 pid=${PID[$1]:-} kids
  [ -z "$pid" ] && return 0
  kids=$(python3 "$BENCH/tools/proctree.py" --pids "$pid")
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  for k in $kids; do [ "$k" != "$pid" ] && kill -KILL "$k" 2>/dev/null; done
  wait "$pid" 2>/dev/null
  unset "PID[$name]"
}
stop_all() { local i; for ((i=${#STARTED[@]}-1; i>=0; i--)); do stop_one "${STARTED[$i]}"; done; STARTED=(); }
cleanup() { stop_all; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
launch() {     # launch NAME cmd...   (stdout+stderr to $RUN/NAME.out)
  local name=$1; shift
  "$@" > "$RUN/$name.out" 2>&1 &
  PID[$name]=$!; STARTED+=("$name")
}
join_one() {   # join_one NAME: wait for a launched client that ends by itself (it has its own time bound)
  local pid=${PID[$1]:-}; [ -n "$pid" ] && wait "$pid" 2>/dev/null; unset "PID[$1]"
}
wait_http() {  # wait_http URL SECONDS CODE [curl args...]  -- bounded polling
  local url=$1 secs=$2 want=$3 code=""; shift 3
  for _ in $(seq 1 $((secs*20))); do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$@" "$url" 2>/dev/null)
    [ "$code" = "$want" ] && return 0
    sleep 0.05
  done
  log "timeout waiting for $url (last code $code)"; return 1
}

# ---------------------------------------------------------------- build and ports
if [ -z "$FLUXGATE_BIN" ]; then
  log "building fluxgate (the release build of the .deb: packaging/swift-build-release --scratch-path .build-bench)"
  (cd "$ROOT" && timeout 3600 packaging/swift-build-release --scratch-path .build-bench > "$OUT/build.log" 2>&1) \
    || { log "build failed, see $OUT/build.log"; exit 1; }
  FLUXGATE_BIN=$ROOT/.build-bench/release/fluxgate
fi
[ -x "$FLUXGATE_BIN" ] || { log "no fluxgate binary at $FLUXGATE_BIN"; exit 1; }
for pair in $AB_PAIRS; do
  for t in $(echo "${pair%@*}" | tr : ' '); do
    case " $TARGETS " in *" $t "*) ;; *) echo "AB_PAIRS: $t (in $pair) is not in TARGETS" >&2; exit 2;; esac; done
  case $pair in *:*) ;; *) echo "AB_PAIRS: $pair is not A:B" >&2; exit 2;; esac
done
for tool in nginx haproxy wrk curl python3; do
  command -v $tool >/dev/null || { log "$tool missing: run bench/install-deps"; exit 1; }; done
read -r MOCK_PORT PACED_PORT BULK_PORT P_nginx1 P_nginx1t P_nginx2 P_haproxy P_fluxgate1 P_fluxgate2 P_fluxgate1off P_fluxgate1m METRICS_PORT P_fluxgate1mr P_fluxgate2rl P_fluxgate2redis REDIS_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(16)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
P_fluxgate1t2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
read -r P_fluxgate1gw P_fluxgate1gwredis M_fluxgate1gw M_fluxgate1gwredis < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
declare -A PORT=([nginx1]=$P_nginx1 [nginx1t]=$P_nginx1t [nginx2]=$P_nginx2 [haproxy]=$P_haproxy
                 [fluxgate1]=$P_fluxgate1 [fluxgate2]=$P_fluxgate2 [fluxgate1off]=$P_fluxgate1off [fluxgate1m]=$P_fluxgate1m
                 [fluxgate1t2]=$P_fluxgate1t2 [fluxgate1mr]=$P_fluxgate1mr [fluxgate2rl]=$P_fluxgate2rl
                 [fluxgate2redis]=$P_fluxgate2redis [fluxgate1gw]=$P_fluxgate1gw [fluxgate1gwredis]=$P_fluxgate1gwredis)

declare -A M=([fluxgate1gw]=$M_fluxgate1gw [fluxgate1gwredis]=$M_fluxgate1gwredis)   # their observability listeners

render() {     # render TEMPLATE OUT PORT WORKERS
  sed -e "s#{RUNDIR}#$RUN#g" -e "s#{MOCKDIR}#$BENCH/mock/www#g" -e "s#{MOCK_PORT}#$MOCK_PORT#g" \
      -e "s#{PACED_PORT}#$PACED_PORT#g" -e "s#{BULK_PORT}#$BULK_PORT#g" -e "s#{CLIENT_KEY}#$CLIENT_KEY#g" -e "s#{UPSTREAM_KEY}#$UPSTREAM_KEY#g" \
      -e "s#{PORT}#$3#g" -e "s#{WORKERS}#$4#g" -e "s#{THREADS}#$4#g" -e "s#{USAGE}#${5:-auto}#g" "$1" > "$2"
}
mem_sample() {  # mem_sample LOGMODE TARGET PHASE
  local r; r=$(python3 "$BENCH/tools/proctree.py" --rss "${PID[$2]}")
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${r// /$'\t'}" >> "$MEM"
}

# nginx/haproxy/fluxgate launch lines; LOG=on writes request logs to files in $RUN
start_proxy() {  # start_proxy TARGET LOGMODE
  local t=$1 lm=$2 p=${PORT[$1]} w=1
  case $t in
    nginx1|nginx1t|nginx2)
      [ $t = nginx2 ] && w=2
      render "$BENCH/conf/nginx-proxy.conf.tmpl" "$RUN/$t.conf" "$p" $w
      sed -i "s#nginx-proxy.pid#$t.pid#; s#nginx-proxy.error#$t.error#" "$RUN/$t.conf"
      [ $t = nginx1t ] && sed -i "s#proxy_buffering off;#proxy_buffering off; proxy_buffer_size 16k; proxy_buffers 8 16k;#" "$RUN/$t.conf"
      [ "$lm" = on ] && sed -i "s#access_log off;#access_log $RUN/$t.access.log;#" "$RUN/$t.conf"
      launch $t "${PIN_PROXY[@]}" nginx -p "$RUN" -c "$RUN/$t.conf" -g 'daemon off;' ;;
    haproxy)   # no per-request log in either mode (it would need syslog); see docs/performance.md
      render "$BENCH/conf/haproxy.cfg.tmpl" "$RUN/$t.cfg" "$p" 2
      launch $t "${PIN_PROXY[@]}" haproxy -db -f "$RUN/$t.cfg" ;;
    fluxgate1|fluxgate2|fluxgate1off|fluxgate1t2|fluxgate1mr|fluxgate2rl|fluxgate2redis)
      # fluxgate1off: fluxgate1 with `usage: off` on every upstream, S5's paced one too (docs/usage.md),
      # the baseline of the usage reader's cost (summarize.py: throughput, and S5's time to first event);
      # fluxgate1mr: fluxgate1 with the JSON requests routed by model (conf/fluxgate-models.yaml.tmpl)
      local usage=auto conf=fluxgate.yaml.tmpl; [ $t = fluxgate1off ] && usage=off
      [ $t = fluxgate1mr ] && conf=fluxgate-models.yaml.tmpl
      w=${t#fluxgate}; w=${w%%[a-z]*}
      render "$BENCH/conf/$conf" "$RUN/$t.yaml" "$p" "$w" "$usage"
      # fluxgate1t2: the JSON upstream over two healthy targets (two origins of the one mock:
      # weighted choice and shared health on every request), against fluxgate1's one target.
      [ $t = fluxgate1t2 ] && python3 "$BENCH/tools/two_targets.py" "$RUN/$t.yaml" "$MOCK_PORT" "$UPSTREAM_KEY"
      # A limit that never triggers (60 s x ~100k requests/s would be 6M: the maximum is 1M, so a
      # long run at that rate would see 429s; the bench runs are seconds long).
      case $t in *rl|*redis) echo "      limits: { requests_per_minute: 1000000 }" >> "$RUN/$t.yaml";; esac
      case $t in *redis) printf 'rate_limits:\n  redis:\n    url: redis://127.0.0.1:%s/0\n    timeout_ms: 50\n    on_unavailable: reject\n' \
        "$REDIS_PORT" >> "$RUN/$t.yaml";; esac
      local level=info; [ "$lm" = on ] && level=trace
      # its own control socket: the default one is per user and may belong to someone else's fluxgate
      launch $t "${PIN_PROXY[@]}" env FLUXGATE_LOG=$level "$FLUXGATE_BIN" --config "$RUN/$t.yaml" --control-socket "$RUN/$t.sock" ;;
    fluxgate1m)   # fluxgate1 plus the observability listener, scraped every second while it runs
      render "$BENCH/conf/fluxgate.yaml.tmpl" "$RUN/$t.yaml" "$p" 1
      printf 'observability:\n  listen: 127.0.0.1:%s\n' "$METRICS_PORT" >> "$RUN/$t.yaml"
      local level=info; [ "$lm" = on ] && level=trace
      launch $t "${PIN_PROXY[@]}" env FLUXGATE_LOG=$level "$FLUXGATE_BIN" --config "$RUN/$t.yaml" --control-socket "$RUN/$t.sock"
      launch ${t}_scraper bash -c "for _ in \$(seq 1 100000); do curl -s -o /dev/null -m 2 http://127.0.0.1:$METRICS_PORT/metrics; sleep 1; done" ;;
    fluxgate1gw|fluxgate1gwredis)   # every gateway feature at once (conf/fluxgate-gateway.yaml.tmpl)
      render "$BENCH/conf/fluxgate-gateway.yaml.tmpl" "$RUN/$t.yaml" "$p" 1
      sed -i "s#{METRICS_PORT}#${M[$t]}#g" "$RUN/$t.yaml"
      [ $t = fluxgate1gwredis ] && printf 'rate_limits:\n  redis:\n    url: redis://127.0.0.1:%s/0\n    timeout_ms: 50\n    on_unavailable: reject\n' \
        "$REDIS_PORT" >> "$RUN/$t.yaml"
      local level=info; [ "$lm" = on ] && level=trace
      launch $t "${PIN_PROXY[@]}" env FLUXGATE_LOG=$level "$FLUXGATE_BIN" --config "$RUN/$t.yaml" --control-socket "$RUN/$t.sock"
      launch ${t}_scraper bash -c "for _ in \$(seq 1 100000); do curl -s -o /dev/null -m 2 http://127.0.0.1:${M[$t]}/metrics; sleep 1; done" ;;
  esac
}

target_url() {   # target_url TARGET PAYLOAD -> "url key model stream"
  local t=$1 base key=$CLIENT_KEY
  if [ "$t" = direct ]; then base=http://127.0.0.1:$MOCK_PORT; key=$UPSTREAM_KEY; else base=http://127.0.0.1:${PORT[$t]}; fi
  if [ "$2" = sse ]; then echo "$base/stream/v1/chat/completions $key mock-stream true"
  else echo "$base/v1/chat/completions $key mock-json false"; fi
}

run_wrk() {      # run_wrk LOGMODE SCENARIO TARGET REP
  local lm=$1 sc=$2 t=$3 rep=$4 payload=${2%_*} c=${2#*_c} url key model stream th=2
  [ "$t" != direct ] && [ -z "${PID[$t]:-}" ] && return 0
  read -r url key model stream < <(target_url "$t" "$payload")
  [ "$c" -lt 2 ] && th=1
  local f=$OUT/raw/${lm}_${sc}_${t}_r${rep}.txt hz b0=0 b1="0 0 0" s0 s1 o0 o1 la
  hz=$(getconf CLK_TCK); la=$(cut -d' ' -f1 /proc/loadavg)
  [ "$t" != direct ] && b0=$(python3 "$BENCH/tools/proctree.py" "${PID[$t]}" | cut -d' ' -f1)
  s0=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  o0=$(python3 "$BENCH/tools/proctree.py" "${PID[@]}" | cut -d' ' -f1)
  local TIMEFORMAT='%U %S'
  { time (BODY_MODEL=$model BODY_STREAM=$stream timeout $((DUR+20)) "${PIN_CLIENT[@]}" wrk -t$th -c"$c" -d"${DUR}s" --timeout 10s \
      --latency -s "$BENCH/tools/post.lua" -H "Authorization: Bearer $key" "$url" > "$f" 2>&1); } 2> "$RUN/wrktime"
  s1=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  o1=$(python3 "$BENCH/tools/proctree.py" "${PID[@]}" | cut -d' ' -f1)
  [ "$t" != direct ] && b1=$(python3 "$BENCH/tools/proctree.py" "${PID[$t]}")
  local rps p50 p99 nreq non2xx sockerr pcpu foreign
  read -r rps p50 p99 nreq non2xx sockerr < <(python3 "$BENCH/tools/parse_wrk.py" < "$f")
  read -r pcpu foreign < <(python3 - "$t" "$nreq" "$b0" "${b1%% *}" "$hz" "$s0" "$s1" "$o0" "$o1" "$(cat "$RUN/wrktime")" <<'EOF'
import sys
t, n, b0, b1, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
busy0, tot0 = map(int, sys.argv[6].split()); busy1, tot1 = map(int, sys.argv[7].split())
mine = int(sys.argv[9]) - int(sys.argv[8]) + sum(map(float, sys.argv[10].split())) * hz
pcpu = "%.1f" % ((b1 - b0) * 1e6 / hz / n) if n and t != "direct" else "NA"
tot = tot1 - tot0
print(pcpu, "%.0f" % (max(0.0, busy1 - busy0 - mine) * 100.0 / tot) if tot else "NA")
EOF
)
  echo -e "$lm\t$sc\t$t\t$rep\t$rps\t$p50\t$p99\t$nreq\t$non2xx\t$sockerr\t$pcpu\t$(echo "$b1" | cut -d' ' -f2)\t$foreign\t$la" >> "$RES"
  log "$lm $sc $t r$rep: rps=$rps p50=${p50}ms p99=${p99}ms n=$nreq non2xx=$non2xx sockerr=$sockerr cpu=${pcpu}us/req foreign=${foreign}% load=$la"
}

rotate() { local n=$1; shift; local a=("$@") k=$# i; for ((i=0; i<k; i++)); do printf '%s ' "${a[$(( (i+n) % k ))]}"; done; }

paired_slices() {   # paired_slices LOGMODE SCENARIO A B: tools/abload.c, AB_BLOCKS pairs of AB_SLICE_MS slices
  local lm=$1 sc=$2 a=$3 b=$4 payload=${2%_*} c=${2#*_c} ua ub key model stream
  read -r ua key model stream < <(target_url "$a" "$payload")
  read -r ub key model stream < <(target_url "$b" "$payload")
  log "paired $lm $sc $a:$b: $AB_BLOCKS pairs of ${AB_SLICE_MS} ms slices (the first $AB_SKIP_MS ms of each not counted), c=$c each, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout $(( (AB_BLOCKS + 10) * 2 * AB_SLICE_MS / 1000 + 30 )) "${PIN_CLIENT[@]}" "$ABLOAD" "$ua" "${PID[$a]}" "$ub" "${PID[$b]}" \
    "$key" "$model" "$stream" "$c" "$AB_SLICE_MS" "$AB_BLOCKS" 10 2 "$AB_SKIP_MS" > "$RUN/abload.out" 2> "$RUN/abload.err" \
    || log "abload $a:$b failed: $(head -c 300 "$RUN/abload.err")"
  cp "$RUN/abload.out" "$OUT/raw/abload_${lm}_${sc}_$a-$b.tsv"
  # abload: pair first responses_a responses_b cpu_ns_a cpu_ns_b errors -> ab.tsv's columns
  awk -v lm="$lm" -v sc="$sc" -v pair="$a:$b" -v a="$a" -v b="$b" -v s="$((AB_SLICE_MS - AB_SKIP_MS))" -F'\t' 'BEGIN { OFS = "\t" }
    { ra = $3 * 1000 / s; rb = $4 * 1000 / s
      printf "%s\t%s\t%s\t%d\t%s\t%.1f\t%.1f\t%s\t%s\t%d\n", lm, sc, pair, $1 + 1, ($2 == "A" ? a : b), ra, rb,
        ($3 ? sprintf("%.2f", $5 / 1000 / $3) : "NA"), ($4 ? sprintf("%.2f", $6 / 1000 / $4) : "NA"), $7 }' \
    "$RUN/abload.out" >> "$OUT/ab.tsv"
  python3 "$BENCH/tools/ab_summary.py" --pair "$a:$b" --scenario "$sc" --logmode "$lm" "$OUT" | tail -n +5 | head -1 | while read -r line; do log "paired $a:$b: $line"; done
}

paired() {       # paired LOGMODE: AB_BLOCKS blocks of every pair of AB_PAIRS, AB_DUR s a side
  local lm=$1 sc blk pair a b first second ra rb runs=$RES DUR=$AB_DUR
  if [ -n "$ABLOAD" ]; then
    for sc in $WRK_SCENARIOS; do
      for pair in $AB_PAIRS; do
        case $pair in *@*) [ "${pair#*@}" = "$sc" ] || continue;; esac
        a=${pair%@*}; b=${a#*:}; a=${a%%:*}
        [ -n "${PID[$a]:-}" ] && [ -n "${PID[$b]:-}" ] && paired_slices $lm $sc $a $b
      done
    done
    return 0
  fi
  RES=$OUT/ab-runs.tsv
  for sc in $WRK_SCENARIOS; do
    local pairs=()
    for pair in $AB_PAIRS; do
      case $pair in *@*) [ "${pair#*@}" = "$sc" ] || continue;; esac
      a=${pair%@*}; b=${a#*:}; a=${a%%:*}
      [ -n "${PID[$a]:-}" ] && [ -n "${PID[$b]:-}" ] && pairs+=("$a:$b")
    done
    [ ${#pairs[@]} -eq 0 ] && continue
    for ((blk=1; blk<=AB_BLOCKS; blk++)); do
      log "paired $lm $sc block $blk/$AB_BLOCKS, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
      for pair in $(rotate $((blk-1)) "${pairs[@]}"); do
        a=${pair%%:*}; b=${pair#*:}; first=$a; second=$b
        (( blk % 2 == 0 )) && { first=$b; second=$a; }
        run_wrk $lm $sc $first $blk; ra=$(tail -1 "$RES")
        run_wrk $lm $sc $second $blk; rb=$(tail -1 "$RES")
        (( blk % 2 == 0 )) && { pair=$ra; ra=$rb; rb=$pair; }
        # runs.tsv's columns: 5 rps, 9 non2xx, 10 sockerr, 11 proxy CPU µs per request
        echo -e "$lm\t$sc\t$a:$b\t$blk\t$first\t$(echo "$ra" | cut -f5)\t$(echo "$rb" | cut -f5)\t$(echo "$ra" | cut -f11)\t$(echo "$rb" | cut -f11)\t$(( $(echo "$ra" | cut -f9) + $(echo "$rb" | cut -f9) + $(echo "$ra" | cut -f10) + $(echo "$rb" | cut -f10) ))" >> "$OUT/ab.tsv"
      done
    done
  done
  RES=$runs
}

fidelity() {     # S5: paced SSE (50 events x 20 ms) through each target, c=1 and c=32
  # Two passes per concurrency, same probe: "first" opens the proxy's upstream connections (all
  # 32 at once at c=32: every proxy then does 32 accepts, 32 connects and 32 first relays before
  # the last stream's first event; this is a burst, not the steady state), "warm" follows at
  # once on new client connections with the upstream keep-alive pool filled.
  local lm=$1 t url key pass
  for t in direct nginx1 fluxgate1 fluxgate1off fluxgate2; do
    [ "$t" != direct ] && [ -z "${PID[$t]:-}" ] && continue
    key=$CLIENT_KEY; url=http://127.0.0.1:${PORT[$t]:-}/paced/v1/chat/completions
    [ $t = direct ] && { url=http://127.0.0.1:$PACED_PORT/v1/chat/completions; key=$UPSTREAM_KEY; }
    for cc in 1 32; do for pass in first warm; do
      local n=$FID_N1; [ $cc = 32 ] && n=$FID_N32
      local r
      if [ -n "$SSE_BENCH" ]; then
        r=$(timeout 120 "$SSE_BENCH" probe "$url" "$key" mock-paced $n $cc 90)
      else
        r=$(timeout 120 python3 "$BENCH/tools/sse_probe.py" "$url" "$key" mock-paced $n $cc 90)
      fi
      echo "{\"logmode\":\"$lm\",\"target\":\"$t\",\"pass\":\"$pass\",\"probe\":${r:-null}}" >> "$FID"
      log "fidelity $lm $t c$cc $pass: $r"
    done; done
  done
}

soak() {         # S7 growth: fluxgate1 and nginx1 under c=8 JSON for SOAK_S seconds at the same time, RSS every step
  local lm=$1 t step=30 i n t0 el soaked=()
  [ "$SOAK_S" -lt 300 ] && step=$(( SOAK_S / 10 > 5 ? SOAK_S / 10 : 5 ))
  n=$(( SOAK_S / step ))
  # Both targets soak side by side: growth per minute is what is compared, and the run stays
  # SOAK_S long instead of twice that.
  for t in fluxgate1 nginx1; do
    [ -z "${PID[$t]:-}" ] && continue
    read -r url key model stream < <(target_url "$t" json)
    log "soak $lm $t: ${SOAK_S}s at c=8, RSS every ${step}s"
    launch "soakwrk_$t" env BODY_MODEL=$model BODY_STREAM=false timeout $((SOAK_S+30)) wrk -t1 -c8 -d"${SOAK_S}s" --timeout 10s \
      -s "$BENCH/tools/post.lua" -H "Authorization: Bearer $key" "$url"
    soaked+=("$t")
  done
  [ ${#soaked[@]} -eq 0 ] && return 0
  t0=$(date +%s.%N)
  for ((i=0; i<=n; i++)); do
    sleep "$(python3 -c "import time,sys; print(max(0.0, $t0 + $i*$step - time.time()))")"
    el=$(python3 -c "import time; print(round(time.time() - $t0))")
    for t in "${soaked[@]}"; do mem_sample "$lm" "$t" "soak_${el}s"; done
    kill -0 "${PID[soakwrk_${soaked[0]}]}" 2>/dev/null || break
  done
  for t in "${soaked[@]}"; do
    join_one "soakwrk_$t"; cp "$RUN/soakwrk_$t.out" "$OUT/raw/soak_${lm}_$t.txt"
    read -r _ _ _ nreq non2xx sockerr < <(python3 "$BENCH/tools/parse_wrk.py" < "$RUN/soakwrk_$t.out")
    echo -e "$lm\t$t\t$SOAK_S\t$step\t$nreq\t$non2xx\t$sockerr" >> "$SOAK"
    log "soak $lm $t: n=$nreq non2xx=$non2xx sockerr=$sockerr"
  done
}

bigbody() {      # 1 GiB up (POST, streamed from a sparse file) and down (GET) through each target, worker RSS sampled
  local lm=$1 t dir r code bytes secs before after ok mm mw m1 ns url
  local size=$((1024*1024*1024))
  [ -f "$RUN/1g.bin" ] || truncate -s $size "$RUN/1g.bin"     # sparse: no disk, reads as zeros
  for t in $BIGBODY_TARGETS; do
    [ -z "${PID[$t]:-}" ] && continue
    for dir in up down; do
      sleep 0.5; before=$(python3 "$BENCH/tools/proctree.py" --rss "${PID[$t]}")
      launch rsswatch python3 "$BENCH/tools/rss_watch.py" "${PID[$t]}" 0.05 200
      if [ $dir = up ]; then
        url=http://127.0.0.1:${PORT[$t]}/bulk/v1/upload
        r=$(timeout 200 curl -sS -m 180 -o "$RUN/bulk.out" -w '%{http_code} %{size_upload} %{time_total}' -X POST \
            -T "$RUN/1g.bin" -H 'Expect:' -H 'Content-Type: application/octet-stream' -H "Authorization: Bearer $CLIENT_KEY" "$url" 2>"$RUN/curl.err")
        ok=0; grep -q "\"received\":$size}" "$RUN/bulk.out" 2>/dev/null && ok=1     # the mock saw every byte
      else
        url=http://127.0.0.1:${PORT[$t]}/bulk/v1/download/$size
        r=$(timeout 200 curl -sS -m 180 -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
            -H "Authorization: Bearer $CLIENT_KEY" "$url" 2>"$RUN/curl.err")
        ok=0; [ "$(echo "$r" | cut -d' ' -f2)" = $size ] && ok=1
      fi
      read -r code bytes secs <<< "${r:-000 0 0}"
      stop_one rsswatch; read -r mm mw m1 ns < "$RUN/rsswatch.out"
      sleep 0.5; after=$(python3 "$BENCH/tools/proctree.py" --rss "${PID[$t]}")
      echo -e "$lm\t$t\t$dir\t$code\t$bytes\t$secs\t$ok\t$(echo "$before" | cut -d' ' -f2)\t$mw\t$m1\t$(echo "$after" | cut -d' ' -f2)\t$mm\t$ns" >> "$BIG"
      log "1GiB $lm $t $dir: HTTP $code, $bytes bytes in ${secs}s, verified=$ok, workers RSS $(echo "$before" | cut -d' ' -f2) -> max $mw -> $(echo "$after" | cut -d' ' -f2) kB$( [ -s "$RUN/curl.err" ] && echo "; curl: $(head -c 200 "$RUN/curl.err")")"
    done
  done
}

reload_under_load() {   # S8: wrk c=64 JSON + 16 paced SSE streams for RELOAD_S while six reloads happen
  local lm=$1 t url key model stream cfg logf lines0 rs
  rs=$(python3 -c "print(int(2 + 6*$RELOAD_GAP + 3 + 0.999))")
  for t in $RELOAD_TARGETS; do
    [ -z "${PID[$t]:-}" ] && continue
    case $t in fluxgate*) cfg=$RUN/$t.yaml; logf=$RUN/$t.out;; nginx*) cfg=$RUN/$t.conf; logf=$RUN/$t.error.log;;
      *) log "reload: $t not supported"; continue;; esac
    touch "$logf"
    read -r url key model stream < <(target_url "$t" json)
    log "reload $lm $t: ${rs}s of wrk c=64 + 16 paced streams, 6 reloads ${RELOAD_GAP}s apart"
    lines0=$(wc -l < "$logf")
    launch rwrk env BODY_MODEL=$model BODY_STREAM=false timeout $((rs+20)) wrk -t2 -c64 -d"${rs}s" --timeout 10s \
      -s "$BENCH/tools/post.lua" -H "Authorization: Bearer $key" "$url"
    launch rsse timeout $((rs+40)) python3 "$BENCH/tools/sse_load.py" "http://127.0.0.1:${PORT[$t]}/paced/v1/chat/completions" \
      "$CLIENT_KEY" mock-paced 16 "$rs" 51 15
    if [ "${t%%[0-9]*}" = fluxgate ]; then
      timeout $((rs+30)) python3 "$BENCH/tools/reload_driver.py" fluxgate "$cfg" "${PID[$t]}" --socket "$RUN/$t.sock" \
        --bin "$FLUXGATE_BIN" --lead 2 --gap "$RELOAD_GAP" --steps "$RELOAD_STEPS" > "$RUN/rdriver.out" 2> "$RUN/rdriver.err"
    else
      timeout $((rs+30)) python3 "$BENCH/tools/reload_driver.py" nginx "$cfg" "${PID[$t]}" --lead 2 --gap "$RELOAD_GAP" --steps "$RELOAD_STEPS" \
        > "$RUN/rdriver.out" 2> "$RUN/rdriver.err"
    fi
    join_one rwrk; join_one rsse
    cp "$RUN/rwrk.out" "$OUT/raw/reload_${lm}_$t.txt"
    tail -n +$((lines0+1)) "$logf" | grep -v 'Request processed' | tail -200 > "$OUT/raw/reload_${lm}_$t.log"   # lifecycle lines, no keys
    local rps nreq non2xx sockerr sse warn
    read -r rps _ _ nreq non2xx sockerr < <(python3 "$BENCH/tools/parse_wrk.py" < "$RUN/rwrk.out")
    sse=$(tail -1 "$RUN/rsse.out"); case $sse in '{'*) ;; *) sse=null;; esac
    # warnings and errors the proxy logged during the scenario (its log lines only; request lines are info/trace)
    warn=$(tail -n +$((lines0+1)) "$logf" | grep -ciE '(^|[^a-z])(warn|warning|error|crit|alert|emerg|fatal)([^a-z]|$)')
    [ -s "$RUN/rdriver.err" ] && log "reload driver: $(head -c 300 "$RUN/rdriver.err")"
    while read -r line; do
      echo "{\"logmode\":\"$lm\",\"target\":\"$t\",\"kind\":\"step\",\"step_result\":$line}" >> "$RLD"
      log "reload $lm $t: $line"
    done < "$RUN/rdriver.out"
    echo "{\"logmode\":\"$lm\",\"target\":\"$t\",\"kind\":\"load\",\"seconds\":$rs,\"wrk\":{\"rps\":\"$rps\",\"requests\":$nreq,\"non2xx\":$non2xx,\"sockerr\":$sockerr},\"sse\":$sse,\"log_warnings\":$warn,\"steps\":$(grep -c . "$RUN/rdriver.out")}" >> "$RLD"
    log "reload $lm $t: wrk n=$nreq non2xx=$non2xx sockerr=$sockerr; streams $(echo "$sse" | sed 's/, "when": \[[^]]*\(\][^]]*\)*\]//'); $warn warning/error log lines"
    [ -n "$warn" ] && [ "$warn" -gt 0 ] && tail -n +$((lines0+1)) "$logf" | grep -iE '(^|[^a-z])(warn|warning|error|crit|alert|emerg|fatal)([^a-z]|$)' \
      | head -5 | cut -c1-300 >> "$OUT/driver.log"
  done
}

# ---------------------------------------------------------------- main
log "mode=$MODE out=$OUT DUR=$DUR REPS=$REPS scenarios=[$SCENARIOS] logmodes=[$LOGMODES] targets=[$TARGETS]"
# S5's paced mock and probe in C when a compiler is there: the Python ones serve every stream from
# one interpreter thread, which at c=32 added more to the first event than any proxy did.
SSE_BENCH=""
if command -v cc >/dev/null && cc -O2 -o "$RUN/sse_bench" "$BENCH/tools/sse_bench.c" -lm 2> "$RUN/sse_bench.cc.log"; then
  SSE_BENCH=$RUN/sse_bench
else
  log "no C compiler (or sse_bench.c did not build): S5 uses the Python mock and probe"
fi
# AB_SLICE_MS: the paired A/B pairs by tools/abload.c (slices of AB_SLICE_MS) instead of 1 s wrk bursts
ABLOAD=""
if [ -n "$AB_PAIRS" ] && [ -n "${AB_SLICE_MS:-}" ]; then
  cc -O2 -o "$RUN/abload" "$BENCH/tools/abload.c" -lpthread 2> "$RUN/abload.cc.log" && ABLOAD=$RUN/abload \
    || { log "tools/abload.c did not build ($(head -c 200 "$RUN/abload.cc.log")): 1 s wrk bursts instead"; }
fi
{ echo "date: $(date -Is)"; echo "command: bench/run.sh $*"; uname -a; echo "nproc: $(nproc)"; grep -m1 'model name' /proc/cpuinfo
  echo "loadavg at start: $(cat /proc/loadavg)"; nginx -v 2>&1; haproxy -v | head -1; wrk --version 2>&1 | head -1
  echo "fluxgate: $FLUXGATE_BIN ($(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- Sources || echo ' + uncommitted changes'))"
  echo "ports: mock=$MOCK_PORT paced=$PACED_PORT bulk=$BULK_PORT $(for t in "${!PORT[@]}"; do printf '%s=%s ' $t "${PORT[$t]}"; done)"
  echo "DUR=$DUR REPS=$REPS SCENARIOS=$SCENARIOS LOGMODES=$LOGMODES"
  if [ -n "$SSE_BENCH" ]; then echo "paced SSE mock and S5 probe: C (tools/sse_bench.c)"
  else echo "paced SSE mock and S5 probe: Python (tools/paced_sse_mock.py, tools/sse_probe.py)"; fi; } > "$OUT/env.txt" 2>&1

render "$BENCH/conf/nginx-mock.conf.tmpl" "$RUN/mock.conf" "$MOCK_PORT" 2
launch mock "${PIN_CLIENT[@]}" nginx -p "$RUN" -c "$RUN/mock.conf" -g 'daemon off;'
if [ -n "$SSE_BENCH" ]; then
  launch paced env UPSTREAM_KEY=$UPSTREAM_KEY "$SSE_BENCH" mock "$PACED_PORT" 50 20
else
  launch paced env UPSTREAM_KEY=$UPSTREAM_KEY python3 "$BENCH/tools/paced_sse_mock.py" "$PACED_PORT" 50 20
fi
launch bulk python3 "$BENCH/tools/body_mock.py" "$BULK_PORT"
case " $TARGETS " in *" fluxgate2redis "*|*" fluxgate1gwredis "*)
  command -v redis-server >/dev/null || { log "redis-server missing: run .ci/install-deps"; exit 1; }
  launch redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
  for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done;;
esac
wait_http "http://127.0.0.1:$MOCK_PORT/health" 10 200 || exit 1
wait_http "http://127.0.0.1:$BULK_PORT/health" 10 401 || exit 1
MOCKS=("${STARTED[@]}")

for lm in $LOGMODES; do
  proxies=(); for t in $TARGETS; do [ $t != direct ] && proxies+=($t); done
  for t in "${proxies[@]}"; do start_proxy $t $lm; done
  for t in "${proxies[@]}"; do
    wait_http "http://127.0.0.1:${PORT[$t]}/v1/health" 20 401 || { log "$t did not come up:"; tail -5 "$RUN/$t.out" >&2; stop_one $t; continue; }
    sleep 0.2; mem_sample $lm $t idle
  done
  targets=(); for t in $TARGETS; do [ $t = direct ] || [ -n "${PID[$t]:-}" ] && targets+=($t); done
  for t in "${targets[@]}"; do   # sanity: 200 through the rewrite chain, right body size; then warm up
    for p in json sse; do
      read -r url key model stream < <(target_url $t $p)
      code=$(curl -s -o "$RUN/sanity.out" -w '%{http_code}' -m 10 -X POST -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' -d "{\"model\":\"$model\",\"stream\":$stream}" "$url")
      log "sanity $lm $t $p -> HTTP $code, $(wc -c < "$RUN/sanity.out") bytes"
    done
    read -r url key model stream < <(target_url $t json)
    BODY_MODEL=$model BODY_STREAM=false timeout 10 wrk -t1 -c8 -d1s -s "$BENCH/tools/post.lua" -H "Authorization: Bearer $key" "$url" > /dev/null 2>&1
  done
  [ -n "$AB_PAIRS" ] && paired $lm
  for ((rep=1; rep<=REPS; rep++)); do
    [ -n "$AB_PAIRS" ] && break
    log "logging $lm rep $rep, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
    for sc in $WRK_SCENARIOS; do
      for t in $(rotate $((rep-1)) "${targets[@]}"); do
        [ "${sc%_*}" = json ] && [ $t = nginx1t ] && continue   # 16k buffers only matter for SSE
        [ "${sc%_*}" = sse ] && [ $t = fluxgate1mr ] && continue # its SSE goes by prefix, as fluxgate1's
        run_wrk $lm $sc $t $rep
      done
    done
  done
  for t in "${proxies[@]}"; do [ -n "${PID[$t]:-}" ] && mem_sample $lm $t after_load; done
  [ "$FIDELITY" = 1 ] && fidelity $lm
  [ $DO_BIGBODY = 1 ] && bigbody $lm
  [ "$SOAK_S" -gt 0 ] && [ $lm = off ] && soak $lm
  [ $DO_RELOAD = 1 ] && reload_under_load $lm
  [ $lm = on ] && for t in "${proxies[@]}"; do
    for f in "$RUN/$t.out" "$RUN/$t.access.log"; do [ -f "$f" ] && log "$lm $t log: $(wc -l < "$f") lines in $(basename "$f")"; done; done
  for t in "${proxies[@]}"; do stop_one $t; done
  stop_one fluxgate1m_scraper; stop_one fluxgate1gw_scraper; stop_one fluxgate1gwredis_scraper
  STARTED=("${MOCKS[@]}")
done

# S9: the extra time a refused connection costs a request (issue 21: < 5 ms at p99). fluxgate1
# against fluxgate1r, whose JSON upstream has a refused target first (weight 1000 to the mock's 1,
# health.failures 255: every one of the 200 sequential requests tries it, fails over, and it is
# not yet taken out), one keep-alive connection each, same run.
REF=$OUT/refused.tsv; echo -e "proxy\trequests\tresult" > "$REF"
REFUSED_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for t in fluxgate1 fluxgate1r; do
  render "$BENCH/conf/fluxgate.yaml.tmpl" "$RUN/$t-s9.yaml" "${PORT[fluxgate1]}" 1
  [ $t = fluxgate1r ] && python3 "$BENCH/tools/two_targets.py" "$RUN/$t-s9.yaml" "$MOCK_PORT" "$UPSTREAM_KEY" \
    --refused "$REFUSED_PORT"
  launch s9$t env FLUXGATE_LOG=info "$FLUXGATE_BIN" --config "$RUN/$t-s9.yaml" --control-socket "$RUN/$t-s9.sock"
  if wait_http "http://127.0.0.1:${PORT[fluxgate1]}/none" 20 401; then
    r=$(timeout 120 python3 "$BENCH/tools/latency_probe.py" "http://127.0.0.1:${PORT[fluxgate1]}/v1/chat/completions" "$CLIENT_KEY" 200)
    echo -e "$t\t200\t$r" >> "$REF"; log "S9 refused $t: $r"
  fi
  stop_one s9$t
done

# S10: the latency a Redis-backed requests limit adds below saturation (issue 22: p99 <= 0.3 ms).
# fluxgate2 against fluxgate2redis (the same proxy, the bench key limited in the redis-server
# started above), both running, probed together by `latency_probe.py --ab`: S10_N sequential
# requests to each on one keep-alive connection each (a fixed rate far below saturation), in
# blocks of S10_BLOCK requests alternating between the two, so both sides see the same machine
# state (the reps before session 13 took a whole rep of each in turn, minutes apart, and the
# no-limit rep's own p99 moved by more than the goal between reps). S10_REPS such reps; each
# prints its added p50 and p99 (Redis-backed minus no limit) with a 95% block-bootstrap interval
# of the added p99, and the reps' latencies are pooled at the end (tools/s10_pool.py).
# Then redis_probe.py: Redis's own PING and EVALSHA round trips (the floor of what a check adds)
# and redis-server's µs per check, alone and batched; and INFO commandstats over S10 (what the
# proxy's checks cost the server: `evalsha_usec_per_call`, one call per batch of checks).
case " $TARGETS " in *" fluxgate2redis "*)
  RL=$OUT/redis-latency.tsv; echo -e "proxy	rep	result" > "$RL"
  redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT > /dev/null
  up=1
  for t in fluxgate2 fluxgate2redis; do
    render "$BENCH/conf/fluxgate.yaml.tmpl" "$RUN/$t-s10.yaml" "${PORT[$t]}" 2
    [ $t = fluxgate2redis ] && { echo "      limits: { requests_per_minute: 1000000 }"
      printf 'rate_limits:\n  redis:\n    url: redis://127.0.0.1:%s/0\n    timeout_ms: 50\n    on_unavailable: reject\n' "$REDIS_PORT"; } >> "$RUN/$t-s10.yaml"
    launch s10$t env FLUXGATE_LOG=info "$FLUXGATE_BIN" --config "$RUN/$t-s10.yaml" --control-socket "$RUN/$t-s10.sock"
    wait_http "http://127.0.0.1:${PORT[$t]}/none" 20 401 || { log "S10: $t did not come up"; up=0; }
  done
  if [ $up = 1 ]; then
    for ((i=1; i<=${S10_REPS:-3}; i++)); do
      r=$(timeout 600 python3 "$BENCH/tools/latency_probe.py" --ab "http://127.0.0.1:${PORT[fluxgate2]}/v1/chat/completions" \
        "http://127.0.0.1:${PORT[fluxgate2redis]}/v1/chat/completions" "$CLIENT_KEY" "${S10_N:-5000}" \
        --block "${S10_BLOCK:-50}" --seed "$i" --dump "$OUT/s10-rep$i.tsv")
      echo -e "ab\t$i\t$r" >> "$RL"; log "S10 rep $i (a: fluxgate2, b: fluxgate2redis): $r"
    done
    r=$(python3 "$BENCH/tools/s10_pool.py" "$OUT"/s10-rep*.tsv); echo -e "pooled\t-\t$r" >> "$RL"; log "S10 pooled: $r"
  fi
  stop_one s10fluxgate2; stop_one s10fluxgate2redis
  r=$(python3 "$BENCH/tools/redis_probe.py" "$REDIS_PORT" --commandstats); echo -e "redis\tS10\t$r" >> "$RL"
  log "S10 redis-server during S10: $r"
  r=$(timeout 300 python3 "$BENCH/tools/redis_probe.py" "$REDIS_PORT" "${S10_N:-5000}"); echo -e "redis_probe\t-\t$r" >> "$RL"
  log "S10 redis_probe (Redis alone): $r"
  ;;
esac

# S6: launch -> first 200 through the chain (fluxgate 1 worker vs nginx 1 worker), mocks still up
echo -e "proxy\ttrial\tlaunch_to_first_200_ms\trss_kb_after_first_request" > "$COLD"
for ((i=1; i<=COLDSTART_TRIALS; i++)); do
  for t in fluxgate1 nginx1; do
    case $t in
      fluxgate1) render "$BENCH/conf/fluxgate.yaml.tmpl" "$RUN/cold.yaml" "${PORT[$t]}" 1
                 cmd=(env FLUXGATE_LOG=info "$FLUXGATE_BIN" --config "$RUN/cold.yaml" --control-socket "$RUN/cold.sock");;
      nginx1)    render "$BENCH/conf/nginx-proxy.conf.tmpl" "$RUN/cold.conf" "${PORT[$t]}" 1
                 cmd=(nginx -p "$RUN" -c "$RUN/cold.conf" -g 'daemon off;');;
    esac
    r=$(timeout 30 python3 "$BENCH/tools/coldstart.py" "http://127.0.0.1:${PORT[$t]}/v1/chat/completions" "$CLIENT_KEY" -- "${cmd[@]}")
    echo -e "$t\t$i\t$r" >> "$COLD"; log "coldstart $t #$i: $r"
  done
done
stop_all
python3 "$BENCH/tools/summarize.py" "$OUT" | tee "$OUT/summary.md"
log "done; results in $OUT"
