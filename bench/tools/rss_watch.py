#!/usr/bin/env python3
"""rss_watch.py ROOT_PID [INTERVAL_S=0.05] [MAX_S=600]
Samples VmRSS of ROOT_PID (the master) and of its descendants (the workers) every INTERVAL_S
until SIGTERM/SIGINT or MAX_S, then prints "max_master_kb max_workers_kb max_single_worker_kb samples".
Workers are re-listed every sample, so replaced workers are followed."""
import os, signal, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proctree import rss, tree  # noqa: E402

root = int(sys.argv[1])
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
max_s = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
stop = False


def on_signal(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
mm = mw = m1 = n = 0
end = time.monotonic() + max_s
while not stop and time.monotonic() < end:
    t = tree([root])
    if not t:
        break
    ws = [rss(p) for p in t[1:]]
    mm, mw, m1, n = max(mm, rss(t[0])), max(mw, sum(ws)), max([m1] + ws), n + 1
    time.sleep(interval)
print(mm, mw, m1, n)
