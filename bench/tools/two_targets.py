"""Rewrites the bench configuration's `mock` upstream (target_url + api_key) as two targets on
two origins of the same mock (127.0.0.1 and localhost): usage two_targets.py FILE MOCK_PORT KEY."""
import sys

path, port, key = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(path).read().split("\n")
out = []
for line in lines:
    if line.strip() == f"target_url: http://127.0.0.1:{port}/v1":
        out += ["    targets:",
                f"      - {{target_url: http://127.0.0.1:{port}/v1, api_key: {key}}}",
                f"      - {{target_url: http://localhost:{port}/v1, api_key: {key}}}"]
    elif out and out[-1].startswith("      - {target_url: http://localhost") and line.strip().startswith("api_key:"):
        continue
    else:
        out.append(line)
open(path, "w").write("\n".join(out))
