#!/usr/bin/env python3
"""Small raw-socket probes for the ops test scripts (Python stdlib only).

  sse-latency BASE_URL TOPIC [--max SECONDS]
      Opens an SSE stream on TOPIC (from now), waits for its `ready` event,
      publishes one event through BASE_URL and measures how long that event
      takes to arrive on the stream. Fails when it takes longer than --max,
      which is what a buffering proxy in between does. --expect-late inverts
      the verdict (a negative control against a buffering location).

  silent-ws BASE_URL TOPIC [--hold SECONDS]
      Opens a WebSocket on TOPIC and then never sends a byte: no pong, no
      close. Expects the server to give up on it with close code 1008 (its
      pong timeout), which feedgate counts as
      feedgate_limit_rejections_total{limit="pong_timeout"}.

Both print one line of result and exit 0 on success, 1 otherwise.
"""

import argparse
import base64
import json
import os
import socket
import sys
import time
import urllib.parse
import urllib.request


def connect(base, path, extra_headers=""):
    u = urllib.parse.urlsplit(base)
    host, port = u.hostname, u.port or 80
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra_headers}\r\n".encode()
    )
    return s


def read_until(sock, buf, needle, deadline):
    """Reads into buf until needle is in it; False at EOF or the deadline."""
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            return False
        buf.extend(chunk)
    return True


def sse_latency(args):
    s = connect(args.base, f"/topics/{args.topic}/sse", "Accept: text/event-stream\r\n")
    buf = bytearray()
    # The ready event is the stream's first write: it proves the headers and
    # the first chunk got through. Only then is "from now" well defined. A
    # buffering proxy may hold even that; in --expect-late mode that is
    # already the verdict, but the event is still published and waited for.
    wait = args.max if args.expect_late else args.connect_timeout
    ready = read_until(s, buf, b"event: ready", time.monotonic() + wait)
    if not ready and not args.expect_late:
        print(f"FAIL no SSE ready event within {wait}s; got {bytes(buf[:300])!r}")
        return 1
    marker = f"probe-{os.getpid()}-{time.time_ns()}"
    body = json.dumps({"marker": marker}).encode()
    req = urllib.request.Request(
        f"{args.base.rstrip('/')}/topics/{args.topic}/events", data=body, method="POST",
        headers={"content-type": "application/json"})
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 201:
            print(f"FAIL publish answered {r.status}")
            return 1
    arrived = read_until(s, buf, marker.encode(), t0 + args.max)
    elapsed = time.monotonic() - t0
    s.close()
    if args.expect_late:
        if arrived:
            print(f"FAIL event arrived in {elapsed * 1000:.1f} ms, expected it held back (> {args.max}s)")
            return 1
        held = "the event" if ready else "the whole stream, ready event included,"
        print(f"ok   {held} held back for more than {args.max}s, as a buffering proxy does")
        return 0
    if not arrived:
        print(f"FAIL published SSE event not received within {args.max}s")
        return 1
    print(f"ok   SSE event arrived {elapsed * 1000:.1f} ms after publish (limit {args.max * 1000:.0f} ms)")
    return 0


def silent_ws(args):
    key = base64.b64encode(os.urandom(16)).decode()
    s = connect(args.base, f"/topics/{args.topic}/ws",
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
    buf = bytearray()
    deadline = time.monotonic() + args.hold
    if not read_until(s, buf, b"\r\n\r\n", deadline) or not buf.startswith(b"HTTP/1.1 101"):
        print(f"FAIL no 101 upgrade: {bytes(buf[:200])!r}")
        return 1
    del buf[: buf.index(b"\r\n\r\n") + 4]
    # Read (and never answer) frames until the server closes.
    while True:
        while len(buf) >= 2:
            op, n = buf[0] & 0x0F, buf[1] & 0x7F
            hdr = 2
            if n == 126:
                hdr, n = 4, int.from_bytes(buf[2:4], "big") if len(buf) >= 4 else None
            elif n == 127:
                hdr, n = 10, int.from_bytes(buf[2:10], "big") if len(buf) >= 10 else None
            if n is None or len(buf) < hdr + n:
                break
            payload = bytes(buf[hdr: hdr + n])
            del buf[: hdr + n]
            if op == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                s.close()
                if code == args.expect_code:
                    print(f"ok   server closed the silent WebSocket with {code}")
                    return 0
                print(f"FAIL close code {code}, expected {args.expect_code}")
                return 1
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"FAIL server kept a silent WebSocket open for {args.hold}s")
            return 1
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            print("FAIL connection closed without a close frame")
            return 1
        buf.extend(chunk)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sse-latency")
    p.add_argument("base")
    p.add_argument("topic")
    p.add_argument("--max", type=float, default=1.0, help="seconds allowed publish → arrival")
    p.add_argument("--connect-timeout", type=float, default=5.0)
    p.add_argument("--expect-late", action="store_true")
    p.set_defaults(func=sse_latency)
    p = sub.add_parser("silent-ws")
    p.add_argument("base")
    p.add_argument("topic")
    p.add_argument("--hold", type=float, default=10.0, help="give up after this many seconds")
    p.add_argument("--expect-code", type=int, default=1008)
    p.set_defaults(func=silent_ws)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
