"""Harness for the interop suite: the real `apiary` binary, on loopback, with a temporary data dir.

Run through `scripts/test` (which builds the binary and the pinned Python environments and sets
APIARY_BIN, CLIENTS_VENV and COWRIE_VENV). With CI=true a missing piece fails; elsewhere it skips
with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("APIARY_SHARED", REPO.parent / "shared"))
CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")

# Environment variables that would point a child process somewhere else than we say.
_LEAKY_PREFIXES = ("APIARY_", "CSIRTG_", "CSIRTGSDK_")


def require(condition: bool, reason: str) -> None:
    """A precondition of a test: in CI its absence is a failure, elsewhere a reported skip."""
    if condition:
        return
    if CI:
        pytest.fail(f"missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return "(no log)"


def parse_table(text: str) -> list[dict[str, str]]:
    """Rows of the first PrettyTable in `text` (what the csirtg CLI prints), as dicts."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    if not rows:
        return []
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    header, body = cells[0], cells[1:]
    return [dict(zip(header, r)) for r in body]


class Hub:
    """One `apiary serve` process on 127.0.0.1:<ephemeral port>, on its own data directory."""

    def __init__(self, binary: Path, data: Path, logs: Path):
        self.binary = binary
        self.data = data
        self.logs = logs
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.starts = 0
        self.log_path: Path | None = None

    # -- process ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def csirtg_remote(self) -> str:
        return f"{self.url}/api"

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None, "hub already running"
        self.port = free_port()
        self.starts += 1
        self.log_path = self.logs / f"hub-{self.starts}.log"
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(RUST_BACKTRACE="1"),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise AssertionError(f"apiary serve exited with {code} at start:\n{tail(self.log_path)}")
            try:
                r = requests.get(f"{self.url}/health", timeout=2)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill9()
        raise AssertionError(f"apiary serve did not answer /health in {timeout}s:\n{tail(self.log_path)}")

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL: no shutdown hook runs
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    # -- the binary's other commands -------------------------------------------------------
    def cli(self, *args: str, check: bool = True, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        """Run `apiary ARGS...`; on failure the assertion shows its output."""
        p = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=clean_env(**env),
        )
        if check:
            assert p.returncode == 0, (
                f"apiary {' '.join(args)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
            )
        return p

    def add_user(self, name: str, scopes: str = "read,write") -> str:
        """Create a user with the admin CLI on the data dir and return a new token for it."""
        self.cli("user", "add", name, "--data", str(self.data))
        out = self.cli("token", "create", "--user", name, "--scopes", scopes, "--data", str(self.data)).stdout
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        assert lines, "apiary token create printed nothing"
        token = lines[-1]
        assert " " not in token, f"last line of `apiary token create` is not a bare token: {token!r}"
        return token

    def create_feed(self, spec: str) -> None:
        self.cli("feed", "create", spec, "--data", str(self.data))

    # -- HTTP ------------------------------------------------------------------------------
    def api(self, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)

    def records(self, value: str, token: str | None = None, **params) -> list[dict]:
        """Every record of `value` the hub holds (native query API), following the cursor."""
        items: list[dict] = []
        params = {"q": value, "limit": 1000, **params}
        for _ in range(100):
            r = self.api("GET", "/api/v1/indicators", token, params=params)
            assert r.status_code == 200, f"GET /api/v1/indicators {params}: {r.status_code} {r.text}"
            body = r.json()
            items.extend(body["items"])
            if not body.get("next"):
                return items
            params["cursor"] = body["next"]
        raise AssertionError("query pagination did not end")

    def feed_records(self, feed: str, token: str | None = None, **params) -> list[dict]:
        items: list[dict] = []
        params = {"limit": 1000, **params}
        for _ in range(1000):
            r = self.api("GET", f"/api/v1/feeds/{feed}/indicators", token, params=params)
            assert r.status_code == 200, f"GET /api/v1/feeds/{feed}/indicators: {r.status_code} {r.text}"
            body = r.json()
            items.extend(body["items"])
            if not body.get("next"):
                return items
            params["cursor"] = body["next"]
        raise AssertionError("feed pagination did not end")


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def apiary_bin() -> Path:
    path = Path(os.environ.get("APIARY_BIN", REPO / "target" / "debug" / "apiary"))
    assert path.is_file() and os.access(path, os.X_OK), (
        f"{path} is not built: run the suite through scripts/test (it builds it), or set APIARY_BIN"
    )
    return path


@pytest.fixture(scope="session")
def clients_venv() -> Path:
    v = os.environ.get("CLIENTS_VENV")
    assert v and (Path(v) / "bin" / "csirtg").exists(), "CLIENTS_VENV is not set: run through scripts/test"
    return Path(v)


@pytest.fixture(scope="session")
def cowrie_venv() -> Path:
    v = os.environ.get("COWRIE_VENV")
    require(bool(v) and (Path(v) / "bin" / "cowrie").exists(), "COWRIE_VENV is not set: run through scripts/test")
    return Path(v)


@pytest.fixture(scope="session")
def shared() -> Path:
    require(SHARED.is_dir(), f"{SHARED} (the shared real-data directory) is missing")
    return SHARED


def _make_hub(apiary_bin: Path, base: Path) -> Hub:
    data = base / "data"
    logs = base / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return Hub(apiary_bin, data, logs)


@pytest.fixture
def hub(apiary_bin: Path, tmp_path: Path):
    """A fresh running hub for one test."""
    h = _make_hub(apiary_bin, tmp_path)
    h.start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def module_hub(apiary_bin: Path, tmp_path_factory):
    """A running hub shared by the tests of one module (each uses its own feeds)."""
    h = _make_hub(apiary_bin, tmp_path_factory.mktemp("hub"))
    h.start()
    yield h
    h.stop()


@pytest.fixture
def world_readable_tmp():
    """A temporary directory outside pytest's private (0700) tree, for an unprivileged process."""
    d = Path(tempfile.mkdtemp(prefix="apiary-interop-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# -- CI: nothing may be skipped --------------------------------------------------------------------
# Any skip (an importorskip of a module, a missing tool, ...) in CI means a piece the suite should
# have had is missing: the run fails, with the reasons listed (-ra) above the summary.
def pytest_sessionfinish(session, exitstatus):
    if not CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if CI and terminalreporter.stats.get("skipped"):
        terminalreporter.write_line(
            f"CI=true: {len(terminalreporter.stats['skipped'])} skipped test(s) fail the run", red=True
        )
