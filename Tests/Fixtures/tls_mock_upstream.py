#!/usr/bin/env python3
"""An HTTPS upstream for fluxgate's TLS tests, built only on Python's standard library (ssl,
http.server): an implementation independent of fluxgate's own TLS code.

usage: tls_mock_upstream.py CERT KEY   -> prints "PORT <n>" once listening on 127.0.0.1

Paths: /stats (handshakes so far), /sse (three events 300 ms apart, chunked), /truncate (a
body delimited by connection close, cut without close_notify), /bytes?n=N (N pattern bytes),
POST anything (length and sha256 of the body), anything else: a fixed body with two Set-Cookie.
"""
import hashlib, http.server, json, socket, ssl, sys, threading, time, urllib.parse

handshakes = 0
lock = threading.Lock()
BLOCK = bytes((i * 31 + 7) & 0xFF for i in range(64 * 1024))  # MockPattern.block


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path.endswith("/stats"):
            with lock:
                body = json.dumps({"handshakes": handshakes}).encode()
            return self.fixed(200, body, [("content-type", "application/json")])
        if url.path.endswith("/sse"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for word in ("one", "two", "three"):
                chunk = f"data: {word}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                time.sleep(0.3)
            self.wfile.write(b"0\r\n\r\n")
            return
        if url.path.endswith("/truncate"):
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("connection", "close")  # body ends at connection close
            self.end_headers()
            self.wfile.write(b"partial body that the attacker cuts here")
            self.wfile.flush()
            time.sleep(0.2)
            # shutdown(2) on the socket underneath: TCP FIN with no TLS close_notify.
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
            self.close_connection = True
            return
        if url.path.endswith("/bytes"):
            n = int(urllib.parse.parse_qs(url.query)["n"][0])
            self.send_response(200)
            self.send_header("content-length", str(n))
            self.end_headers()
            while n > 0:
                k = min(n, len(BLOCK))
                self.wfile.write(BLOCK[:k])
                n -= k
            return
        self.fixed(200, b'{"ok":true,"path":"' + url.path.encode() + b'"}\n',
                   [("content-type", "application/json"), ("set-cookie", "a=1"), ("set-cookie", "b=2"),
                    ("x-upstream", "python-ssl")])

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        digest, left = hashlib.sha256(), n
        while left > 0:
            data = self.rfile.read(min(left, 1 << 20))
            if not data:
                break
            digest.update(data)
            left -= len(data)
        body = json.dumps({"length": n - left, "sha256": digest.hexdigest()}, separators=(",", ":")).encode()
        self.fixed(200, body, [("content-type", "application/json")])

    def fixed(self, status, body, headers):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context):
        self.context = context
        super().__init__(("127.0.0.1", 0), Handler)

    def get_request(self):
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request, address):
        global handshakes
        try:
            request.settimeout(10)
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return  # a client that rejected our certificate
        with lock:
            handshakes += 1
        super().finish_request(request, address)


def main():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    context.set_alpn_protocols(["http/1.1"])
    server = Server(context)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
