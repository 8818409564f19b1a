#!/usr/bin/env python3
"""latency_probe.py URL KEY N: N sequential JSON POSTs (post.lua's body) on one keep-alive
connection; prints "ok=<n> bad=<n> p50_ms=<x> p99_ms=<y>" of the per-request latencies (request
written -> response read in full). For S9: the extra time a refused connection costs a request."""
import socket, sys, time
from urllib.parse import urlparse

url, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urlparse(url)
body = (b'{"model":"mock-json","stream":false,"messages":[{"role":"user","content":"Say hello."}],'
        b'"max_tokens":64,"temperature":0}')
req = (f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nAuthorization: Bearer {key}\r\n"
       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
s = socket.create_connection((u.hostname, u.port), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
ok = bad = 0
lat = []
for _ in range(n):
    t0 = time.perf_counter()
    s.sendall(req)
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    f.read(length)
    lat.append((time.perf_counter() - t0) * 1000)
    ok, bad = (ok + 1, bad) if status == 200 else (ok, bad + 1)
lat.sort()
print(f"ok={ok} bad={bad} p50_ms={lat[len(lat) // 2]:.3f} p99_ms={lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.3f}")
