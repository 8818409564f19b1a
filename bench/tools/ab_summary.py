#!/usr/bin/env python3
"""ab_summary.py [--pair A:B] [--scenario S] [--logmode L] RESULTS_DIR [RESULTS_DIR ...]
    -> markdown: bench/run.sh's paired A/B blocks (AB_PAIRS), only the rows asked for.

Each row of ab.tsv is one block of one pair: A's and B's throughput and CPU per request, measured
AB_DUR seconds each, back to back. Per (logging mode, scenario, pair), over every block of every
directory given (runs pool): the median of the per-block ratios A/B, throughput and CPU per
request, each with a 95% bootstrap interval (blocks resampled with replacement, 4,000 times, fixed
seed: the same input prints the same interval), and the share of blocks in which A's throughput
was at least B's. A block whose bursts saw a non-2xx answer or a socket error is left out and
counted."""
import csv, os, random, statistics, sys
from collections import defaultdict


def interval(values, rounds=4000):
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(rounds))
    return meds[int(rounds * 0.025)], meds[int(rounds * 0.975) - 1]


def main():
    groups = defaultdict(lambda: {"rps": [], "cpu": [], "a": [], "b": [], "failed": 0})
    args, only = sys.argv[1:], {}
    while args and args[0].startswith("--"):
        only[args[0][2:]] = args[1]
        args = args[2:]
    for d in args:
        path = os.path.join(d, "ab.tsv")
        if not os.path.exists(path):
            continue
        for r in csv.DictReader(open(path), delimiter="\t"):
            if any(r[k] != v for k, v in only.items()):
                continue
            g = groups[(r["logmode"], r["scenario"], r["pair"])]
            try:
                failed = int(r["failed"] or 0)
                ra, rb = float(r["rps_a"]), float(r["rps_b"])
                ca, cb = float(r["cpu_a"]), float(r["cpu_b"])
            except ValueError:
                g["failed"] += 1
                continue
            if failed or not (ra > 0 and rb > 0 and ca > 0 and cb > 0):
                g["failed"] += 1
                continue
            g["rps"].append(ra / rb)
            g["cpu"].append(ca / cb)
            g["a"].append(ra)
            g["b"].append(rb)
    if not groups:
        return
    print("### Paired A/B (AB_PAIRS): A ÷ B per block, median [95% bootstrap interval]\n")
    print("| logging | scenario | A ÷ B | blocks | throughput A ÷ B | CPU/request A ÷ B | blocks A ≥ B | req/s A, B (medians) | left out |")
    print("|---|---|---|---:|---|---|---:|---|---:|")
    for (lm, sc, pair), g in sorted(groups.items()):
        n = len(g["rps"])
        if n == 0:
            print(f"| {lm} | {sc} | {pair.replace(':', ' ÷ ')} | 0 | — | — | — | — | {g['failed']} |")
            continue
        lo, hi = interval(g["rps"])
        clo, chi = interval(g["cpu"])
        share = sum(1 for x in g["rps"] if x >= 1.0) / n
        print(f"| {lm} | {sc} | {pair.replace(':', ' ÷ ')} | {n} | **{statistics.median(g['rps']):.3f}** [{lo:.3f}, {hi:.3f}] "
              f"| {statistics.median(g['cpu']):.3f} [{clo:.3f}, {chi:.3f}] | {share:.0%} "
              f"| {statistics.median(g['a']):,.0f}, {statistics.median(g['b']):,.0f} | {g['failed']} |")
    print()


if __name__ == "__main__":
    main()
