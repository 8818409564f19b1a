"""The streaming chat request that sse_probe.py and sse_load.py send: one POST with stream:true."""
import json
from urllib.parse import urlparse


def stream_request(url, key, model):
    """(parsed URL, request bytes) for a POST of an OpenAI-style stream:true chat body to URL."""
    u = urlparse(url)
    body = json.dumps({"model": model, "stream": True, "max_tokens": 64,
                       "messages": [{"role": "user", "content": "stream please"}]}).encode()
    head = (f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return u, head.encode() + body
