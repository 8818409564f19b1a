#!/usr/bin/env bash
# bench/usage-callgrind.sh - instructions the usage reader spends per response, on its own.
#
#   bench/usage-callgrind.sh [N=2000]     # env: SLICE (bytes per feed; default the whole body),
#                                         #      BODIES=real (also bench/usage/openai-chat.json and
#                                         #      anthropic-message.json: the shapes the providers send today,
#                                         #      with `*_details`, `service_tier`, cache counts)
#
# Builds Sources/worker/Usage (without its NIO adapter and the tap observer) with bench/usage/main.swift at -O, then
# runs it under callgrind twice (N and 2N responses) and prints the difference divided by N:
# the reader's instructions per response, start-up and the file read cancelled out. The payloads
# are the bench mocks' (bench/mock/chat.json, bench/mock/sse.txt), as bench/run.sh serves them.
set -eu
BENCH=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$BENCH")
N=${1:-2000}; SLICE=${SLICE:-0}
OUT=$(mktemp -d /tmp/fluxgate-usage-bench.XXXXXX); trap 'rm -rf "$OUT"' EXIT
SRC=$(ls "$ROOT"/Sources/worker/Usage/*.swift | grep -v -e '+ByteBuffer' -e 'UsageObserver')
# swiftc leaves the module files (UsageBench-1.swiftmodule, …) in its working directory: build in $OUT.
(cd "$OUT" && swiftc -O -enforce-exclusivity=unchecked -wmo -module-name UsageBench -gnone \
  -I "$ROOT/Sources/CZlib" -I "$ROOT/Sources/CBrotli" -I "$ROOT/Sources/CZstd" -I "$ROOT/Sources/CByteClasses" \
  $SRC "$ROOT/Sources/worker/HTTP1/ASCIIBytes.swift" "$BENCH/usage/main.swift" -o "$OUT/usage-bench")
count() {  # count FILE TYPE N -> total instructions
  local slice=$SLICE; [ "$slice" = 0 ] && slice=$(stat -c %s "$1")
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" "$OUT/usage-bench" "$1" "$2" "$3" "$slice" \
    > "$OUT/run.out" 2> "$OUT/run.err"
  grep -m1 '^summary:' "$OUT/cg.out" | awk '{print $2}'
}
PAYLOADS=("json application/json $ROOT/bench/mock/chat.json" "sse text/event-stream $ROOT/bench/mock/sse.txt")
[ "${BODIES:-}" = real ] && PAYLOADS+=("openai-chat application/json $BENCH/usage/openai-chat.json" \
  "anthropic-message application/json $BENCH/usage/anthropic-message.json")
for p in "${PAYLOADS[@]}"; do
  set -- $p
  a=$(count "$3" "$2" "$N"); b=$(count "$3" "$2" $((2 * N)))
  events=$(grep -c '^data' "$3" || true)
  per=$(( (b - a) / N ))
  echo -e "$1\tinstructions_per_response=$per\tevents=$events\tper_event=$(( per / (events > 0 ? events : 1) ))\t$(sed -n 's/^result: //p' "$OUT/run.out")"
done
