"""The hub's hpfeeds broker (`apiary serve --hpfeeds`) with real peers.

- The PyPI `hpfeeds3` client library (pinned in requirements-clients.txt) authenticates,
  publishes and subscribes through our broker; a wrong secret gets the broker's ERROR.
- A `cowrie.sessions` message published by an ident mapped to a feed lands in that feed, and a
  subscriber of `apiary.sightings` receives the new sighting as native JSON.
- A real Cowrie honeypot with `[output_hpfeeds3]` (pinned in requirements-cowrie.txt) delivers
  a session to the hub over hpfeeds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import Hub, _make_hub, clean_env, free_port, require, tail

hpfeeds = pytest.importorskip("hpfeeds", reason="hpfeeds3 is not installed in CLIENTS_VENV")

OWNER = "pots-owner"


class HpfeedsHub(Hub):
    """`apiary serve` with `--hpfeeds 127.0.0.1:<port>` as well."""

    def start(self, timeout: float = 30.0) -> None:
        self.hpfeeds_port = free_port()
        self.port = free_port()
        self.starts += 1
        self.log_path = self.logs / f"hub-{self.starts}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}",
                 "--hpfeeds", f"127.0.0.1:{self.hpfeeds_port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=clean_env(RUST_BACKTRACE="1", APIARY_LOG="info,apiary_server::hpfeeds=debug"),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"apiary serve exited at start:\n{tail(self.log_path)}"
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200 and self._broker_up():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill9()
        raise AssertionError(f"hub with hpfeeds did not come up in {timeout}s:\n{tail(self.log_path)}")

    def _broker_up(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.hpfeeds_port), timeout=1):
                return True
        except OSError:
            return False

    def ident(self, ident: str, *args: str) -> str:
        secret = f"{ident}-s3cret"
        self.cli("hpfeeds", "ident", "add", ident, "--secret", secret, *args, "--data", str(self.data))
        return secret


@pytest.fixture(scope="module")
def hp_hub(apiary_bin: Path, tmp_path_factory):
    base = tmp_path_factory.mktemp("hpfeeds-hub")
    plain = _make_hub(apiary_bin, base)
    h = HpfeedsHub(plain.binary, plain.data, plain.logs)
    # Accounts and idents first: the admin CLI works on the data directory, hub running or not.
    h.cli("user", "add", OWNER, "--data", str(h.data))
    for feed in ("sessions", "cowrie-hp"):
        h.cli("feed", "create", f"{OWNER}/{feed}", "--data", str(h.data))
    h.ident("sensor-1", "--publish", "cowrie.sessions,test.chan", "--feed", f"{OWNER}/sessions")
    h.ident("consumer", "--subscribe", "test.chan,cowrie.sessions,apiary.sightings")
    h.ident("cowrie-pot", "--publish", "cowrie.sessions", "--feed", f"{OWNER}/cowrie-hp")
    h.start()
    yield h
    h.stop()


class Subscriber:
    """An hpfeeds3 client subscribed to channels, collecting what arrives in a thread."""

    def __init__(self, hub: HpfeedsHub, ident: str, channels: list[str]):
        self.client = hpfeeds.new("127.0.0.1", hub.hpfeeds_port, ident, f"{ident}-s3cret", reconnect=False)
        self.client.subscribe(channels)
        self.messages: list[tuple[str, str, bytes]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        def on_message(ident, channel, payload):
            with self.lock:
                self.messages.append((ident, channel, bytes(payload)))

        def on_error(text):
            with self.lock:
                self.errors.append(text)

        try:
            self.client.run(on_message, on_error)
        except Exception as e:  # the socket closed under it at the end of a test
            with self.lock:
                self.errors.append(f"run ended: {e}")

    def wait_for(self, predicate, timeout: float = 20.0) -> list[tuple[str, str, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.messages if predicate(m)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"nothing matching arrived in {timeout}s; got {self.messages[-5:]}, errors {self.errors}")

    def close(self) -> None:
        self.client.stop()
        self.client.close()


def _settle(publisher, sub: Subscriber) -> None:
    """Subscriptions get no reply: publish markers until the subscriber sees one."""
    deadline = time.monotonic() + 20
    n = 0
    while time.monotonic() < deadline:
        marker = f"sync-{n}".encode()
        publisher.publish("test.chan", marker)
        time.sleep(0.1)
        with sub.lock:
            if any(m[2].startswith(b"sync-") for m in sub.messages):
                return
        n += 1
    raise AssertionError(f"subscription never took effect; errors {sub.errors}")


def test_hpfeeds3_client_publishes_and_subscribes(hp_hub):
    sub = Subscriber(hp_hub, "consumer", ["test.chan"])
    pub = hpfeeds.new("127.0.0.1", hp_hub.hpfeeds_port, "sensor-1", "sensor-1-s3cret", reconnect=False)
    assert pub.brokername == "apiary"
    try:
        _settle(pub, sub)
        for i in range(200):
            pub.publish("test.chan", f"message {i}".encode())
        got = sub.wait_for(lambda m: m[2] == b"message 199")
        assert got[0][:2] == ("sensor-1", "test.chan"), "delivered with the publisher's ident"
        with sub.lock:
            payloads = [m[2] for m in sub.messages if not m[2].startswith(b"sync-")]
        assert payloads == [f"message {i}".encode() for i in range(200)], "every message, in order"
        assert not sub.errors, sub.errors
    finally:
        sub.close()
        pub.close()


def test_hpfeeds3_client_with_a_wrong_secret_gets_the_error(hp_hub):
    c = hpfeeds.new("127.0.0.1", hp_hub.hpfeeds_port, "sensor-1", "not-the-secret", reconnect=False)
    try:
        assert c.wait(timeout=5) == "Authentication failed"
    finally:
        c.close()


def test_hpfeeds3_client_cannot_publish_outside_its_channels(hp_hub):
    c = hpfeeds.new("127.0.0.1", hp_hub.hpfeeds_port, "sensor-1", "sensor-1-s3cret", reconnect=False)
    try:
        c.publish("dionaea.capture", b"{}")
        err = c.wait(timeout=5)
        assert err and "not allowed to pub here" in err, err
    finally:
        c.close()


def _session_message(session: str, ip: str) -> bytes:
    """What Cowrie's output_hpfeeds3 publishes when a session closes."""
    return json.dumps({
        "session": session, "startTime": "2026-12-01T10:00:00.000000Z", "endTime": "2026-12-01T10:00:09.000000Z",
        "peerIP": ip, "peerPort": 50123, "hostIP": "10.1.2.3", "hostPort": 2222,
        "loggedin": ["root", "admin"], "credentials": [["root", "root"]], "commands": ["cat /proc/cpuinfo"],
        "unknownCommands": [], "urls": [], "version": "SSH-2.0-Go", "ttylog": None, "hashes": [],
        "protocol": "ssh",
    }).encode()


def test_cowrie_sessions_message_lands_in_the_feed_and_on_apiary_sightings(hp_hub):
    sub = Subscriber(hp_hub, "consumer", ["test.chan", "apiary.sightings"])
    pub = hpfeeds.new("127.0.0.1", hp_hub.hpfeeds_port, "sensor-1", "sensor-1-s3cret", reconnect=False)
    try:
        _settle(pub, sub)
        pub.publish("cowrie.sessions", _session_message("0123456789ab", "203.0.113.99"))
        got = sub.wait_for(lambda m: m[1] == "apiary.sightings" and b"203.0.113.99" in m[2])
        ident, _, payload = got[0]
        assert ident == "apiary"
        s = json.loads(payload)
        assert s["indicator"] == "203.0.113.99" and s["itype"] == "ipv4"
        assert s["feed"] == f"{OWNER}/sessions"
        # the sightings log keeps tags sorted: compare as a set of words
        assert sorted(s["tags"]) == ["bruteforce", "commands", "login"]
        assert s["portlist"] == [2222] and s["protocol"] == "ssh" and s["sensor"] == "sensor-1"

        recs = [r for r in hp_hub.feed_records(f"{OWNER}/sessions") if r["indicator"] == "203.0.113.99"]
        assert len(recs) == 1, recs
        assert recs[0]["firsttime"] == "2026-12-01T10:00:00Z" and recs[0]["lasttime"] == "2026-12-01T10:00:09Z"
    finally:
        sub.close()
        pub.close()


# -- a real Cowrie with [output_hpfeeds3] ----------------------------------------------------------

# hpfeeds3 0.9.10 (the newest) decorates ClientSessionService's async context-manager methods with
# `asyncio.coroutine`, which Python 3.11 removed, so `import hpfeeds.twisted` (and with it Cowrie's
# output_hpfeeds3) fails on Python 3.11+. Cowrie's plugin never uses those methods; giving the
# decorator back as the identity lets the real plugin load unchanged. docs/hpfeeds.md tells
# operators the same.
SITECUSTOMIZE = """\
import asyncio
if not hasattr(asyncio, "coroutine"):
    asyncio.coroutine = lambda f: f
"""


def test_real_cowrie_delivers_a_session_over_hpfeeds(hp_hub, cowrie_venv, world_readable_tmp):
    require(shutil.which("ssh") is not None, "an OpenSSH client (ssh) is not installed")
    require((cowrie_venv / "bin" / "python").exists(), "the Cowrie venv has no python")
    shim = world_readable_tmp / "py311-shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SITECUSTOMIZE)
    probe = subprocess.run([str(cowrie_venv / "bin" / "python"), "-c", "import hpfeeds.twisted"],
                           capture_output=True, text=True, env=clean_env(PYTHONPATH=str(shim)))
    require(probe.returncode == 0, f"hpfeeds3 does not import in the Cowrie venv: {probe.stderr[-300:]}")
    from test_cowrie import Cowrie

    class HpfeedsCowrie(Cowrie):
        def _run(self, *args: str) -> subprocess.CompletedProcess:
            env = clean_env(
                PATH=f"{self.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                PYTHONPATH=str(shim),
                TZ="UTC",
                HOME=str(self.dir),
            )
            cmd = [*self.as_user, "env", *(f"{k}={v}" for k, v in env.items()), "cowrie", *args]
            return subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)

    sub = Subscriber(hp_hub, "consumer", ["test.chan", "cowrie.sessions"])
    pub = hpfeeds.new("127.0.0.1", hp_hub.hpfeeds_port, "sensor-1", "sensor-1-s3cret", reconnect=False)
    c = HpfeedsCowrie(cowrie_venv, world_readable_tmp, hp_hub, token="unused")
    cfg = c.dir / "etc" / "cowrie.cfg"
    text = cfg.read_text()
    # This Cowrie reports over hpfeeds only.
    text = text.replace("[output_csirtg]\nenabled = true", "[output_csirtg]\nenabled = false")
    text += (
        "[output_hpfeeds3]\nenabled = true\nserver = 127.0.0.1\n"
        f"port = {hp_hub.hpfeeds_port}\nidentifier = cowrie-pot\nsecret = cowrie-pot-s3cret\n"
    )
    cfg.write_text(text)
    c.start()
    try:
        _settle(pub, sub)
        # Cowrie's hpfeeds client connects in the background: a session that closes before it
        # has authenticated is not sent, so wait for the broker to log the login first.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "ident=cowrie-pot" not in hp_hub.log():
            time.sleep(0.2)
        assert "ident=cowrie-pot" in hp_hub.log(), "Cowrie never authenticated\ncowrie.log:\n" + tail(c.log)
        c.attack()
        # Cowrie publishes when the session closes.
        got = sub.wait_for(lambda m: m[1] == "cowrie.sessions" and m[0] == "cowrie-pot", timeout=60)
        msg = json.loads(got[0][2])
        assert msg["peerIP"] == "127.0.0.1" and msg["protocol"] == "ssh", msg
        deadline = time.monotonic() + 30
        recs = []
        while time.monotonic() < deadline and not recs:
            recs = [r for r in hp_hub.feed_records(f"{OWNER}/cowrie-hp") if r["indicator"] == "127.0.0.1"]
            time.sleep(0.2)
        assert recs, "the session never reached the feed\nhub log:\n" + hp_hub.log()[-4000:] + "\ncowrie.log:\n" + tail(c.log)
        rec = recs[0]
        assert rec["reserved"] == "loopback"
        assert rec["protocol"] == "ssh"
        assert rec["portlist"] == [c.port], "the honeypot's port, from hostPort"
        assert {"scanner", "bruteforce"} & set(rec["tags"]), rec
    finally:
        c.stop()
        sub.close()
        pub.close()
