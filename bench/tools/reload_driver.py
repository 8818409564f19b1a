#!/usr/bin/env python3
"""S8 reload driver: changes a running proxy's configuration file several times while load runs.
Usage: reload_driver.py fluxgate|nginx CONFIG MASTER_PID [--socket PATH] [--bin FLUXGATE]
                        [--lead S] [--gap S] [--apply-timeout S] [--steps 1,2,...]
Six steps, one every GAP seconds after LEAD; the file ends up with its original content.
  fluxgate: 1 file: add an api key (watcher)         nginx: 1 keepalive_timeout 120s→121s + HUP
            2 ctl:  max_connections −96 + `fluxgate reload`      2 keepalive_requests +1 + HUP
            3 hup:  remove that key + SIGHUP                     3 keepalive_timeout back + HUP
            4 file: workers N→N+1 (new generation)               4 worker_processes N→N+1 + HUP
            5 file: workers N+1→N                                5 worker_processes back + HUP
            6 ctl:  max_connections back + `fluxgate reload`     6 keepalive_requests back + HUP
Apply time: from the moment the file was replaced (atomic rename) until fluxgate's control socket
`status` reports the next generation as applied, or until nginx's master has all its new workers.
Prints one JSON line per step ("t": wall-clock time of the change). Prints no key."""
import argparse, json, os, re, signal, socket, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("kind", choices=["fluxgate", "nginx"])
ap.add_argument("config")
ap.add_argument("pid", type=int)
ap.add_argument("--socket")
ap.add_argument("--bin")
ap.add_argument("--lead", type=float, default=2.0)
ap.add_argument("--gap", type=float, default=2.5)
ap.add_argument("--apply-timeout", type=float, default=15.0)
ap.add_argument("--steps", default="1,2,3,4,5,6", help="which steps to run (to isolate one kind of reload)")
a = ap.parse_args()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proctree import tree  # noqa: E402


def read():
    return open(a.config).read()


def write(text):   # as an editor or `cp` + `mv` would: the reader never sees half a file
    tmp = a.config + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.config)


def sub(pattern, fn, text):
    new, n = re.subn(pattern, fn, text, count=1, flags=re.M)
    if n != 1:
        raise SystemExit(f"reload_driver: pattern {pattern!r} not found in {a.config}")
    return new


def status():
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(a.socket)
        s.sendall(b"status\n")
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
        s.close()
        return out.decode()
    except OSError:
        return ""


def generation(text):
    m = re.search(r"serving generation (\d+) with (\d+) worker", text)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def last_applied(text):
    m = re.search(r"^last reload: configuration (applied|unchanged) \(generation (\d+)\)", text, re.M)
    return int(m.group(2)) if m else None


def children():
    return set(tree([a.pid])[1:])


ADDED_KEY = "\n    - id: bench-reload-extra\n      key: sk-bench-reload-extra\n"


def fluxgate_steps():
    w = int(re.search(r"^  workers: (\d+)", read(), re.M).group(1))
    mc = int(re.search(r"^  max_connections: (\d+)", read(), re.M).group(1))
    return [
        ("file", "api key added", lambda t: t.rstrip("\n") + ADDED_KEY),
        ("ctl", f"max_connections {mc}->{mc - 96}",
         lambda t: sub(r"^  max_connections: \d+", f"  max_connections: {mc - 96}", t)),
        ("hup", "api key removed", lambda t: t.replace(ADDED_KEY, "\n")),
        ("file", f"workers {w}->{w + 1}", lambda t: sub(r"^  workers: \d+", f"  workers: {w + 1}", t)),
        ("file", f"workers {w + 1}->{w}", lambda t: sub(r"^  workers: \d+", f"  workers: {w}", t)),
        ("ctl", f"max_connections {mc - 96}->{mc}",
         lambda t: sub(r"^  max_connections: \d+", f"  max_connections: {mc}", t)),
    ]


def nginx_steps():
    w = int(re.search(r"^worker_processes\s+(\d+);", read(), re.M).group(1))
    kt = r"^  keepalive_timeout\s+\d+s;"
    kr = r"^  keepalive_requests\s+\d+;"
    kr0 = int(re.search(r"^  keepalive_requests\s+(\d+);", read(), re.M).group(1))
    return [
        ("hup", "keepalive_timeout 120s->121s", lambda t: sub(kt, "  keepalive_timeout  121s;", t)),
        ("hup", "keepalive_requests +1", lambda t: sub(kr, f"  keepalive_requests {kr0 + 1};", t)),
        ("hup", "keepalive_timeout 121s->120s", lambda t: sub(kt, "  keepalive_timeout  120s;", t)),
        ("hup", f"worker_processes {w}->{w + 1}", lambda t: sub(r"^worker_processes\s+\d+;", f"worker_processes  {w + 1};", t)),
        ("hup", f"worker_processes {w + 1}->{w}", lambda t: sub(r"^worker_processes\s+\d+;", f"worker_processes  {w};", t)),
        ("hup", "keepalive_requests -1", lambda t: sub(kr, f"  keepalive_requests {kr0};", t)),
    ]


original = read()
steps = fluxgate_steps() if a.kind == "fluxgate" else nginx_steps()
only = {int(x) for x in a.steps.split(",") if x.strip()}
t_start = time.monotonic()
for i, (trigger, change, edit) in enumerate(steps, 1):
    if i not in only:
        continue
    time.sleep(max(0.0, t_start + a.lead + (i - 1) * a.gap - time.monotonic()))
    rec = {"step": i, "trigger": trigger, "change": change, "t": round(time.time(), 3)}
    text = edit(read())
    if a.kind == "fluxgate":
        g0, _ = generation(status())
        t0 = time.monotonic()
        write(text)
        if trigger == "hup":
            os.kill(a.pid, signal.SIGHUP)
        elif trigger == "ctl":
            try:
                p = subprocess.run([a.bin, "reload", "--control-socket", a.socket], capture_output=True,
                                   text=True, timeout=a.apply_timeout)
                rec["cmd_ms"] = round((time.monotonic() - t0) * 1000, 1)
                rec["cmd_exit"] = p.returncode
                rec["cmd_said"] = (p.stdout + p.stderr).strip().splitlines()[0][:120] if (p.stdout + p.stderr).strip() else ""
            except subprocess.TimeoutExpired:
                rec["cmd_exit"] = "timeout"
        rec["apply_ms"], rec["outcome"] = None, "timeout"
        while time.monotonic() < t0 + a.apply_timeout:
            s = status()
            g = last_applied(s)
            if g is not None and g0 is not None and g > g0:
                rec["apply_ms"] = round((time.monotonic() - t0) * 1000, 1)
                rec["outcome"] = f"applied, generation {g}"
                break
            time.sleep(0.005)
        rec["workers"] = generation(status())[1]
    else:
        want = int(re.search(r"^worker_processes\s+(\d+);", text, re.M).group(1))
        before = children()
        t0 = time.monotonic()
        write(text)
        os.kill(a.pid, signal.SIGHUP)
        rec["apply_ms"], rec["outcome"] = None, "timeout"
        while time.monotonic() < t0 + a.apply_timeout:
            new = children() - before
            if len(new) >= want:
                rec["apply_ms"] = round((time.monotonic() - t0) * 1000, 1)
                rec["outcome"] = f"{len(new)} new worker(s)"
                break
            time.sleep(0.005)
        rec["workers"] = want
    print(json.dumps(rec), flush=True)
if read() != original:
    print(json.dumps({"step": "end", "note": "file differs from the original after the steps"}), flush=True)
