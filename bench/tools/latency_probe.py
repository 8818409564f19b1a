#!/usr/bin/env python3
"""Sequential JSON POSTs (post.lua's body) on one keep-alive connection; the latency of each is
request written -> response read in full.

  latency_probe.py URL KEY N
      N requests; prints "ok=<n> bad=<n> p50_ms=<x> p99_ms=<y>". For S9: the extra time a
      refused connection costs a request.

  latency_probe.py --ab URL_A URL_B KEY N [--block B] [--warmup W] [--dump FILE] [--seed S]
      For S10: what B adds to A's latency, both measured in the same minutes. One connection to
      each; W requests to each first (not counted: connections, Redis's script load); then N to
      each in blocks of B requests, the two sides alternating block by block (A B, then B A, so
      neither always goes first), so both see the same machine state at a distance of B requests
      rather than of a whole rep. Prints the ok/bad counts, p50/p99 of each side, the added
      p50 and p99 (B minus A) and a 95% bootstrap interval of the added p99 (pairs of adjacent
      blocks resampled with replacement, 1,000 times: latencies of neighbouring requests are
      not independent, so blocks are resampled, not requests). --dump writes every latency as
      "side<TAB>block<TAB>ms" lines, for pooling reps.

The client does as little as it can between the clock readings: one sendall, then recv into one
buffer, the status line and Content-Length found by byte search (no file object, no header
decoding), so what is measured is the proxy's time, not the probe's.
"""
import random, socket, sys, time
from urllib.parse import urlparse

BODY = (b'{"model":"mock-json","stream":false,"messages":[{"role":"user","content":"Say hello."}],'
        b'"max_tokens":64,"temperature":0}')


class Probe:
    def __init__(self, url, key):
        u = urlparse(url)
        self.req = (f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nAuthorization: Bearer {key}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n").encode() + BODY
        self.s = socket.create_connection((u.hostname, u.port), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def one(self):
        """One request: (status, ms)."""
        s, req = self.s, self.req
        t0 = time.perf_counter()
        s.sendall(req)
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response head")
            buf += chunk
        head = buf[:end].lower()
        at = head.find(b"\r\ncontent-length:")
        length = 0
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17:stop if stop >= 0 else len(head)])
        total = end + 4 + length
        while len(buf) < total:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response body")
            buf += chunk
        ms = (time.perf_counter() - t0) * 1000
        self.buf = buf[total:]
        return int(buf[9:12]), ms


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def single(url, key, n):
    probe = Probe(url, key)
    ok = bad = 0
    lat = []
    for _ in range(n):
        status, ms = probe.one()
        lat.append(ms)
        ok, bad = (ok + 1, bad) if status == 200 else (ok, bad + 1)
    print(f"ok={ok} bad={bad} p50_ms={pct(lat, 0.5):.3f} p99_ms={pct(lat, 0.99):.3f}")


def added_p99_interval(blocks_a, blocks_b, rng, rounds=1000):
    """95% interval of p99(B) - p99(A), resampling pairs of adjacent blocks."""
    pairs = list(zip(blocks_a, blocks_b))
    diffs = []
    for _ in range(rounds):
        a, b = [], []
        for _ in range(len(pairs)):
            x, y = pairs[rng.randrange(len(pairs))]
            a += x
            b += y
        diffs.append(pct(b, 0.99) - pct(a, 0.99))
    diffs.sort()
    return diffs[int(rounds * 0.025)], diffs[int(rounds * 0.975) - 1]


def ab(url_a, url_b, key, n, block, warmup, dump, seed):
    probes = [Probe(url_a, key), Probe(url_b, key)]
    for probe in probes:
        for _ in range(warmup):
            probe.one()
    ok, bad = [0, 0], [0, 0]
    blocks = [[], []]
    for index in range(-(-n // block)):
        count = min(block, n - index * block)
        for side in ((0, 1) if index % 2 == 0 else (1, 0)):
            lat = []
            for _ in range(count):
                status, ms = probes[side].one()
                lat.append(ms)
                if status == 200:
                    ok[side] += 1
                else:
                    bad[side] += 1
            blocks[side].append(lat)
    a = [ms for lat in blocks[0] for ms in lat]
    b = [ms for lat in blocks[1] for ms in lat]
    if dump:
        with open(dump, "w") as out:
            for side, name in ((0, "a"), (1, "b")):
                for number, lat in enumerate(blocks[side]):
                    out.writelines(f"{name}\t{number}\t{ms:.4f}\n" for ms in lat)
    low, high = added_p99_interval(blocks[0], blocks[1], random.Random(seed))
    print(f"ok_a={ok[0]} bad_a={bad[0]} ok_b={ok[1]} bad_b={bad[1]} "
          f"a_p50_ms={pct(a, 0.5):.3f} a_p99_ms={pct(a, 0.99):.3f} b_p50_ms={pct(b, 0.5):.3f} b_p99_ms={pct(b, 0.99):.3f} "
          f"added_p50_ms={pct(b, 0.5) - pct(a, 0.5):+.3f} added_p99_ms={pct(b, 0.99) - pct(a, 0.99):+.3f} "
          f"added_p99_ci95_ms={low:+.3f},{high:+.3f} block={block}")


def main(argv):
    if argv and argv[0] == "--ab":
        rest, options = [], {"--block": "50", "--warmup": "200", "--dump": "", "--seed": "1"}
        items = iter(argv[1:])
        for item in items:
            if item in options:
                options[item] = next(items)
            else:
                rest.append(item)
        url_a, url_b, key, n = rest
        ab(url_a, url_b, key, int(n), int(options["--block"]), int(options["--warmup"]), options["--dump"],
           int(options["--seed"]))
    else:
        url, key, n = argv
        single(url, key, int(n))


if __name__ == "__main__":
    main(sys.argv[1:])
