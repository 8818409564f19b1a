#!/usr/bin/env bash
# bench/callgrind-rows.sh - the instruction rows of docs/performance.md, one bench/callgrind.sh run each.
#
#   bench/callgrind-rows.sh BINDIR PREFIX [ROW...]   # ROWs: plainjson plainsse usagejson usagesse gw
#                                                    #       gwredis models twotargets limit nginx
#                                                    #       (default: plainjson usagejson usagesse gw)
#
# BINDIR holds fluxgate and fluxgate-worker (a release build: packaging/swift-build-release
# --scratch-path .build-bench, copied out so that a rebuild does not change what is measured).
# Each row is bench/callgrind.sh 2000 (c=1, logging off) with the row's configuration, results in
# /tmp/PREFIX-ROW/ (results.tsv, the dump, the top functions); prints "ROW instructions/request".
# Compare two dumps function by function with callgrind_annotate (docs/performance.md).
set -u
BENCH=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { sed -n 2,12p "$0"; exit 2; }
BIN=$(cd "$1" && pwd); PREFIX=$2; shift 2
ROWS=${*:-"plainjson usagejson usagesse gw"}
for row in $ROWS; do
  case $row in
    plainjson) set -- USAGE=off TARGETS=fluxgate PAYLOADS=json;;
    plainsse) set -- USAGE=off TARGETS=fluxgate PAYLOADS=sse;;
    usagejson) set -- USAGE=auto TARGETS=fluxgate PAYLOADS=json;;
    usagesse) set -- USAGE=auto TARGETS=fluxgate PAYLOADS=sse;;
    gw) set -- USAGE=auto TARGETS=fluxgate PAYLOADS=json FLUXGATE_CONF=conf/fluxgate-gateway.yaml.tmpl;;
    gwredis) set -- USAGE=auto TARGETS=fluxgate PAYLOADS=json FLUXGATE_CONF=conf/fluxgate-gateway.yaml.tmpl REDIS=1;;
    models) set -- USAGE=auto TARGETS=fluxgate PAYLOADS=json FLUXGATE_CONF=conf/fluxgate-models.yaml.tmpl;;
    twotargets) set -- USAGE=auto TARGETS=fluxgate PAYLOADS=json FLUXGATE_CONF=conf/fluxgate-2t.yaml.tmpl;;
    limit) set -- USAGE=auto TARGETS=fluxgate PAYLOADS=json FLUXGATE_CONF=conf/fluxgate-rl.yaml.tmpl;;
    nginx) set -- TARGETS=nginx PAYLOADS="json sse";;
    *) echo "unknown row $row" >&2; exit 2;;
  esac
  env "$@" LOGMODES=off FLUXGATE_BIN="$BIN/fluxgate" OUT="/tmp/$PREFIX-$row" "$BENCH/callgrind.sh" 2000 \
    > "/tmp/$PREFIX-$row.log" 2>&1
  echo "$row $(tail -n +2 "/tmp/$PREFIX-$row/results.tsv" | awk '{printf "%s ", $7}')"
done
