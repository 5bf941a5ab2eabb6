#!/usr/bin/env python3
"""What readers of every encoding cost in server memory (issue 20, case 5).

Starts `feedgate serve` (the binary given, on a free 127.0.0.1 port, with
--retention-events 300 and any extra flags), publishes 300 events of about
100 KB (30 MB of JSON), then reads the whole window from `after=0` once per
encoding — SSE json, SSE lean, WebSocket lean multiplexed, WebSocket json
deflate, WebSocket lean deflate, WebSocket lean multiplexed deflate — one
reader at a time, each leaving when it has every event. Prints the server's
RSS (VmRSS) before the readers and after each (12 s after: jemalloc returns
freed pages after a 10 s decay), and `feedgate_encoding_cache_bytes`.

    pip install websockets
    cargo build --release
    python3 bench/encoding-cache-rss.py target/release/feedgate [-- --encoding-cache 0]
"""

import asyncio
import json
import random
import re
import socket
import string
import subprocess
import sys
import time
import urllib.request

import websockets

EVENTS = 300
PAD = 100_000
SETTLE_S = 12


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        kib = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return kib / 1024


def cache_mib(base):
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    m = re.search(r"^feedgate_encoding_cache_bytes (\S+)$", text, re.M)
    return float(m.group(1)) / (1 << 20) if m else float("nan")


def publish_all(base):
    for n in range(1, EVENTS + 1):
        # Random letters: deflate saves about 40 % (what 26 symbols allow),
        # so every form of an event is of the event's order of size.
        rng = random.Random(n)
        pad = "".join(rng.choices(string.ascii_lowercase, k=PAD))
        body = json.dumps({"n": n, "pad": pad}).encode()
        req = urllib.request.Request(f"{base}/topics/big/events", data=body, method="POST",
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()


def read_sse(base, query):
    """Reads an SSE stream until EVENTS events (blocks without `event:`) arrived."""
    seen, named = 0, False
    with urllib.request.urlopen(f"{base}{query}", timeout=60) as res:
        for line in res:
            if line.startswith(b"event:"):
                named = True
            elif line.startswith(b"data") and not named:
                seen += 1
                if seen == EVENTS:
                    return
            elif line in (b"\n", b"\r\n"):
                named = False


async def read_ws(base, path, deflate):
    url = base.replace("http://", "ws://") + path
    compression = "deflate" if deflate else None
    seen = 0
    async with websockets.connect(url, compression=compression, max_size=None) as ws:
        while seen < EVENTS:
            msg = await ws.recv()
            text = msg if isinstance(msg, str) else msg.decode()
            # Control messages: `{"type":…` (json) or `#…` (lean).
            if not (text.startswith('{"type":') or text.startswith("#")):
                seen += 1


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    extra = sys.argv[3:] if len(sys.argv) > 2 and sys.argv[2] == "--" else []
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--retention-events", str(EVENTS),
         "--max-body", str(1 << 20), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        publish_all(base)
        time.sleep(SETTLE_S)
        base_rss = rss_mib(server.pid)
        print(f"flags: {' '.join(extra) or '(defaults)'}")
        print(f"after publishing {EVENTS} x {PAD // 1000} KB: RSS {base_rss:.1f} MiB, "
              f"cache {cache_mib(base):.1f} MiB")
        readers = [
            ("SSE json", lambda: read_sse(base, "/topics/big/sse?after=0")),
            ("SSE lean", lambda: read_sse(base, "/topics/big/sse?after=0&encoding=lean")),
            ("WS lean multiplexed", lambda: asyncio.run(
                read_ws(base, "/ws?topics=big@0&encoding=lean", False))),
            ("WS json deflate", lambda: asyncio.run(
                read_ws(base, "/topics/big/ws?after=0", True))),
            ("WS lean deflate", lambda: asyncio.run(
                read_ws(base, "/topics/big/ws?after=0&encoding=lean", True))),
            ("WS lean multiplexed deflate", lambda: asyncio.run(
                read_ws(base, "/ws?topics=big@0&encoding=lean", True))),
        ]
        print("| reader (each reads all 300 and leaves) | RSS, MiB | above the window, MiB "
              "| feedgate_encoding_cache_bytes, MiB |")
        print("|---|---|---|---|")
        for name, read in readers:
            read()
            # jemalloc hands freed pages back after its 10 s decay.
            time.sleep(SETTLE_S)
            rss = rss_mib(server.pid)
            print(f"| {name} | {rss:.1f} | +{rss - base_rss:.1f} | {cache_mib(base):.1f} |")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
