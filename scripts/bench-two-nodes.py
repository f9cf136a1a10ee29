#!/usr/bin/env python3
"""Firehose delivery latency across two hub nodes (issue 8): publish on node A, receive on a
native stream (SSE) of node B. Standard library only; scripts/bench-scale-out.sh starts the nodes.

    scripts/bench-two-nodes.py --a http://127.0.0.1:8081 --b http://127.0.0.1:8082 \
        --token TOKEN --feed bench/honeypot [--n 500] [--rate 50]

Latency is from just before the publish request is sent to A until the event's line is read
from B's stream; it includes A's commit to PostgreSQL, the feeder's poll of the log (10 ms), the
publish to NATS JetStream and B's consumer. Publishes are sequential, at most --rate a second.
`--delete-stream NAME --nats HOST:PORT` removes a JetStream stream afterwards (plain NATS
protocol: a request to $JS.API.STREAM.DELETE.NAME).
"""

import argparse
import http.client
import json
import random
import socket
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request


def sse_reader(base, token, feed, arrivals, ready, stop):
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.request("GET", "/api/v1/stream?feeds=" + urllib.parse.quote(feed), headers={"Authorization": "Bearer " + token})
    resp = conn.getresponse()
    if resp.status != 200:
        print(f"stream on {base}: HTTP {resp.status}", file=sys.stderr)
        ready.set()
        return
    while not stop.is_set():
        line = resp.fp.readline()
        if not line:
            return
        now = time.perf_counter()
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith(": apiary stream"):
            ready.set()
        elif line.startswith("data: "):
            ev = json.loads(line[6:])
            arrivals.setdefault(ev.get("indicator"), now)


def publish(base, token, feed, value):
    body = json.dumps({"indicator": value, "tags": ["scanner"], "portlist": [22], "protocol": "tcp"}).encode()
    req = urllib.request.Request(
        f"{base}/api/v1/feeds/{feed}/indicators",
        data=body,
        method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status not in (200, 201):
            raise SystemExit(f"publish {value}: HTTP {r.status}")


def delete_stream(nats, name):
    host, port = nats.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()  # INFO
        inbox = "_INBOX.bench%08x" % random.getrandbits(32)
        s.sendall(b'CONNECT {"verbose":false}\r\n' + f"SUB {inbox} 1\r\nPUB $JS.API.STREAM.DELETE.{name} {inbox} 0\r\n\r\nPING\r\n".encode())
        while True:
            line = f.readline()
            if not line or line.startswith(b"MSG"):
                break


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--feed", required=True)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--delete-stream")
    ap.add_argument("--nats", default="127.0.0.1:4222")
    a = ap.parse_args()

    arrivals, sent = {}, {}
    ready, stop = threading.Event(), threading.Event()
    t = threading.Thread(target=sse_reader, args=(a.b, a.token, a.feed, arrivals, ready, stop), daemon=True)
    t.start()
    if not ready.wait(10):
        raise SystemExit("the stream on node B did not open within 10 s")
    tag = random.getrandbits(16)
    gap = 1.0 / a.rate
    for i in range(a.n):
        value = f"45.{100 + (tag >> 8) % 100}.{(tag + i // 250) & 0xff}.{i % 250 + 1}"
        started = time.perf_counter()
        sent[value] = started
        publish(a.a, a.token, a.feed, value)
        left = gap - (time.perf_counter() - started)
        if left > 0:
            time.sleep(left)
    deadline = time.perf_counter() + 10
    while len([v for v in sent if v in arrivals]) < len(sent) and time.perf_counter() < deadline:
        time.sleep(0.05)
    stop.set()
    lat = [(arrivals[v] - s) * 1000 for v, s in sent.items() if v in arrivals]
    lost = len(sent) - len(lat)
    if a.delete_stream:
        delete_stream(a.nats, a.delete_stream)
    if not lat:
        raise SystemExit("no event arrived on node B")
    print(
        f"two-node delivery (publish on A, SSE on B): n={len(sent)} received={len(lat)} lost={lost} "
        f"p50={statistics.median(lat):.1f} ms p90={pct(lat, 90):.1f} ms p99={pct(lat, 99):.1f} ms max={max(lat):.1f} ms"
    )
    if lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
