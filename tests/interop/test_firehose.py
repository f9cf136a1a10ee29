"""The firehose with real clients: csirtgsdk 1.1.5's `csirtg-firehose` code and `apiary stream`.

The CLI's websocket URL is hard-coded to the public host, so the test runs the same class the
CLI runs, `csirtgsdk.client.firehose.DefaultHandler(remote=..., token=...).run()`, which prints
each ActionCable `message` (a Python dict) on its own line.
"""

from __future__ import annotations

import ast
import queue
import subprocess
import threading
import time

import pytest

from conftest import clean_env

RUN_HANDLER = (
    "import sys\n"
    "from csirtgsdk.client.firehose import DefaultHandler\n"
    "DefaultHandler(remote=sys.argv[1], token=sys.argv[2]).run()\n"
)


class Lines:
    """The lines a process prints, read on a thread."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))

    def until(self, pred, timeout: float) -> list[str]:
        """Lines read until one satisfies `pred` (fails after `timeout` seconds)."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"the client exited ({self.proc.returncode}); printed {seen}"
                continue
            seen.append(line)
            if pred(line):
                return seen
        raise AssertionError(f"not printed within {timeout}s; printed: {seen[-20:]}")


def publish(hub, token, feed, values):
    r = hub.api("POST", f"/api/v1/feeds/{feed}/indicators", token,
                json=[{"indicator": v, "tags": ["scanner", "ssh"], "portlist": 22, "protocol": "tcp"} for v in values])
    assert r.status_code == 201, r.text


@pytest.fixture
def firehose_client(hub, clients_venv):
    procs = []

    def start(token: str) -> Lines:
        p = subprocess.Popen(
            [str(clients_venv / "bin" / "python"), "-u", "-c", RUN_HANDLER, f"ws://127.0.0.1:{hub.port}/firehose", token],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, env=clean_env(),
        )
        procs.append(p)
        return Lines(p)

    yield start
    for p in procs:
        p.kill()
        p.wait(timeout=10)


def printed_message(line: str) -> dict | None:
    try:
        v = ast.literal_eval(line)
    except (ValueError, SyntaxError):
        return None
    return v if isinstance(v, dict) else None


def test_csirtg_firehose_prints_what_is_published_while_connected(hub, firehose_client):
    alice = hub.add_user("alice", "read,write")
    bob = hub.add_user("bob", "read")
    hub.create_feed("alice/pots")
    hub.cli("feed", "create", "alice/secret", "--private", "--data", str(hub.data))
    client = firehose_client(bob)

    # Connected and subscribed once a probe published now comes out.
    probe = iter(f"192.0.2.{i}" for i in range(1, 200))
    deadline = time.monotonic() + 60
    while True:
        value = next(probe)
        publish(hub, alice, "alice/pots", [value])
        try:
            client.until(lambda line: value in line, timeout=1.5)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the firehose client never printed a probe"

    # Private first: bob may not read it, so the public value is the next thing printed.
    publish(hub, alice, "alice/secret", ["198.51.100.99"])
    publish(hub, alice, "alice/pots", ["203.0.113.7", "evil.example"])
    lines = client.until(lambda line: "evil.example" in line, timeout=30)
    messages = [m for m in map(printed_message, lines) if m]
    assert [m["indicator"] for m in messages] == ["203.0.113.7", "evil.example"], lines
    first = messages[0]
    assert first["provider"] == "alice/pots"
    assert first["itype"] == "ipv4"
    assert first["tags"] == ["scanner", "ssh"]
    assert first["portlist"] == [22]
    assert first["protocol"] == "tcp"
    assert first["firsttime"] and first["lasttime"]
    assert not any("198.51.100.99" in line for line in lines)


def test_apiary_stream_prints_and_resumes(hub):
    alice = hub.add_user("alice", "read,write")
    hub.create_feed("alice/pots")
    hub.create_feed("alice/other")
    publish(hub, alice, "alice/pots", ["192.0.2.1", "192.0.2.2"])
    publish(hub, alice, "alice/other", ["192.0.2.3"])
    publish(hub, alice, "alice/pots", ["192.0.2.4"])
    # From the start of the log (`--after 0`), one feed, as JSON lines.
    p = hub.cli("stream", "--hub", hub.url, "--token", alice, "--feed", "alice/pots", "--after", "0", "--json",
                "--limit", "3", timeout=60)
    got = [__import__("json").loads(line) for line in p.stdout.splitlines()]
    assert [g["indicator"] for g in got] == ["192.0.2.1", "192.0.2.2", "192.0.2.4"]
    assert [g["seq"] for g in got] == sorted(g["seq"] for g in got)
    # Subscriptions through the CLI, then the subscribed stream.
    hub.cli("subscribe", "alice/other", "--hub", hub.url, "--token", alice)
    assert hub.cli("subscriptions", "--hub", hub.url, "--token", alice).stdout.split() == ["alice/other"]
    p = hub.cli("stream", "--hub", hub.url, "--token", alice, "--subscriptions", "--after", "0", "--limit", "1", timeout=60)
    assert "192.0.2.3" in p.stdout and "alice/other" in p.stdout
