#!/usr/bin/env python3
"""Shipper CPU per 1,000 events/s (BENCHMARKS.md, "Honeypot shipper (issue 4)").

Starts a hub (`apiary serve`) on a temporary data directory, a feed and a token; then, per rate,
a fresh `apiary sensor run` follows a log that this script writes at a paced rate (generated
Cowrie events, scripts/gen-cowrie.py), waits until the hub holds every event, and reads the
shipper's CPU time (utime + stime) from /proc/PID/stat. Prints, per rate, the median over the
runs of the shipper's CPU time per 1,000 events and its CPU use in percent of one core.

    cargo build --release -p apiary
    scripts/bench-sensor.py --bin target/release/apiary --rates 1000,5000 --seconds 20 --runs 3
    scripts/bench-sensor.py --rates 1000 --set sync=false --set poll_ms=1000   # other settings

The shipper runs from a config file (docs/sensor.md) that this script writes; `--set KEY=VALUE`
adds a setting to it (the value as TOML: `sync=false`, `batch_events=500`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def get(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "apiary"))
    ap.add_argument("--rates", default="1000,5000", help="events per second, comma-separated")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a shipper setting for its config file, the value as TOML (repeat)")
    a = ap.parse_args()
    rates = [int(r) for r in a.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="apiary-bench-sensor-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIARY_")}
    data = work / "data"
    run = lambda *args: subprocess.run([a.bin, *args], check=True, capture_output=True, text=True, env=env)
    run("user", "add", "ops", "--data", str(data))
    token = run("token", "create", "--user", "ops", "--scopes", "read,write", "--data", str(data)).stdout.split()[-1]
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    hub = subprocess.Popen([a.bin, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
                           stdout=subprocess.DEVNULL, stderr=open(work / "hub.log", "wb"), env=env)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{hub_url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        most = int(max(rates) * a.seconds)
        pool = work / "pool.json"
        subprocess.run([sys.executable, str(REPO / "scripts" / "gen-cowrie.py"), "--events", str(most),
                        "--out", str(pool), "--sensors", "1"], check=True, capture_output=True)
        lines = pool.read_bytes().splitlines(keepends=True)
        print(f"shipper settings: {', '.join(a.set) or 'defaults'}")
        print(f"{'rate ev/s':>10} {'events':>8} {'CPU s':>7} {'CPU ms / 1k events':>19} {'% of a core':>12} {'% per 1k ev/s':>14}")
        for rate in rates:
            per_k, percent = [], []
            for i in range(a.runs):
                feed = f"r{rate}x{i}"
                run("feed", "create", f"ops/{feed}", "--data", str(data))
                d = work / feed
                d.mkdir()
                log = d / "cowrie.json"
                log.touch()
                n = int(rate * a.seconds)
                conf = {"log": str(log), "hub": hub_url, "token": token, "feed": f"ops/{feed}", "sensor": "bench",
                        "spool": str(d / "spool")}
                (d / "sensor.toml").write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in conf.items())
                                               + "".join(f"{kv}\n" for kv in a.set))
                shipper = subprocess.Popen(
                    [a.bin, "sensor", "run", "--config", str(d / "sensor.toml"), "--log-level", "warn"],
                    stdout=subprocess.DEVNULL, stderr=open(d / "shipper.log", "wb"), env=env)
                time.sleep(0.5)
                cpu0 = cpu_seconds(shipper.pid)
                start = time.monotonic()
                with open(log, "ab", buffering=0) as f:
                    written = 0
                    while written < n:
                        due = min(n, int((time.monotonic() - start) * rate) + 1)
                        if due > written:
                            f.write(b"".join(lines[written:due]))
                            written = due
                        time.sleep(0.01)
                while get(f"{hub_url}/api/v1/feeds/ops/{feed}/events", token)["events"] < n:
                    time.sleep(0.05)
                elapsed = time.monotonic() - start
                cpu = cpu_seconds(shipper.pid) - cpu0
                shipper.terminate()
                shipper.wait()
                per_k.append(cpu / n * 1000 * 1000)
                percent.append(cpu / elapsed * 100)
                print(f"{rate:>10} {n:>8} {cpu:>7.2f} {per_k[-1]:>19.1f} {percent[-1]:>12.2f} {percent[-1] / (rate / 1000):>14.2f}")
            mk, mp = statistics.median(per_k), statistics.median(percent)
            print(f"median {rate} ev/s: {mk:.1f} ms CPU per 1,000 events; {mp:.2f}% of a core; {mp / (rate / 1000):.2f}% of a core per 1,000 events/s")
    finally:
        hub.terminate()
        hub.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
