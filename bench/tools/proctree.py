#!/usr/bin/env python3
"""proctree.py PID...         -> "<cpu_ticks> <rss_kb> <nprocs>" summed over each PID and its descendants
   proctree.py --pids PID     -> the PID and all its descendants, space-separated
   proctree.py --rss PID      -> "<root_rss_kb> <descendants_rss_kb> <n_descendants>" (master vs workers)"""
import os, sys

def children():
    ch = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open(f"/proc/{d}/stat").read()
                ppid = int(st[st.rindex(")") + 2:].split()[1])
                ch.setdefault(ppid, []).append(int(d))
            except Exception:
                pass
    return ch

def tree(roots):
    ch, seen, stack = children(), [], list(roots)
    while stack:
        p = stack.pop()
        if p in seen: continue
        seen.append(p); stack.extend(ch.get(p, []))
    return seen

def rss(p):
    try:
        for line in open(f"/proc/{p}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except Exception:
        pass
    return 0

def main():
    args = sys.argv[1:]
    mode = args.pop(0) if args and args[0].startswith("--") else None
    roots = [int(p) for p in args if p.isdigit()]
    if mode == "--pids":
        print(" ".join(map(str, tree(roots))))
    elif mode == "--rss":
        t = tree(roots[:1])
        print(rss(t[0]) if t else 0, sum(rss(p) for p in t[1:]), len(t) - 1 if t else 0)
    else:
        ticks = rs = n = 0
        for p in tree(roots):
            try:
                st = open(f"/proc/{p}/stat").read()
                f = st[st.rindex(")") + 2:].split()
                ticks += int(f[11]) + int(f[12])   # utime + stime
                rs += rss(p); n += 1
            except Exception:
                pass
        print(ticks, rs, n)


if __name__ == "__main__":
    main()
