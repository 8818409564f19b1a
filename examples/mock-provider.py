#!/usr/bin/env python3
"""A fake LLM provider for trying fluxgate offline (Python 3 standard library only).

    python3 examples/mock-provider.py [--port 8081]

Listens on 127.0.0.1 and answers like the real APIs, with a canned reply that repeats the last
user message:

  POST /v1/chat/completions   OpenAI chat completion; "stream": true gives server-sent events
                              (chat.completion.chunk objects, then "data: [DONE]")
  POST /v1/messages           Anthropic message; "stream": true gives Anthropic's SSE events
  GET  /v1/models             an OpenAI-style model list

Every request must carry the provider key of examples/fluxgate-local.yaml (as
"Authorization: Bearer <key>" or "x-api-key: <key>"), as a real provider would: a request that
reaches the mock without going through fluxgate gets 401, which shows the proxy swapped the
client's credential for the provider's. Port 0 picks a free port; the first line printed is
"mock provider listening on http://127.0.0.1:<port>".
"""

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROVIDER_KEY = "sk-mock-provider-key"


def last_user_text(messages):
    for message in reversed(messages or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def words(text):
    """The reply, cut into the pieces a stream sends one by one."""
    reply = f"Hello from the mock provider. You said: {text}"
    pieces = reply.split(" ")
    return [piece if i == 0 else " " + piece for i, piece in enumerate(pieces)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked streams
    server_version = "mock-provider/1"

    def log_message(self, format, *args):
        sys.stderr.write("mock provider: %s\n" % (format % args))

    # -- plumbing --------------------------------------------------------------------------

    def authorized(self):
        bearer = self.headers.get("Authorization", "")
        return bearer == f"Bearer {PROVIDER_KEY}" or self.headers.get("x-api-key") == PROVIDER_KEY

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message):
        self.send_json(status, {"error": {"message": message, "type": "invalid_request_error"}})

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def event(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
        time.sleep(0.02)  # a real model takes its time between tokens

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- routes ----------------------------------------------------------------------------

    def do_GET(self):
        if not self.authorized():
            return self.error(401, "missing or wrong provider key")
        if self.path.split("?")[0] == "/v1/models":
            return self.send_json(200, {"object": "list", "data": [
                {"id": "mock-gpt", "object": "model", "owned_by": "mock"},
                {"id": "mock-claude", "object": "model", "owned_by": "mock"},
            ]})
        self.error(404, f"no route for GET {self.path}")

    def do_POST(self):
        body = self.read_json()
        if not self.authorized():
            return self.error(401, "missing or wrong provider key")
        if body is None:
            return self.error(400, "the body is not JSON")
        path = self.path.split("?")[0]
        if path == "/v1/chat/completions":
            return self.chat_completion(body)
        if path == "/v1/messages":
            return self.anthropic_message(body)
        self.error(404, f"no route for POST {self.path}")

    def chat_completion(self, body):
        model = body.get("model", "mock-gpt")
        pieces = words(last_user_text(body.get("messages")))
        created = int(time.time())
        if not body.get("stream"):
            return self.send_json(200, {
                "id": "chatcmpl-mock", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "".join(pieces)}}],
                "usage": {"prompt_tokens": 8, "completion_tokens": len(pieces), "total_tokens": 8 + len(pieces)},
            })
        self.start_stream()

        def chunk(delta, finish=None):
            return {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        self.event("data: %s\n\n" % json.dumps(chunk({"role": "assistant", "content": ""})))
        for piece in pieces:
            self.event("data: %s\n\n" % json.dumps(chunk({"content": piece})))
        self.event("data: %s\n\n" % json.dumps(chunk({}, "stop")))
        self.event("data: [DONE]\n\n")
        self.end_stream()

    def anthropic_message(self, body):
        model = body.get("model", "mock-claude")
        pieces = words(last_user_text(body.get("messages")))
        message = {"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 8, "output_tokens": 0}}
        if not body.get("stream"):
            message.update(content=[{"type": "text", "text": "".join(pieces)}], stop_reason="end_turn",
                           usage={"input_tokens": 8, "output_tokens": len(pieces)})
            return self.send_json(200, message)
        self.start_stream()

        def event(name, data):
            self.event("event: %s\ndata: %s\n\n" % (name, json.dumps(dict(type=name, **data))))
        event("message_start", {"message": message})
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        for piece in pieces:
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        event("content_block_stop", {"index": 0})
        event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": len(pieces)}})
        event("message_stop", {})
        self.end_stream()


def main():
    parser = argparse.ArgumentParser(description="A fake OpenAI/Anthropic API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8081, help="port to listen on (0: any free port)")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"mock provider listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
