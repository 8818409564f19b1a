#!/usr/bin/env python3
"""summarize.py RESULTS_DIR -> markdown tables for bench/run.sh.
Ratios are computed per rep (targets of one rep ran back to back, in rotated order) and the median
of those per-rep ratios is shown. Reference for a 1-process target: nginx1; for 2: nginx2."""
import csv, json, os, statistics, sys
from collections import defaultdict

d = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(d, "runs.tsv")), delimiter="\t"))
LABEL = {"direct": "direct to mock", "nginx1": "nginx, 1 worker", "nginx1t": "nginx, 1 worker, 16k buffers",
         "nginx2": "nginx, 2 workers", "haproxy": "haproxy, 2 threads", "fluxgate1": "**fluxgate, 1 worker**",
         "fluxgate2": "**fluxgate, 2 workers**", "fluxgate1off": "fluxgate, 1 worker, usage: off",
         "fluxgate1m": "**fluxgate, 1 worker, /metrics scraped 1/s**",
         "fluxgate1mr": "fluxgate, 1 worker, routed by model (÷ fluxgate1)",
         "fluxgate1t2": "fluxgate, 1 worker, two targets (÷ fluxgate1)",
         "fluxgate2rl": "fluxgate, 2 workers, host-local limit", "fluxgate2redis": "fluxgate, 2 workers, limit in Redis",
         "fluxgate1gw": "**fluxgate, 1 worker, the whole gateway (host-local limit)**",
         "fluxgate1gwredis": "**fluxgate, 1 worker, the whole gateway (limit in Redis)**"}
ORDER = ["direct", "nginx1", "nginx1t", "nginx2", "haproxy", "fluxgate1", "fluxgate1off", "fluxgate1m", "fluxgate1mr", "fluxgate1t2",
         "fluxgate2", "fluxgate2rl", "fluxgate2redis", "fluxgate1gw", "fluxgate1gwredis"]
# fluxgate1mr's reference is fluxgate1: model routing against the prefix route, same run (and
# fluxgate1t2's: two targets against one, docs/routing-and-forwarding.md); the rate-limit targets
# are measured against fluxgate without limits (docs/rate-limits.md); the whole gateway against
# nginx doing the plain proxy job (issue 23).
REF = {"nginx1": "nginx1", "nginx1t": "nginx1", "fluxgate1": "nginx1", "fluxgate1off": "nginx1", "nginx2": "nginx2",
       "haproxy": "nginx2", "fluxgate2": "nginx2", "fluxgate1m": "nginx1", "fluxgate1mr": "fluxgate1",
       "fluxgate1t2": "fluxgate1", "fluxgate2rl": "fluxgate2", "fluxgate2redis": "fluxgate2",
       "fluxgate1gw": "nginx1", "fluxgate1gwredis": "nginx1"}


def f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def med(v):
    v = [x for x in v if x == x]
    return statistics.median(v) if v else float("nan")


def fmt(x, spec, dash="—"):
    return dash if x != x else format(x, spec)


g = defaultdict(dict)          # (logmode, scenario, target) -> {rep: row}
for r in rows:
    g[(r["logmode"], r["scenario"], r["target"])][r["rep"]] = r


def per_rep(lm, sc, t, ref, fn):
    a, b = g.get((lm, sc, t), {}), g.get((lm, sc, ref), {})
    return med([fn(a[k], b[k]) for k in a if k in b])


def ratio(key):
    return lambda x, y: f(x[key]) / f(y[key]) if f(y[key]) else float("nan")


def added(key):
    return lambda x, y: f(x[key]) - f(y[key])


print(f"# fluxgate vs nginx / HAProxy ({os.path.basename(d.rstrip('/'))})\n")
env = os.path.join(d, "env.txt")
if os.path.exists(env):
    print("```\n" + open(env).read().strip() + "\n```\n")

if os.path.exists(os.path.join(d, "ab.tsv")):   # paired A/B blocks (bench/run.sh AB_PAIRS)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import ab_summary
    sys.argv = [sys.argv[0], d]
    ab_summary.main()

scen_name = {"json": "S1/S2 JSON 580 B", "sse": "S3 SSE 13,405 B (50 events, sent at once)"}
lms = [lm for lm in ("off", "on") if any(k[0] == lm for k in g)]
head = []
for lm in lms:
    print(f"## Per-request logging {lm.upper()}"
          f"{' (fluxgate FLUXGATE_LOG=info; nginx access_log off)' if lm == 'off' else ' (fluxgate request lines and nginx access log to files; haproxy logs nothing)'}\n")
    scs = sorted({k[1] for k in g if k[0] == lm}, key=lambda s: (s.split("_c")[0], int(s.split("_c")[1])))
    for sc in scs:
        payload, conc = sc.split("_c")
        print(f"### {scen_name[payload]}, {conc} connection{'s' if conc != '1' else ''}\n")
        print("| target | req/s | rps ÷ nginx (same workers) | CPU µs/req | CPU ÷ nginx | p50 ms | p99 ms | "
              "added p50 ms | added p99 ms | errors/requests | foreign CPU % | load1 | reps |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for t in ORDER:
            reps = g.get((lm, sc, t))
            if not reps:
                continue
            rs = list(reps.values())
            rps = med([f(r["rps"]) for r in rs])
            cpu = med([f(r["proxy_cpu_us_per_req"]) for r in rs])
            ref = REF.get(t)
            rr = per_rep(lm, sc, t, ref, ratio("rps")) if ref else float("nan")
            cr = per_rep(lm, sc, t, ref, ratio("proxy_cpu_us_per_req")) if ref else float("nan")
            a50 = per_rep(lm, sc, t, "direct", added("p50_ms")) if t != "direct" else float("nan")
            a99 = per_rep(lm, sc, t, "direct", added("p99_ms")) if t != "direct" else float("nan")
            err = sum(int(r["non2xx"]) + int(r["sockerr"]) for r in rs)
            n = sum(int(r["requests"]) for r in rs)
            print(f"| {LABEL.get(t, t)} | {fmt(rps, ',.0f')} | {fmt(rr, '.2f')} | {fmt(cpu, '.1f')} | {fmt(cr, '.2f')} | "
                  f"{fmt(med([f(r['p50_ms']) for r in rs]), '.3f')} | {fmt(med([f(r['p99_ms']) for r in rs]), '.3f')} | "
                  f"{fmt(a50, '+.3f')} | {fmt(a99, '+.3f')} | {err}/{n} | "
                  f"{fmt(med([f(r['foreign_cpu_pct']) for r in rs]), '.0f')} | "
                  f"{fmt(med([f(r['loadavg1']) for r in rs]), '.1f')} | {len(rs)} |")
            if t in ("fluxgate1", "fluxgate2"):
                ng = REF[t]
                head.append((sc, lm, t.rstrip("abcdefghijklmnopqrstuvwxyz")[-1] if t[-1].isalpha() else t[-1], rr, cr,
                             per_rep(lm, sc, t, "nginx1t", ratio("proxy_cpu_us_per_req")) if payload == "sse" and t == "fluxgate1" else float("nan"),
                             a50 - per_rep(lm, sc, ng, "direct", added("p50_ms")),
                             a99 - per_rep(lm, sc, ng, "direct", added("p99_ms")), err, n))
        print()

if head:
    print("## Headline: fluxgate ÷ nginx with the same worker count (medians of per-rep ratios, same run)\n")
    print("| scenario | logging | workers | throughput ÷ nginx | CPU µs/req ÷ nginx | CPU ÷ nginx 16k buffers | "
          "added p50 − nginx's (ms) | added p99 − nginx's (ms) | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for sc, lm, w, rr, cr, ct, d50, d99, err, n in sorted(head):
        print(f"| {sc} | {lm} | {w} | {fmt(rr, '.2f')} | {fmt(cr, '.2f')} | {fmt(ct, '.2f')} | "
              f"{fmt(d50, '+.3f')} | {fmt(d99, '+.3f')} | {err}/{n} |")
    print()

usage = [(sc, lm, per_rep(lm, sc, "fluxgate1", "fluxgate1off", ratio("rps")),
          per_rep(lm, sc, "fluxgate1", "fluxgate1off", ratio("proxy_cpu_us_per_req")))
         for (lm, sc, t) in sorted(g) if t == "fluxgate1off" and (lm, sc, "fluxgate1") in g]
if usage:
    print("## Usage reader: fluxgate `usage: auto` ÷ `usage: off`, 1 worker (medians of per-rep ratios, same run)\n")
    print("Issue 20's budget: throughput ≥ 0.97 (JSON) and ≥ 0.95 (SSE).\n")
    print("| scenario | logging | throughput ÷ off | CPU µs/req ÷ off |")
    print("|---|---|---:|---:|")
    for sc, lm, rr, cr in usage:
        print(f"| {sc} | {lm} | {fmt(rr, '.3f')} | {fmt(cr, '.3f')} |")
obs = sorted({(k[0], k[1]) for k in g if k[2] == "fluxgate1m"})
if obs:
    print("## Observability listener on (scraped every second) ÷ off, fluxgate 1 worker (medians of per-rep ratios)\n")
    print("| scenario | logging | throughput ÷ off | CPU µs/req ÷ off |")
    print("|---|---|---:|---:|")
    for lm, sc in obs:
        print(f"| {sc} | {lm} | {fmt(per_rep(lm, sc, 'fluxgate1m', 'fluxgate1', ratio('rps')), '.3f')} | "
              f"{fmt(per_rep(lm, sc, 'fluxgate1m', 'fluxgate1', ratio('proxy_cpu_us_per_req')), '.3f')} |")
    print()

gw = [(lm, sc, t) for (lm, sc, t) in sorted(g) if t in ("fluxgate1gw", "fluxgate1gwredis")]
if gw:
    print("## The whole gateway at once ÷ nginx doing the plain proxy job, 1 worker each (medians of per-rep ratios)\n")
    print("Issue 23's goal (JSON c=64): throughput ≥ 1.0× nginx's at ≤ 1.1× its CPU per request.\n")
    print("| target | scenario | logging | throughput ÷ nginx | CPU µs/req ÷ nginx | throughput ÷ fluxgate1 | CPU ÷ fluxgate1 |")
    print("|---|---|---|---:|---:|---:|---:|")
    for lm, sc, t in gw:
        print(f"| {LABEL[t]} | {sc} | {lm} | {fmt(per_rep(lm, sc, t, 'nginx1', ratio('rps')), '.3f')} | "
              f"{fmt(per_rep(lm, sc, t, 'nginx1', ratio('proxy_cpu_us_per_req')), '.3f')} | "
              f"{fmt(per_rep(lm, sc, t, 'fluxgate1', ratio('rps')), '.3f')} | "
              f"{fmt(per_rep(lm, sc, t, 'fluxgate1', ratio('proxy_cpu_us_per_req')), '.3f')} |")
    print()

fid = os.path.join(d, "fidelity.jsonl")
if os.path.exists(fid) and os.path.getsize(fid):
    print("## S5 paced SSE (50 events × 20 ms; direct gap p50 ≈ 20 ms; bunched = gaps < 2 ms)\n")
    print("Pass `first` opens the proxy's upstream connections (at c=32, 32 at once); `warm` follows on new")
    print("client connections with the upstream pool filled. Added = TTFE p99 − direct's, same pass.\n")
    print("| logging | target | conc | pass | ok/err | events | TTFE p50 ms | TTFE p99 ms | added TTFE p99 ms | gap p50 ms | gap p99 ms | bunched % |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    probes = []
    for line in open(fid):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("probe"):
            probes.append(o)
    # Runs before the two passes had one probe per concurrency: it counts as "first".
    base = {(o["logmode"], o["probe"]["conc"], o.get("pass", "first")): o["probe"]["ttfe_p99_ms"]
            for o in probes if o["target"] == "direct"}
    for o in probes:
        p = o["probe"]
        b = base.get((o["logmode"], p["conc"], o.get("pass", "first")))
        add = "—" if o["target"] == "direct" or b is None else f"{p['ttfe_p99_ms'] - b:+.2f}"
        print(f"| {o['logmode']} | {LABEL.get(o['target'], o['target'])} | {p['conc']} | {o.get('pass', 'first')} | "
              f"{p['ok']}/{p['errors']} | "
              f"{p['events_median']} | {p['ttfe_p50_ms']} | {p['ttfe_p99_ms']} | {add} | {p['gap_p50_ms']} | "
              f"{p['gap_p99_ms']} | {p['bunched_pct']} |")
    print()
    # Issue 20's "no added time to first event": the usage reader (`fluxgate1`, usage: auto) against
    # the same proxy with `usage: off` (`fluxgate1off`), same run, logging mode, concurrency and pass.
    by = {(o["logmode"], o["probe"]["conc"], o.get("pass", "first"), o["target"]): o["probe"] for o in probes}
    pairs = [(k[:3], by[k], by.get(k[:3] + ("fluxgate1off",))) for k in sorted(by) if k[3] == "fluxgate1"]
    pairs = [(k, a, b) for (k, a, b) in pairs if b]
    if pairs:
        print("### S5 time to first event: usage `auto` − `off` (fluxgate, 1 worker, same run)\n")
        print("| logging | conc | pass | TTFE p50 auto | off | Δ p50 ms | TTFE p99 auto | off | Δ p99 ms |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for (lm, conc, ps), a, b in pairs:
            print(f"| {lm} | {conc} | {ps} | {a['ttfe_p50_ms']} | {b['ttfe_p50_ms']} | "
                  f"{a['ttfe_p50_ms'] - b['ttfe_p50_ms']:+.2f} | {a['ttfe_p99_ms']} | {b['ttfe_p99_ms']} | "
                  f"{a['ttfe_p99_ms'] - b['ttfe_p99_ms']:+.2f} |")
        print()

cs = os.path.join(d, "coldstart.tsv")
if os.path.exists(cs):
    by = defaultdict(list)
    for r in csv.DictReader(open(cs), delimiter="\t"):
        by[r["proxy"]].append(r)
    if by:
        print("## S6 cold start: launch → first proxied 200 (5 ms polling)\n")
        print("| proxy | trials | median ms | min–max ms | RSS MiB after 1st request (tree) |\n|---|---:|---:|---:|---:|")
        for k, rs in by.items():
            v = [f(r["launch_to_first_200_ms"]) for r in rs]
            print(f"| {LABEL.get(k, k)} | {len(v)} | {fmt(med(v), '.1f')} | {fmt(min(v), '.1f')}–{fmt(max(v), '.1f')} | "
                  f"{fmt(med([f(r['rss_kb_after_first_request']) / 1024 for r in rs]), '.1f')} |")
        print()

mem = os.path.join(d, "memory.tsv")
if os.path.exists(mem):
    mrows = list(csv.DictReader(open(mem), delimiter="\t"))
    if mrows:
        print("## S7 RSS (MiB): master / workers (sum) / number of workers\n")
        print("| logging | target | phase | master | workers | n | per worker |\n|---|---|---|---:|---:|---:|---:|")
        for r in mrows:
            n = int(r["workers"] or 0)
            print(f"| {r['logmode']} | {LABEL.get(r['target'], r['target'])} | {r['phase']} | {f(r['master_kb']) / 1024:.1f} | "
                  f"{f(r['workers_kb']) / 1024:.1f} | {n} | {fmt(f(r['workers_kb']) / 1024 / n if n else float('nan'), '.1f')} |")
        print()

OKS = {True: "✔", False: "✘"}

big = os.path.join(d, "bigbody.tsv")
if os.path.exists(big):
    brows = list(csv.DictReader(open(big), delimiter="\t"))
    if brows:
        print("## 1 GiB transfers through the proxy: worker RSS (sum of workers, sampled every 50 ms; target: adds < 8 MiB)\n")
        print("| logging | target | direction | HTTP | all bytes arrived | MiB/s | RSS before MiB | max during MiB | "
              "after MiB | added MiB (max − before) | < 8 MiB |")
        print("|---|---|---|---:|---|---:|---:|---:|---:|---:|---|")
        for r in brows:
            secs, nbytes = f(r["seconds"]), f(r["bytes"])
            added = (f(r["max_workers_kb"]) - f(r["before_workers_kb"])) / 1024
            ok = r["verified"] == "1" and r["http_code"] == "200"
            print(f"| {r['logmode']} | {LABEL.get(r['target'], r['target'])} | {r['direction']} | {r['http_code']} | "
                  f"{'yes' if r['verified'] == '1' else 'NO'} | {fmt(nbytes / 1048576 / secs if secs else float('nan'), ',.0f')} | "
                  f"{f(r['before_workers_kb']) / 1024:.1f} | {f(r['max_workers_kb']) / 1024:.1f} | "
                  f"{f(r['after_workers_kb']) / 1024:.1f} | {added:+.1f} | {OKS[ok and added < 8]} |")
        print()

if os.path.exists(mem):
    soak = defaultdict(list)
    for r in csv.DictReader(open(mem), delimiter="\t"):
        if r["phase"].startswith("soak_") and r["phase"].endswith("s"):
            soak[(r["logmode"], r["target"])].append((f(r["phase"][5:-1]), f(r["workers_kb"]) / 1024))
    st = {}
    sk = os.path.join(d, "soak.tsv")
    if os.path.exists(sk):
        st = {(r["logmode"], r["target"]): r for r in csv.DictReader(open(sk), delimiter="\t")}
    if soak:
        print("## S7 soak: c=8 JSON, workers' RSS growth (least-squares slope over the samples after the first; "
              "target < 0.5 MiB/min)\n")
        print("| logging | target | seconds | samples | first MiB | last MiB | max MiB | growth MiB/min | < 0.5 | requests | errors |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        for (lm, t), pts in soak.items():
            pts.sort()
            fit = pts[1:] if len(pts) >= 3 else pts
            slope = float("nan")
            if len(fit) >= 2:
                mx, my = statistics.mean(p[0] for p in fit), statistics.mean(p[1] for p in fit)
                den = sum((p[0] - mx) ** 2 for p in fit)
                slope = sum((p[0] - mx) * (p[1] - my) for p in fit) / den * 60 if den else float("nan")
            w = st.get((lm, t), {})
            err = int(w.get("non2xx") or 0) + int(w.get("sockerr") or 0) if w else None
            print(f"| {lm} | {LABEL.get(t, t)} | {pts[-1][0]:.0f} | {len(pts)} | {pts[0][1]:.1f} | {pts[-1][1]:.1f} | "
                  f"{max(p[1] for p in pts):.1f} | {fmt(slope, '+.3f')} | {OKS[slope < 0.5] if slope == slope else '—'} | "
                  f"{w.get('requests', '—')} | {'—' if err is None else err} |")
        print()

rl = os.path.join(d, "reload.jsonl")
if os.path.exists(rl) and os.path.getsize(rl):
    steps, loads = defaultdict(list), []
    for line in open(rl):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("kind") == "step" and isinstance(o["step_result"].get("step"), int):
            steps[(o["logmode"], o["target"])].append(o["step_result"])
        elif o.get("kind") == "load":
            loads.append(o)
    if loads:
        print("## S8 reload under load: wrk c=64 JSON + 16 paced SSE streams (50 events × 20 ms) during six reloads "
              "(target: 0 errors, 0 truncated streams)\n")
        print("| logging | target | seconds | reloads applied | wrk requests | wrk non-2xx | wrk socket errors | streams ok | "
              "truncated | failed | keep-alive closed before answer (retried) | proxy warnings | 0 errors, 0 truncated |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for o in loads:
            w, s = o["wrk"], o.get("sse") or {}
            ss = steps.get((o["logmode"], o["target"]), [])
            applied = sum(1 for x in ss if x.get("apply_ms") is not None)
            bad = w["non2xx"] + w["sockerr"] + s.get("truncated", 1) + s.get("failed", 1)
            print(f"| {o['logmode']} | {LABEL.get(o['target'], o['target'])} | {o['seconds']} | {applied}/{o.get('steps', len(ss))} | "
                  f"{w['requests']} | {w['non2xx']} | {w['sockerr']} | {s.get('ok', '—')} | {s.get('truncated', '—')} | "
                  f"{s.get('failed', '—')} | {s.get('retried', '—')} | {o.get('log_warnings', '—')} | "
                  f"{OKS[bad == 0 and applied == len(ss) and applied > 0]} |")
        print()
        when = {(o["logmode"], o["target"]): (o.get("sse") or {}).get("when", []) for o in loads}
        print("Apply time per reload (ms; fluxgate: file replaced → `status` reports the new generation applied; "
              "nginx: HUP → all new workers forked), then the stream events between this change and the next "
              "(r = keep-alive closed before an answer, t = truncated, f = failed):\n")
        ns = max([len(v) for v in steps.values()] + [1])
        print("| logging | target | " + " | ".join(f"change {i}" for i in range(1, ns + 1)) + " |")
        print("|---|---|" + "---|" * ns)
        for (lm, t), ss in steps.items():
            ts = [x.get("t", float("inf")) for x in ss] + [float("inf")]
            cells = []
            for i, x in enumerate(ss):
                ev = defaultdict(int)
                for k, tw in when.get((lm, t), []):
                    if ts[i] <= tw < ts[i + 1]:
                        ev[k] += 1
                evs = " ".join(f"{n}{k}" for k, n in sorted(ev.items()))
                cells.append(f"{fmt(x['apply_ms'] if x.get('apply_ms') is not None else float('nan'), '.0f', 'timeout')} "
                             f"({x['trigger']}: {x['change']}){'; ' + evs if evs else ''}")
            print(f"| {lm} | {LABEL.get(t, t)} | " + " | ".join(cells) + " |")
        print()
