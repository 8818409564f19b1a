#!/usr/bin/env python3
"""coldstart.py URL CLIENT_KEY -- cmd...  (S6)
Launches cmd in its own process group, POSTs a small chat body to URL every 5 ms until it answers
200 (bounded: 20 s), prints "<ms from launch to first 200> <RSS kB of the tree after it>", then
stops the group it started (TERM, then KILL after 5 s)."""
import http.client, os, signal, subprocess, sys, time
from urllib.parse import urlparse

url, key, cmd = sys.argv[1], sys.argv[2], sys.argv[sys.argv.index("--") + 1:]
u = urlparse(url)
body = b'{"model":"mock-json","stream":false,"messages":[{"role":"user","content":"hi"}]}'
t0 = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
ms, deadline = "NA", t0 + 20
while time.perf_counter() < deadline and proc.poll() is None:
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=1)
        c.request("POST", u.path, body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        r = c.getresponse(); r.read(); c.close()
        if r.status == 200:
            ms = "%.1f" % ((time.perf_counter() - t0) * 1000); break
    except OSError:
        pass
    time.sleep(0.005)
here = os.path.dirname(os.path.abspath(__file__))
rss = subprocess.run([sys.executable, os.path.join(here, "proctree.py"), str(proc.pid)],
                     capture_output=True, text=True).stdout.split()
print(ms, rss[1] if len(rss) > 1 else "NA", sep="\t")
try:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(5)
except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
except ProcessLookupError:
    pass
