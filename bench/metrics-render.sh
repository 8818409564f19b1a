#!/usr/bin/env bash
# How long the master takes to answer /metrics with 10,000 series (issue 19's < 10 ms): fold the
# live regions, name, render, copy. A release build of bench/metrics-render (the flags of
# packaging/swift-build-release), then its runs; prints the median and slowest in ms.
#
#   bench/metrics-render.sh [series] [runs]        # defaults 10000 50
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${SCRATCH:-.build-bench}
packaging/swift-build-release --scratch-path "$SCRATCH" --product FluxgateMetricsBench >&2
"$(packaging/swift-build-release --scratch-path "$SCRATCH" --show-bin-path)/FluxgateMetricsBench" "${1:-10000}" "${2:-50}"
