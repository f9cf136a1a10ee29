"""`apiary sensor`, the shipper beside a honeypot, against the real hub (docs/sensor.md).

- A real Cowrie writes `cowrie.json`; `apiary sensor run` tails it and the hub holds every event,
  then the sessionizer turns the session into a sighting with the sensor as its source.
- Crash tests on a large generated log (scripts/gen-cowrie.py): `kill -9` the hub while the sensor
  ships, restart it; `kill -9` the shipper mid-way, restart it. Either way the hub ends up holding
  exactly the events of the file — each line's key once, each event's content once — and the
  sightings derived from them equal an independent `apiary import cowrie` of the same file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import conftest
from conftest import REPO, clean_env, require, tail

USER = "sensor-ops"
FEED = f"{USER}/pots"
SENSOR = "fra1"


# -- helpers ---------------------------------------------------------------------------------------
def expected_events(path: Path, sensor: str) -> dict[str, str]:
    """Each JSON line of the log by the key the shipper gives it: sha256(sensor ␟ fingerprint ␟
    offset), the fingerprint being the sha256 of the file's first line (computed here a second
    way, from the documented rule)."""
    data = path.read_bytes()
    first = data.split(b"\n", 1)[0].rstrip(b"\r")[:4096]
    fingerprint = hashlib.sha256(first).hexdigest()
    out: dict[str, str] = {}
    offset = 0
    for raw in data.split(b"\n")[:-1]:
        line = raw.rstrip(b"\r").strip()
        if line:
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict):
                key = hashlib.sha256(b"\x1f".join([sensor.encode(), fingerprint.encode(), str(offset).encode()])).hexdigest()
                out[key] = json.dumps(event, sort_keys=True)
        offset += len(raw) + 1
    return out


def hub_events(hub, token: str, feed: str = FEED) -> list[dict]:
    items: list[dict] = []
    after = 0
    while True:
        r = hub.api("GET", f"/api/v1/feeds/{feed}/events", token, params={"after": after, "limit": 10000})
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        if not body["next"]:
            return items
        after = body["next"]


def event_counts(hub, token: str, feed: str = FEED) -> dict:
    r = hub.api("GET", f"/api/v1/feeds/{feed}/events", token)
    assert r.status_code == 200, r.text
    return r.json()


def assert_exactly(hub, token: str, log: Path, sensor: str = SENSOR) -> None:
    """The hub holds each line of `log` once: by key and by content."""
    want = expected_events(log, sensor)
    got = hub_events(hub, token)
    keys = Counter(e["key"] for e in got)
    doubled = [k for k, n in keys.items() if n > 1]
    assert not doubled, f"{len(doubled)} keys stored twice"
    missing = set(want) - set(keys)
    extra = set(keys) - set(want)
    assert not missing and not extra, f"{len(missing)} events lost, {len(extra)} unknown ones stored (of {len(want)})"
    assert len(got) == len(want)
    contents = Counter(json.dumps(e["event"], sort_keys=True) for e in got)
    assert contents == Counter(want.values()), "stored events differ from the log's lines"
    assert all(e["sensor"] == sensor and e["kind"] == "cowrie" for e in got)


class Shipper:
    """One `apiary sensor run` process."""

    def __init__(self, binary: Path, workdir: Path, hub, token: str, log: Path, **settings):
        self.binary = binary
        self.dir = workdir
        self.log = log
        self.config = workdir / "sensor.toml"
        self.spool = workdir / "spool"
        conf = {
            "log": str(log), "hub": hub.url, "token": token, "feed": FEED, "sensor": SENSOR,
            "spool": str(self.spool), "poll_ms": 50, "backoff_initial_ms": 100, "backoff_max_ms": 1000,
            "timeout_secs": 10, **settings,
        }
        self.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in conf.items()))
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.out_path: Path | None = None
        self.err_path: Path | None = None

    def start(self, *extra: str) -> None:
        self.runs += 1
        self.out_path = self.dir / f"shipper-{self.runs}.out"
        self.err_path = self.dir / f"shipper-{self.runs}.log"
        self.proc = subprocess.Popen(
            [str(self.binary), "sensor", "run", "--config", str(self.config), *extra],
            stdout=open(self.out_path, "wb"), stderr=open(self.err_path, "wb"), stdin=subprocess.DEVNULL,
            env=clean_env(RUST_BACKTRACE="1"),
        )

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"apiary sensor did not finish in {timeout}s:\n{tail(self.err_path)}")
        self.proc = None
        return code

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def summary(self) -> dict:
        return json.loads(self.out_path.read_text())


def restart_on_same_port(hub) -> None:
    """Start a stopped hub again where the shipper expects it."""
    port = hub.port
    original = conftest.free_port
    conftest.free_port = lambda: port
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                hub.start()
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        conftest.free_port = original


def generated_log(path: Path, events: int) -> Path:
    """A generated Cowrie log of whole sessions only (each one closed), as one sensor writes it."""
    raw = path.with_suffix(".raw")
    subprocess.run([sys.executable, str(REPO / "scripts" / "gen-cowrie.py"), "--events", str(events),
                    "--out", str(raw), "--sensors", "1"], check=True, capture_output=True)
    lines = raw.read_text().splitlines()
    closed = {json.loads(l)["session"] for l in lines if '"cowrie.session.closed"' in l}
    path.write_text("".join(l + "\n" for l in lines if json.loads(l)["session"] in closed))
    return path


def wait_for(what: str, check, timeout: float, detail=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen in {timeout}s\n{detail()}")


def records(hub, token: str, feed: str) -> dict[str, int]:
    return {r["indicator"]: r["count"] for r in hub.feed_records(feed, token)}


def assert_sightings_match_an_import(hub, token: str, log: Path) -> None:
    """Once the sessionizer is done, the feed's records (value, count) equal those of an
    independent `apiary import cowrie` of the same file: no session derived twice or lost."""
    wait_for("the sessionizer finishing", lambda: event_counts(hub, token)["pending"] == 0, 120,
             lambda: json.dumps(event_counts(hub, token)))
    hub.cli("import", "cowrie", "--feed", f"{USER}/imported", "--sensor", SENSOR, "--hub", hub.url,
            "--token", token, "--no-progress", str(log))
    shipped = records(hub, token, FEED)
    imported = records(hub, token, f"{USER}/imported")
    assert shipped, "no sightings were derived"
    assert shipped == imported, (
        f"{len(shipped)} records shipped vs {len(imported)} imported; differing: "
        f"{sorted(set(shipped.items()) ^ set(imported.items()))[:5]}"
    )


@pytest.fixture
def ops(hub):
    token = hub.add_user(USER)
    hub.create_feed(FEED)
    hub.create_feed(f"{USER}/imported")
    return token


# -- a real Cowrie ----------------------------------------------------------------------------------
def test_real_cowrie_log_is_shipped_event_by_event(hub, ops, apiary_bin, cowrie_venv, world_readable_tmp, tmp_path):
    require(shutil.which("ssh") is not None, "an OpenSSH client (ssh) is not installed")
    from test_cowrie import Cowrie

    cowrie = Cowrie(cowrie_venv, world_readable_tmp, hub, ops)
    cowrie.start()
    shipper = Shipper(apiary_bin, tmp_path, hub, ops, cowrie.json_log, drop_fields=["password"])
    try:
        shipper.start()
        for _ in range(2):
            cowrie.attack()
        wait_for("two closed sessions in cowrie.json",
                 lambda: cowrie.json_log.read_text().count("cowrie.session.closed") >= 2, 30, lambda: tail(cowrie.log))
        n = len(expected_events(cowrie.json_log, SENSOR))
        wait_for(f"the hub holding all {n} events", lambda: event_counts(hub, ops)["events"] >= n, 30,
                 lambda: tail(shipper.err_path))
    finally:
        cowrie.stop()
    shipper.stop()
    want = expected_events(cowrie.json_log, SENSOR)
    got = hub_events(hub, ops)
    assert {e["key"] for e in got} == set(want), "every event of the real log, by key"
    for e in got:
        assert "password" not in e["event"], "a dropped field left the sensor"
        logged = json.loads(want[e["key"]])
        logged.pop("password", None)
        assert e["event"] == logged
    eventids = {e["event"]["eventid"] for e in got}
    assert {"cowrie.session.connect", "cowrie.client.version", "cowrie.session.closed"} <= eventids, eventids

    # The sessionizer made the session's sighting, with the sensor as its source.
    def sighting():
        r = hub.api("GET", "/api/v1/indicators/127.0.0.1", ops)
        return r.status_code == 200 and [s for s in r.json()["sightings"] if s["feed"] == FEED]
    sessions = {json.loads(v)["session"] for v in want.values() if json.loads(v).get("src_ip") == "127.0.0.1"}
    assert len(sessions) >= 2
    wait_for("a sighting per session", lambda: len(sighting() or []) >= len(sessions), 30, lambda: hub.log()[-3000:])
    time.sleep(1.5)  # a second round of the sessionizer adds nothing
    sightings = sighting()
    assert len(sightings) == len(sessions), sightings  # one per session, none twice
    assert all(s["sensor"] == SENSOR for s in sightings), sightings
    assert all({"ssh"} <= set(s["tags"]) or s["protocol"] == "ssh" for s in sightings), sightings


# -- crash tests ------------------------------------------------------------------------------------
N_EVENTS = 60_000


def test_kill9_hub_while_shipping(hub, ops, apiary_bin, tmp_path):
    log = generated_log(tmp_path / "cowrie.json", N_EVENTS)
    shipper = Shipper(apiary_bin, tmp_path, hub, ops, log, batch_events=500)
    shipper.start("--once", "--json")
    wait_for("the first events at the hub", lambda: event_counts(hub, ops)["events"] > 5000, 120,
             lambda: tail(shipper.err_path))
    hub.kill9()
    held = None
    time.sleep(2)  # the shipper meets a dead hub and spools
    restart_on_same_port(hub)
    held = event_counts(hub, ops)["events"]
    code = shipper.wait(600)
    assert code == 0, tail(shipper.err_path)
    summary = shipper.summary()
    assert summary["failed_requests"] > 0, "the shipper never saw the hub down"
    assert summary["not_json"] == 0 and summary["refused"] == 0, summary
    assert 0 < held < N_EVENTS
    assert_exactly(hub, ops, log)
    assert_sightings_match_an_import(hub, ops, log)


def test_kill9_shipper_mid_way(hub, ops, apiary_bin, tmp_path):
    log = generated_log(tmp_path / "cowrie.json", N_EVENTS)
    shipper = Shipper(apiary_bin, tmp_path, hub, ops, log, batch_events=500)
    total = len(expected_events(log, SENSOR))
    for fraction in (0.2, 0.5):
        shipper.start()
        wait_for(f"{fraction:.0%} of the events at the hub",
                 lambda: event_counts(hub, ops)["events"] > total * fraction, 300, lambda: tail(shipper.err_path))
        shipper.kill9()
    shipper.start("--once", "--json")
    assert shipper.wait(600) == 0, tail(shipper.err_path)
    summary = shipper.summary()
    assert summary["accepted"] > 0
    assert_exactly(hub, ops, log)
    assert_sightings_match_an_import(hub, ops, log)


def test_rotation_and_truncation_while_shipping(hub, ops, apiary_bin, tmp_path):
    """The log is rotated by rename, then copytruncated, while the shipper follows it: every
    line written lands once."""
    log = tmp_path / "cowrie.json"
    src = generated_log(tmp_path / "all.json", 3000).read_text().splitlines(keepends=True)
    parts = [src[:1000], src[1000:2000], src[2000:]]
    shipper = Shipper(apiary_bin, tmp_path, hub, ops, log)
    log.write_text("".join(parts[0]))
    shipper.start()
    wait_for("part 1", lambda: event_counts(hub, ops)["events"] >= 1000, 60, lambda: tail(shipper.err_path))
    rotated = tmp_path / "cowrie.json.1"
    log.rename(rotated)
    log.write_text("".join(parts[1]))
    wait_for("part 2", lambda: event_counts(hub, ops)["events"] >= 2000, 60, lambda: tail(shipper.err_path))
    copied = tmp_path / "cowrie.json.2"
    shutil.copy(log, copied)
    with open(log, "r+") as f:
        f.truncate(0)
    with open(log, "a") as f:
        f.write("".join(parts[2][:500]))
        f.write(parts[2][500][:40])  # a half line: waits for the rest
    wait_for("part 3a", lambda: event_counts(hub, ops)["events"] >= 2500, 60, lambda: tail(shipper.err_path))
    time.sleep(0.5)
    assert event_counts(hub, ops)["events"] == 2500, "the half line was not shipped"
    with open(log, "a") as f:
        f.write(parts[2][500][40:])
        f.write("".join(parts[2][501:]))
        f.write("this line is not JSON\n")
    wait_for("part 3b", lambda: event_counts(hub, ops)["events"] >= len(src), 60, lambda: tail(shipper.err_path))
    shipper.stop()
    got = Counter(json.dumps(e["event"], sort_keys=True) for e in hub_events(hub, ops))
    assert got == Counter(json.dumps(json.loads(l), sort_keys=True) for l in src), "each line once"
    bad_line = len(parts[2]) + 1  # numbered in the truncated file
    assert f"line {bad_line} of cowrie.json" in shipper.err_path.read_text(), "the non-JSON line is reported with its number"
