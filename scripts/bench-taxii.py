#!/usr/bin/env python3
"""TAXII page latency: walk one collection with `limit=N`, following `next`, timing each request
(including reading the body) over one keep-alive connection, as a TAXII client polls.

    scripts/bench-taxii.py --hub http://127.0.0.1:8099 --token TOKEN --collection bench/million [--limit 1000] [--walks 3]

Prints p50/p90/p99/max per walk and checks the walk: every object once, ascending date added.
Needs `requests` (the interop venv has it).
"""
import argparse
import statistics
import sys
import time

import requests

ACCEPT = "application/taxii+json;version=2.1"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def walk(s, base, cid, limit):
    url = f"{base}/taxii2/apiary/collections/{cid}/objects/"
    times, count, last_added, ids = [], 0, "", set()
    nxt = None
    while True:
        params = {"limit": limit}
        if nxt:
            params["next"] = nxt
        t0 = time.perf_counter()
        r = s.get(url, params=params, headers={"Accept": ACCEPT})
        body = r.content
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        env = r.json() if body else {}
        objs = env.get("objects", [])
        for o in objs:
            assert o["modified"] >= last_added, "pages must run in ascending date added"
            last_added = o["modified"]
            ids.add(o["id"])
        count += len(objs)
        nxt = env.get("next")
        if not env.get("more"):
            break
    assert count == len(ids), f"{count} objects, {len(ids)} distinct"
    return times, count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hub", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--collection", required=True, help="the feed's owner/name")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--walks", type=int, default=3)
    a = ap.parse_args()
    s = requests.Session()
    s.auth = ("bench", a.token)
    cols = s.get(f"{a.hub}/taxii2/apiary/collections/", headers={"Accept": ACCEPT}).json()["collections"]
    cid = next(c["id"] for c in cols if c["title"] == a.collection)
    p99s = []
    for i in range(a.walks):
        times, count = walk(s, a.hub, cid, a.limit)
        ms = [t * 1000 for t in times]
        p99s.append(pct(ms, 99))
        print(f"walk {i + 1}: {len(ms)} pages, {count} objects; p50 {pct(ms, 50):.1f} ms, p90 {pct(ms, 90):.1f} ms, "
              f"p99 {pct(ms, 99):.1f} ms, max {max(ms):.1f} ms")
    print(f"median p99 {statistics.median(p99s):.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
