#!/usr/bin/env python3
"""Trust benchmark (issue 6): how soon a new sighting changes its indicator's score, measured
against a running `apiary serve` (release) that holds a large store.

The data directory is the one `bench_trust_job --data DIR` loads (1,000,000 indicators,
10,000,000 sightings; 300 feeds: root/f0..f9 are an admin's, so seeds; uN/fN are strangers on
probation). The script makes two tokens (`apiary token create`), starts the hub, waits until the
scoring job's first pass after the start has scored the whole store (timed: the catch-up), then
runs TRIALS trials. A trial: a stranger (u10/f10) reports a fresh address from a deep session and
the script waits until the hub has scored it (OBSERVE); then a seed (root/f0) reports it too,
which takes it to BLOCK, and the script polls GET /api/v1/scores/{value} every 20 ms until the
tier is BLOCK. The latency is from the seed's publish (its 201) to the first BLOCK read.

    cargo build --release -p apiary
    cargo run --release -p apiary-server --example bench_trust_job -- --data /tmp/h2-trust-data
    scripts/bench-trust-latency.py [--data DIR] [--trials N] [--port P]

Without --data the hub starts on a new, empty directory with just those two feeds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("APIARY_BIN", os.path.join(ROOT, "target", "release", "apiary"))
DEEP = ["bruteforce", "login", "commands", "download"]


def token(data, user, scopes):
    out = subprocess.run([BIN, "token", "create", "--user", user, "--scopes", scopes, "--data", data],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1].strip()


def call(base, method, path, tok, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Bearer " + tok)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def score(base, tok, value):
    status, body = call(base, "GET", "/api/v1/scores/" + value, tok)
    return body if status == 200 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--trials", type=int, default=25)
    ap.add_argument("--port", type=int, default=18096)
    ap.add_argument("--last", default="11.15.66.63",
                    help="the value bench_trust_job wrote last (its value(999999)): rescored means the first pass is done")
    a = ap.parse_args()
    fresh = a.data is None
    if fresh:
        a.data = tempfile.mkdtemp(prefix="apiary-trust-latency-")
        for cmd in (["user", "add", "root", "--admin"], ["user", "add", "u10"],
                    ["feed", "create", "root/f0"], ["feed", "create", "u10/f10"]):
            subprocess.run([BIN] + cmd + ["--data", a.data], check=True, capture_output=True)
    admin = token(a.data, "root", "read,write,admin")
    stranger = token(a.data, "u10", "read,write")
    base = "http://127.0.0.1:%d" % a.port
    log = open("/tmp/bench-trust-latency-hub.log", "w")
    hub = subprocess.Popen([BIN, "serve", "--data", a.data, "--listen", "127.0.0.1:%d" % a.port],
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except Exception:
                time.sleep(0.1)
        # The first pass after a start scores everything: wait until the value written last has
        # a score written after the start.
        while not fresh and (score(base, admin, a.last) or {}).get("scored_at", "")[:19] < since:
            if hub.poll() is not None:
                sys.exit("the hub stopped; see /tmp/bench-trust-latency-hub.log")
            time.sleep(0.5)
        if not fresh:
            print("hub start to the whole store scored: %.1f s" % (time.monotonic() - started))
        lat = []
        for k in range(a.trials):
            value = "95.%d.%d.%d" % (int(time.time()) % 200 + 1, k // 250, k % 250 + 1)
            status, body = call(base, "POST", "/api/v1/feeds/u10/f10/indicators", stranger,
                                [{"indicator": value, "tags": DEEP, "sensor": "s1"}])
            assert status == 201, (status, body)
            while True:
                s = score(base, admin, value)
                if s is not None:
                    break
                time.sleep(0.02)
            assert s["tier"] != "BLOCK", s
            status, body = call(base, "POST", "/api/v1/feeds/root/f0/indicators", admin,
                                [{"indicator": value, "tags": DEEP, "sensor": "s0"}])
            assert status == 201, (status, body)
            sent = time.monotonic()
            while True:
                s = score(base, admin, value)
                if s is not None and s["tier"] == "BLOCK":
                    break
                if time.monotonic() - sent > 60:
                    sys.exit("%s not BLOCK after 60 s: %s" % (value, s))
                time.sleep(0.02)
            lat.append(time.monotonic() - sent)
            print("trial %2d: %s BLOCK %.3f s after the seed's sighting (confidence %s)" % (k + 1, value, lat[-1], s["confidence"]))
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
        print("trials %d: p50 %.3f s, p99 %.3f s, max %.3f s, min %.3f s" % (
            len(lat), statistics.median(lat), p99, lat[-1], lat[0]))
        print("load average: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    finally:
        hub.terminate()
        hub.wait(timeout=60)


if __name__ == "__main__":
    main()
