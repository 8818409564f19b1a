#!/usr/bin/env python3
"""fixed_load.py URL KEY PAYLOAD(json|sse) N [CONC=1] [TIME_LIMIT_S=600]
Sends exactly N POSTs (the wrk body of post.lua) over CONC keep-alive connections, reads every
response in full (Content-Length or chunked), prints "ok=<n> bad=<n> seconds=<s>". For callgrind,
where a fixed request count matters more than speed."""
import socket, sys, threading, time
from urllib.parse import urlparse

url, key, payload, N = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
CONC = int(sys.argv[5]) if len(sys.argv) > 5 else 1
TLIM = float(sys.argv[6]) if len(sys.argv) > 6 else 600.0
u = urlparse(url)
model, stream = ("mock-stream", "true") if payload == "sse" else ("mock-json", "false")
body = ('{"model":"%s","stream":%s,"messages":[{"role":"system","content":"You are a helpful assistant."},'
        '{"role":"user","content":"Say hello and explain in two sentences what a reverse proxy does."}],'
        '"max_tokens":64,"temperature":0}' % (model, stream)).encode()
req = (f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nAuthorization: Bearer {key}\r\n"
       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
deadline = time.time() + TLIM
counts = {"ok": 0, "bad": 0}
lock = threading.Lock()


def read_response(f):
    status = int(f.readline().split()[1])
    clen, chunked = None, False
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        if k == b"content-length":
            clen = int(v)
        elif k == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        while True:
            sz = int(f.readline().split(b";")[0], 16)
            f.read(sz + 2)
            if sz == 0:
                break
    elif clen:
        f.read(clen)
    return status


def worker(n):
    s = socket.create_connection((u.hostname, u.port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    for _ in range(n):
        if time.time() > deadline:
            break
        s.sendall(req)
        st = read_response(f)
        with lock:
            counts["ok" if st == 200 else "bad"] += 1
    s.close()


t0 = time.time()
th = [threading.Thread(target=worker, args=(N // CONC + (1 if i < N % CONC else 0),)) for i in range(CONC)]
for t in th:
    t.start()
for t in th:
    t.join()
print(f"ok={counts['ok']} bad={counts['bad']} seconds={time.time() - t0:.1f}")
