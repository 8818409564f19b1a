#!/usr/bin/env bash
# bench/redis-callgrind.sh - redis-server's instructions per rate-limit check (docs/rate-limits.md
# "Across hosts"), stable under load unlike INFO commandstats' µs.
#
#   bench/redis-callgrind.sh [MODE=single] [N=2000] [LEGACY_SOURCE]
#     MODE: single (one check per EVALSHA, pipelined 64 at a time), batchB (B checks per EVALSHA,
#           e.g. batch32), legacy (the sorted-set script of LEGACY_SOURCE, an older
#           Sources/worker/Limits/RedisRateLimiter.swift: `git show 76280fc:Sources/worker/Limits/RedisRateLimiter.swift`)
#
# Starts redis-server under `valgrind --tool=callgrind` on a free loopback port (no persistence),
# sends N checks to warm the key (one key, limit 1,000,000), zeroes the counters, sends N more,
# dumps, and prints the instructions of the dump divided by N (KEEP=FILE: the dump is kept there).
# Stops what it started.
set -u
BENCH=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$BENCH")
MODE=${1:-single}; N=${2:-2000}; LEGACY=${3:-}
[ "$MODE" = legacy ] && [ -z "$LEGACY" ] && { echo "legacy needs LEGACY_SOURCE" >&2; exit 1; }
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
D=$(mktemp -d /tmp/fluxgate-redis-callgrind.XXXXXX)
valgrind --tool=callgrind --callgrind-out-file="$D/cg.out" redis-server --port "$PORT" --bind 127.0.0.1 \
  --save '' --appendonly no --daemonize no > "$D/redis.log" 2>&1 &
VP=$!
trap 'kill $VP 2>/dev/null; wait $VP 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 300); do redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
python3 - "$PORT" "$MODE" "$N" "$ROOT" "$LEGACY" <<'PY'
import subprocess, sys
port, mode, n, root, legacy = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
probe = root + "/bench/tools/redis_probe.py"
g = {"__file__": probe}
exec(compile(open(probe).read().replace("\nmain()\n", "\n"), probe, "exec"), g)
c, resp = g["Conn"](port), g["resp"]
source = g["script_source"](legacy if mode == "legacy" else root + "/Sources/worker/Limits/RedisScript.swift")
sha = c.call("SCRIPT", "LOAD", source).decode()
per = int(mode[5:]) if mode.startswith("batch") else 1
def command(i, checks):
    if mode == "legacy":
        return resp("EVALSHA", sha, 1, "k", 60000000, 1000000, f"m-{i}")
    return resp("EVALSHA", sha, 1, "k", 60000000, 61000, 1000000, *([1] * checks))
def run(count, base):
    done = 0
    while done < count:
        # 64 commands a write at most; the last command holds what is left of `count`.
        sizes = []
        while len(sizes) < 64 and done + sum(sizes) < count:
            sizes.append(min(per, count - done - sum(sizes)))
        commands = [command(base + done + i, k) for i, k in enumerate(sizes)]
        c.s.sendall(b"".join(commands))
        for _ in commands:
            c.reply()
        done += sum(sizes)
run(n, 0)
subprocess.run(["callgrind_control", "-z"], capture_output=True)
run(n, n)
subprocess.run(["callgrind_control", "-d"], capture_output=True)
PY
for _ in $(seq 1 50); do [ -f "$D/cg.out.1" ] && break; sleep 0.1; done
total=$(callgrind_annotate "$D/cg.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
echo "mode=$MODE checks=$N redis_instructions_per_check=$((total / N))"
# KEEP=FILE keeps the dump (for callgrind_annotate and /work/tools/cgdiff.py).
[ -n "${KEEP:-}" ] && cp "$D/cg.out.1" "$KEEP"
