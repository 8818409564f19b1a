"""A mock LLM provider for the model-routing tests, speaking OpenAI's Chat Completions and
Anthropic's Messages (plain JSON and server-sent events). It checks the provider key the proxy
must send (`x-api-key: KEY` for /v1/messages, that or `authorization: Bearer KEY` elsewhere), answers with the
model the request named, and prints one line per request: `REQ {json}` with the path, the model
it read, the key header it got and the body's length and SHA-256 (never the key itself).
Usage: model_mock_upstream.py NAME PROVIDER_KEY. Prints `PORT n` once listening."""
import hashlib
import http.server
import json
import sys

NAME, KEY = sys.argv[1], sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length", "0")))

    def send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def events(self, chunks):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            data = chunk.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        self.send(200, {"mock": NAME, "path": self.path})

    def do_POST(self):
        body = self.read_body()
        anthropic = self.path.startswith("/v1/messages")
        if anthropic:
            key_ok = self.headers.get("x-api-key") == KEY
        else:
            key_ok = KEY in (self.headers.get("x-api-key"), (self.headers.get("authorization") or "")[7:])
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        model = request.get("model") if isinstance(request, dict) else None
        print("REQ " + json.dumps({
            "mock": NAME, "path": self.path, "model": model, "key_ok": key_ok,
            "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            "content_length": self.headers.get("content-length"),
        }), flush=True)
        if not key_ok:
            return self.send(401, {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})
        stream = bool(request.get("stream")) if isinstance(request, dict) else False
        if anthropic:
            return self.anthropic(model, stream)
        return self.openai(model, stream)

    def openai(self, model, stream):
        words = ["Hello", " from ", NAME, "."]
        if not stream:
            return self.send(200, {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
        chunks = []
        for word in words:
            chunks.append("data: " + json.dumps({
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}) + "\n\n")
        chunks.append("data: [DONE]\n\n")
        self.events(chunks)

    def anthropic(self, model, stream):
        text = "Hello from " + NAME + "."
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                   "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 4}}
        if not stream:
            return self.send(200, message)
        start = dict(message, content=[], stop_reason=None, usage={"input_tokens": 3, "output_tokens": 0})
        events = [
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        ]
        for word in ["Hello", " from ", NAME, "."]:
            events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta", "text": word}}))
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": 4}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        self.events(["event: %s\ndata: %s\n\n" % (name, json.dumps(data)) for name, data in events])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
sys.stdout.write("PORT %d\n" % server.server_address[1])
sys.stdout.flush()
server.serve_forever()
