#!/usr/bin/env python3
"""Paced-stream load for S8 (reload under load): CONC connections, each POSTing stream:true requests
back to back over keep-alive until DURATION_S has passed, and checking every stream.
Usage: sse_load.py URL KEY MODEL CONC DURATION_S [EXPECT_EVENTS=51] [STREAM_TIMEOUT_S=15]
A stream is
  ok         status 200, at least EXPECT_EVENTS `data:` lines and the last one is `data: [DONE]`;
  truncated  status 200 but the body ended (close, reset, bad framing, timeout) before that;
  failed     any other status, or the connection failed after the request was written and before
             a status line arrived, on a fresh connection or a second time;
  retried    a reused keep-alive connection was closed before any byte of the answer (the usual
             keep-alive race when a server closes idle connections): counted, and the request is
             sent again once on a fresh connection, as HTTP clients do.
Streams still running at DURATION_S are finished (each bounded by STREAM_TIMEOUT_S).
Prints one JSON line; "when" lists [t|f|r, wall-clock time] of the first 200 non-ok events."""
import asyncio, json, sys, time
from sse_request import stream_request

URL, KEY, MODEL = sys.argv[1], sys.argv[2], sys.argv[3]
CONC, DUR = int(sys.argv[4]), float(sys.argv[5])
EXPECT = int(sys.argv[6]) if len(sys.argv) > 6 else 51
STO = float(sys.argv[7]) if len(sys.argv) > 7 else 15.0
u, REQ = stream_request(URL, KEY, MODEL)
st = {"streams": 0, "ok": 0, "truncated": 0, "failed": 0, "retried": 0, "reconnects": 0,
      "events_min": None, "status": {}, "why": {}, "when": []}


def note(kind, why):
    st[kind] += 1
    if len(st["when"]) < 200:
        st["when"].append([kind[0], round(time.time(), 3)])
    k = f"{kind}: {why}"[:80]
    st["why"][k] = st["why"].get(k, 0) + 1


class Stale(Exception):
    pass


async def one(reader, writer, reused, r):
    """Returns (keep_alive, events). Raises Stale when nothing came back on a reused connection."""
    writer.write(REQ)
    await writer.drain()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError) as e:
        if reused and (not isinstance(e, asyncio.IncompleteReadError) or not e.partial):
            raise Stale() from e
        raise
    status = r["status"] = int(head.split(b" ", 2)[1])
    st["status"][str(status)] = st["status"].get(str(status), 0) + 1
    hl = head.lower()
    keep = b"connection: close" not in hl
    events, done, buf = 0, False, b""
    try:
        if b"transfer-encoding: chunked" in hl:
            while True:
                sz = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await reader.readexactly(sz + 2)
                if sz == 0:
                    break
                buf += data[:-2]
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.startswith(b"data:"):
                        events += 1
                        done = line.strip() == b"data: [DONE]"
        else:
            clen = 0
            for line in hl.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    clen = int(line.split(b":")[1])
            data = await reader.readexactly(clen)
            events = data.count(b"\ndata:") + data.startswith(b"data:")
            done = data.rstrip().endswith(b"data: [DONE]")
    except (asyncio.IncompleteReadError, ConnectionError, ValueError) as e:
        if status == 200:
            note("truncated", f"{type(e).__name__} after {events} events")
            st["events_min"] = events if st["events_min"] is None else min(st["events_min"], events)
            return False, events
        raise
    if status != 200:
        note("failed", f"HTTP {status}")
    elif events < EXPECT or not done:
        note("truncated", f"{events} events, done={done}")
    else:
        st["ok"] += 1
    st["events_min"] = events if st["events_min"] is None else min(st["events_min"], events)
    return keep, events


async def client(deadline):
    conn = None
    while time.monotonic() < deadline:
        fresh = conn is None
        if fresh:
            try:
                conn = await asyncio.wait_for(asyncio.open_connection(u.hostname, u.port), 5)
                st["reconnects"] += 1
            except (OSError, asyncio.TimeoutError) as e:
                st["streams"] += 1
                note("failed", f"connect {type(e).__name__}")
                await asyncio.sleep(0.05)
                continue
        reader, writer = conn
        st["streams"] += 1
        r = {"status": None}
        try:
            keep, _ = await asyncio.wait_for(one(reader, writer, not fresh, r), STO)
        except Stale:
            st["streams"] -= 1          # not a stream: sent again on a fresh connection
            st["retried"] += 1
            if len(st["when"]) < 200:
                st["when"].append(["r", round(time.time(), 3)])
            keep = False
        except asyncio.TimeoutError:
            note("truncated" if r["status"] == 200 else "failed", "timeout")
            keep = False
        except Exception as e:  # noqa: BLE001 - any other failure of this request
            note("failed", type(e).__name__)
            keep = False
        if not keep:
            writer.close()
            conn = None
    if conn:
        conn[1].close()


async def main():
    t0 = time.monotonic()
    await asyncio.gather(*[client(t0 + DUR) for _ in range(CONC)])
    st["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(st))

asyncio.run(main())
