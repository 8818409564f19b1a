#!/usr/bin/env python3
"""A stand-in for an LLM provider, for packaging/test-e2e.sh.

Answers every request with a JSON echo of what it received: method, path, the credential
headers and the body. The end-to-end test reads `authorization` from it to see which provider
key fluxgate sent. Usage: mock-upstream.py [PORT] (default 9090, on 127.0.0.1).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        echo = {
            "method": self.command,
            "path": self.path,
            "authorization": self.headers.get("Authorization"),
            "x_api_key": self.headers.get("x-api-key"),
            "body": body.decode("utf-8", "replace"),
        }
        out = (json.dumps(echo, sort_keys=True) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, fmt, *args):
        sys.stderr.write("mock-upstream: " + (fmt % args) + "\n")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9090
    ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()
