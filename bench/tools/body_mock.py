#!/usr/bin/env python3
"""Bulk-body mock upstream for the 1 GiB transfers (stdlib, one thread per connection, keep-alive).
  POST|PUT any path          -> reads the whole request body (Content-Length or chunked), discards
                                it, then answers 200 {"received": N}; the answer comes only after
                                the last byte, so the proxy has to stream the full body up.
  GET .../download/<N>       -> 200 with Content-Length N: N zero bytes from one 1 MiB buffer.
401 unless Authorization is "Bearer <UPSTREAM_KEY>" (env, default upstream-key); a 401 still
reads the body so the connection stays usable. Memory stays flat: nothing is kept.
Usage: body_mock.py PORT"""
import os, socket, sys, threading

PORT = int(sys.argv[1])
KEY = os.environ.get("UPSTREAM_KEY", "upstream-key")
ZEROS = memoryview(bytes(1 << 20))


class Conn:
    def __init__(self, s):
        self.s, self.buf, self.scratch = s, b"", bytearray(1 << 20)

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                return None
            self.buf += d
            if len(self.buf) > 65536:
                return None
        h, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return h

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise ConnectionError("eof in chunk header")
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def discard(self, n):
        got = min(n, len(self.buf))
        self.buf = self.buf[got:]
        mv = memoryview(self.scratch)
        while got < n:
            k = self.s.recv_into(mv, min(len(mv), n - got))
            if not k:
                raise ConnectionError("eof in body")
            got += k
        return got

    def body(self, hdrs):
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            total = 0
            while True:
                sz = int(self.line().split(b";")[0], 16)
                if sz == 0:
                    while self.line():       # trailers up to the empty line
                        pass
                    return total
                total += self.discard(sz)
                self.discard(2)
        return self.discard(int(hdrs.get("content-length", "0") or 0))


def serve(s):
    c = Conn(s)
    try:
        while True:
            h = c.head()
            if h is None:
                return
            lines = h.decode("latin1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            hdrs = {}
            for l in lines[1:]:
                if ":" in l:
                    k, v = l.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            n = c.body(hdrs)
            if hdrs.get("authorization") != f"Bearer {KEY}":
                s.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                continue
            if method == "GET" and "/download/" in path:
                size = int(path.rsplit("/", 1)[1])
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          b"Content-Length: %d\r\n\r\n" % size)
                left = size
                while left:
                    k = min(left, len(ZEROS))
                    s.sendall(ZEROS[:k])
                    left -= k
            else:
                b = b'{"received":%d}' % n
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
            if hdrs.get("connection", "").lower() == "close":
                return
    except (ConnectionError, OSError, ValueError):
        pass
    finally:
        s.close()


def main():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", PORT))
    ls.listen(128)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    main()
