#!/usr/bin/env python3
"""redis_probe.py PORT [N] [--legacy OLD_SOURCE.swift] [--batch B] [--commandstats]

What a Redis-backed requests limit costs in Redis itself (docs/rate-limits.md "Across hosts"),
for S10 (bench/run.sh) and for comparing scripts. Against the redis-server on 127.0.0.1:PORT:

* round trips: N sequential PINGs, then N sequential EVALSHAs of the check script (one check,
  key `probe:admissions:k:probe`, limit 1,000,000, expiry 61,000 ms), each request written -> reply read: p50/p99 ms.
  Redis's own round trip is the floor of what a check can add to a request's latency;
* redis-server's µs per check (INFO commandstats, the delta of `cmdstat_evalsha` over the run):
  N checks pipelined 64 at a time as one check per EVALSHA, then (without --legacy) the same N
  checks B per EVALSHA (`RedisCheckBatch`: one script run for B checks), and the memory per
  admission (`used_memory` delta over the N + N admissions of a fresh key).

The script is read from Sources/worker/Limits/RedisScript.swift (the one the worker loads), or,
with --legacy FILE, from an older Swift source holding the sorted-set script (arguments: keys,
window, limit, member) to measure the script before. --commandstats only prints the server's
`cmdstat_evalsha` and `cmdstat_eval` lines (what the proxies' checks cost during a run).
Prints one line of key=value. Loopback only; starts nothing.
"""
import os, re, socket, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")

    def reply(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return rest.decode() if kind == b"+" else int(rest)
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError(f"unreadable reply {line!r}")

    def call(self, *args):
        self.s.sendall(resp(*args))
        return self.reply()


def script_source(path):
    text = open(path).read()
    m = re.search(r'static let source = """\n(.*?)\n\s*"""', text, re.S)
    if not m:
        sys.exit(f"no script in {path}")
    lines = m.group(1).split("\n")
    indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return "\n".join(l[indent:] for l in lines)


def commandstats(c):
    info = c.call("INFO", "commandstats").decode()
    stats = {}
    for name, calls, usec in re.findall(r"cmdstat_(\w+):calls=(\d+),usec=(\d+)", info):
        stats[name] = (int(calls), int(usec))
    return stats


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    args = sys.argv[1:]
    port = int(args.pop(0))
    legacy = batch = None
    only_stats = False
    rest = []
    while args:
        a = args.pop(0)
        if a == "--legacy":
            legacy = args.pop(0)
        elif a == "--batch":
            batch = int(args.pop(0))
        elif a == "--commandstats":
            only_stats = True
        else:
            rest.append(a)
    n = int(rest[0]) if rest else 2000
    batch = batch or 32
    c = Conn(port)
    if only_stats:
        s = commandstats(c)
        print(" ".join(f"{k}_calls={v[0]} {k}_usec_per_call={v[1] / max(v[0], 1):.2f}"
                       for k, v in sorted(s.items()) if k in ("evalsha", "eval")) or "evalsha_calls=0")
        return
    source = script_source(legacy or os.path.join(ROOT, "Sources/worker/Limits/RedisScript.swift"))
    sha = c.call("SCRIPT", "LOAD", source).decode()
    key = "probe:sortedset:k:probe" if legacy else "probe:admissions:k:probe"
    c.call("DEL", key)
    seq = [0]

    def check_args():
        if legacy:
            seq[0] += 1
            return ("EVALSHA", sha, 1, key, 60000000, 1000000, f"probe-{seq[0]}")
        return ("EVALSHA", sha, 1, key, 60000000, 61000, 1000000, 1)

    ping, check = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        c.call("PING")
        ping.append((time.perf_counter() - t0) * 1000)
    for _ in range(n):
        t0 = time.perf_counter()
        r = c.call(*check_args())
        check.append((time.perf_counter() - t0) * 1000)
        if (r if isinstance(r, int) else r[0]) != 0:
            sys.exit(f"probe check refused: {r}")
    c.call("DEL", key)
    mem0 = int(re.search(r"used_memory:(\d+)", c.call("INFO", "memory").decode()).group(1))
    before = commandstats(c).get("evalsha", (0, 0))
    done = 0
    while done < n:
        k = min(64, n - done)
        c.s.sendall(b"".join(resp(*check_args()) for _ in range(k)))
        for _ in range(k):
            c.reply()
        done += k
    after = commandstats(c).get("evalsha", (0, 0))
    pipelined = (after[1] - before[1]) / max(after[0] - before[0], 1)
    out = (f"ping_p50_ms={pct(ping, .5):.3f} ping_p99_ms={pct(ping, .99):.3f} "
           f"check_p50_ms={pct(check, .5):.3f} check_p99_ms={pct(check, .99):.3f} "
           f"pipelined_us_per_check={pipelined:.2f}")
    admissions = n
    if not legacy:
        before = commandstats(c).get("evalsha", (0, 0))
        done = 0
        while done < n:
            k = min(batch, n - done)
            r = c.call("EVALSHA", sha, 1, key, 60000000, 61000, 1000000, *([1] * k))
            if any(r):
                sys.exit(f"probe batch refused: {r}")
            done += k
        after = commandstats(c).get("evalsha", (0, 0))
        out += f" batched_us_per_check={(after[1] - before[1]) / n:.2f} batch={batch}"
        admissions += n
    mem1 = int(re.search(r"used_memory:(\d+)", c.call("INFO", "memory").decode()).group(1))
    out += f" bytes_per_admission={(mem1 - mem0) / admissions:.1f}"
    c.call("DEL", key)
    print(out)


main()
