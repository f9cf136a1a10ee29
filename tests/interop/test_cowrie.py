"""A real Cowrie honeypot (PyPI `cowrie`, with its [output_csirtg] plugin) publishing to the hub.

Recipe: ../shared/spec/real-clients.md. Cowrie refuses to run as root, so as root the harness runs
it as an unprivileged system user (created if missing); as any other user it runs as that user.
An OpenSSH client connection to its SSH port is the attack.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import clean_env, free_port, require, tail

COWRIE_USER = os.environ.get("APIARY_COWRIE_USER", "apiary-cowrie")
HUB_USER = "honeypot-ops"
FEED = "cowrie"


def _ensure_unprivileged_user() -> list[str]:
    """The command prefix that runs a program as a non-root user."""
    if os.getuid() != 0:
        return []
    try:
        pwd.getpwnam(COWRIE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", COWRIE_USER],
            check=True,
        )
    return ["runuser", "-u", COWRIE_USER, "--"]


class Cowrie:
    def __init__(self, venv: Path, workdir: Path, hub, token: str):
        self.venv = venv
        self.dir = workdir
        self.hub = hub
        self.port = free_port()
        self.as_user = _ensure_unprivileged_user()
        var = workdir / "var"
        for sub in ("log", "dl", "tty", "run"):
            (var / sub).mkdir(parents=True, exist_ok=True)
        (workdir / "etc").mkdir(exist_ok=True)
        (workdir / "etc" / "cowrie.cfg").write_text(
            f"""[honeypot]
hostname = testpot
state_path = {var}
download_path = {var}/dl
ttylog_path = {var}/tty
log_path = {var}/log
[ssh]
enabled = true
listen_endpoints = tcp:{self.port}:interface=127.0.0.1
[telnet]
enabled = false
[output_jsonlog]
enabled = true
logfile = {var}/log/cowrie.json
[output_csirtg]
enabled = true
username = {HUB_USER}
feed = {FEED}
description = random scanning activity
token = {token}
debug = true
"""
        )
        if self.as_user:
            subprocess.run(["chown", "-R", f"{COWRIE_USER}:", str(workdir)], check=True)
        self.log = var / "log" / "cowrie.log"
        self.json_log = var / "log" / "cowrie.json"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        env = clean_env(
            PATH=f"{self.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            CSIRTG_REMOTE=self.hub.csirtg_remote,
            CSIRTGSDK_CLIENT_HTTP_RETRIES_DELAY="1,1",
            TZ="UTC",
            HOME=str(self.dir),
        )
        # runuser resets nothing we set here except what it must (HOME/USER/LOGNAME are kept as given).
        cmd = [*self.as_user, "env", *(f"{k}={v}" for k, v in env.items()), "cowrie", *args]
        return subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def start(self) -> None:
        p = self._run("start")
        assert p.returncode == 0, f"cowrie start: {p.returncode}\n{p.stdout}\n{p.stderr}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.log.exists() and "Ready to accept SSH connections" in self.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise AssertionError(f"cowrie did not start listening in 60s:\n{p.stdout}\n{p.stderr}\n{tail(self.log)}")

    def stop(self) -> None:
        self._run("stop")
        pidfile = self.dir / "var" / "run" / "cowrie.pid"
        deadline = time.monotonic() + 20
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    def attack(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", str(self.port), "root@127.0.0.1", "true"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def cowrie(hub, cowrie_venv, world_readable_tmp):
    require(shutil.which("ssh") is not None, "an OpenSSH client (ssh) is not installed")
    token = hub.add_user(HUB_USER)
    hub.create_feed(f"{HUB_USER}/{FEED}")
    c = Cowrie(cowrie_venv, world_readable_tmp, hub, token)
    c.token = token
    c.start()
    yield c
    c.stop()


def test_cowrie_session_lands_in_feed(hub, cowrie):
    cowrie.attack()  # the login is refused (BatchMode, no key): the connection is the sighting

    records = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        records = [r for r in hub.feed_records(f"{HUB_USER}/{FEED}", cowrie.token) if r["indicator"] == "127.0.0.1"]
        if records:
            break
        time.sleep(0.2)
    assert records, (
        "127.0.0.1 never reached the feed\ncowrie.log:\n" + tail(cowrie.log) + "\nhub log:\n" + hub.log()[-4000:]
    )
    rec = records[0]
    assert rec["itype"] == "ipv4"
    assert rec["reserved"] == "loopback", rec
    assert set(rec["tags"]) >= {"scanner", "ssh"}, rec
    assert "22" in str(rec["portlist"]), rec
    assert rec["protocol"] == "tcp"
    assert rec["description"] == "random scanning activity"
    # Cowrie 3.1.4's csirtg-indicator 3.x sends its own confidence (3.0): kept as the publisher's claim.
    assert rec["claimed_confidence"] == pytest.approx(3.0), rec

    # The sighting keeps what Cowrie sent that the hub has no column for, and its TLP.
    r = hub.api("GET", "/api/v1/indicators/127.0.0.1", cowrie.token)
    assert r.status_code == 200, r.text
    sightings = [s for s in r.json()["sightings"] if s["feed"] == f"{HUB_USER}/{FEED}"]
    assert len(sightings) == 1, sightings
    assert {"uuid", "group"} <= set(sightings[0]["extra"]), sightings[0]
    assert sightings[0]["tlp"] == "amber"

    # Cowrie logged the location the hub answered with, and that location is the indicator.
    deadline = time.monotonic() + 10
    m = None
    while m is None and time.monotonic() < deadline:
        m = re.search(r"output_csirtg: submitted to csirtg at (\S+)", cowrie.log.read_text(errors="replace"))
        time.sleep(0.2)
    assert m, "Cowrie logged no location:\n" + tail(cowrie.log)
    location = m.group(1)
    assert location.startswith(hub.url + "/"), location
    r = requests.get(location, headers={"Authorization": f"Token token={cowrie.token}",
                                        "Accept": "application/vnd.csirtg.v1"}, timeout=10)
    assert r.status_code == 200, (location, r.status_code, r.text)
    assert r.json()["indicator"] == "127.0.0.1"

    # Cowrie's own JSON log recorded the same session.
    events = [json.loads(line) for line in cowrie.json_log.read_text().splitlines() if line.strip()]
    connects = [e for e in events if e["eventid"] == "cowrie.session.connect"]
    assert connects and connects[0]["src_ip"] == "127.0.0.1"
    assert connects[0]["timestamp"].endswith("Z")  # TZ=UTC


def test_cowrie_log_imports(hub, cowrie):
    """The real, current-format log Cowrie just wrote imports through `apiary import cowrie --hub`."""
    cowrie.attack()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "cowrie.session.closed" not in cowrie.json_log.read_text():
        time.sleep(0.2)
    p = hub.cli("import", "cowrie", "--feed", f"{HUB_USER}/imported", "--hub", hub.url,
                "--token", cowrie.token, str(cowrie.json_log))
    recs = [r for r in hub.records("127.0.0.1", cowrie.token) if r["feed"] == f"{HUB_USER}/imported"]
    assert len(recs) == 1, (recs, p.stdout, p.stderr)
    assert recs[0]["reserved"] == "loopback"
