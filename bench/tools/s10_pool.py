#!/usr/bin/env python3
"""s10_pool.py DUMP...: S10's reps pooled (bench/run.sh; each DUMP is a `latency_probe.py --ab
--dump` file: "side<TAB>block<TAB>ms" lines, side a the no-limit proxy, b the Redis-backed one).

Prints one line: the pooled p50/p99 of each side, the added p50 and p99 (b minus a) with a 95%
bootstrap interval of the added p99 (the pairs of adjacent blocks of every rep resampled with
replacement, 1,000 times), and the per-rep added p99s with their median and how many are
<= 0.3 ms (issue 22's goal).
"""
import os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from latency_probe import added_p99_interval, pct  # noqa: E402 (the probe's own statistics)


def load(path):
    blocks = {"a": {}, "b": {}}
    for line in open(path):
        side, block, ms = line.split("\t")
        blocks[side].setdefault(int(block), []).append(float(ms))
    return [(blocks["a"][k], blocks["b"][k]) for k in sorted(blocks["a"]) if k in blocks["b"]]


def main(paths):
    reps = [load(path) for path in paths]
    pairs = [pair for rep in reps for pair in rep]
    if not pairs:
        return print("no samples")
    a = [ms for x, _ in pairs for ms in x]
    b = [ms for _, y in pairs for ms in y]
    low, high = added_p99_interval([x for x, _ in pairs], [y for _, y in pairs], random.Random(1))
    per_rep = sorted(
        pct([ms for _, y in rep for ms in y], 0.99) - pct([ms for x, _ in rep for ms in x], 0.99) for rep in reps if rep)
    print(f"reps={len(reps)} n_a={len(a)} n_b={len(b)} a_p50_ms={pct(a, 0.5):.3f} a_p99_ms={pct(a, 0.99):.3f} "
          f"b_p50_ms={pct(b, 0.5):.3f} b_p99_ms={pct(b, 0.99):.3f} added_p50_ms={pct(b, 0.5) - pct(a, 0.5):+.3f} "
          f"added_p99_ms={pct(b, 0.99) - pct(a, 0.99):+.3f} added_p99_ci95_ms={low:+.3f},{high:+.3f} "
          f"rep_added_p99_ms={','.join(f'{d:+.3f}' for d in per_rep)} "
          f"rep_median_added_p99_ms={per_rep[len(per_rep) // 2]:+.3f} reps_le_0.3ms={sum(d <= 0.3 for d in per_rep)}")


if __name__ == "__main__":
    main(sys.argv[1:])
