"""Rewrites the bench configuration's `mock` upstream (target_url + api_key) as two targets.
  two_targets.py FILE MOCK_PORT KEY                  two healthy origins of the one mock
                                                     (127.0.0.1 and localhost), weight 1 each
  two_targets.py FILE MOCK_PORT KEY --refused PORT   a refused target first (127.0.0.1:PORT,
                                                     nothing listens; weight 1000) and the mock
                                                     (weight 1), health.failures 255: every request
                                                     of a short probe tries the refused one first"""
import sys

path, port, key = sys.argv[1], sys.argv[2], sys.argv[3]
refused = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--refused" else None
if refused:
    targets = [f"      - {{target_url: http://127.0.0.1:{refused}/v1, api_key: {key}, weight: 1000}}",
               f"      - {{target_url: http://127.0.0.1:{port}/v1, api_key: {key}, weight: 1}}"]
    extra = ["    health: {failures: 255}"]
else:
    targets = [f"      - {{target_url: http://127.0.0.1:{port}/v1, api_key: {key}}}",
               f"      - {{target_url: http://localhost:{port}/v1, api_key: {key}}}"]
    extra = []
out, skip_key = [], False
for line in open(path).read().split("\n"):
    if line.strip() == f"target_url: http://127.0.0.1:{port}/v1":
        out += ["    targets:"] + targets + extra
        skip_key = True
    elif skip_key and line.strip().startswith("api_key:"):
        skip_key = False
    else:
        out.append(line)
open(path, "w").write("\n".join(out))
