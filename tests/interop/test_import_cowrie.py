"""`apiary import cowrie` on the four real Cowrie logs in ../shared/data/cowrie/, offline on the data
directory (while the hub serves it) and through the hub; then search for attackers found in them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def logs(shared) -> list[Path]:
    files = sorted((shared / "data" / "cowrie").glob("*.json"))
    assert len(files) == 4, files
    return files


@pytest.fixture(scope="module")
def attackers(logs) -> dict[str, int]:
    """Every attacker address in the logs (from session connects), with its number of sessions."""
    sessions: dict[str, set[str]] = {}
    for f in logs:
        for line in f.read_text(errors="replace").splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("eventid") == "cowrie.session.connect" and e.get("src_ip"):
                sessions.setdefault(e["src_ip"], set()).add(f"{f.name}/{e.get('session')}")
    assert len(sessions) > 300
    return {ip: len(s) for ip, s in sessions.items()}


@pytest.fixture(scope="module")
def events(logs) -> dict[str, int]:
    """Counts read straight from the files: JSON lines, and sessions (connect events)."""
    lines = sessions = 0
    for f in logs:
        for line in f.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            lines += 1
            if json.loads(line).get("eventid") == "cowrie.session.connect":
                sessions += 1
    return {"lines": lines, "sessions": sessions}


def _addresses(records: list[dict]) -> dict[str, dict]:
    return {r["indicator"]: r for r in records if r["itype"] in ("ipv4", "ipv6")}


def _json_summary(out: str) -> dict:
    """The machine-readable summary `--json` prints: the whole output, or its last line."""
    out = out.strip()
    for text in (out, out.splitlines()[-1] if out else ""):
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _busiest(attackers: dict[str, int]) -> str:
    return max(attackers, key=lambda ip: (attackers[ip], ip))


def _search_json(hub, token: str, value: str) -> list[dict]:
    p = hub.cli("search", value, "--json", "--hub", hub.url, "--token", token)
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_import_offline_while_serving_then_search(hub, logs, attackers, events):
    token = hub.add_user("ops")
    p = hub.cli("import", "cowrie", "--feed", "ops/cowrie-real", "--data", str(hub.data), "--json",
                *map(str, logs))
    summary = _json_summary(p.stdout)
    assert summary, f"no JSON summary from --json:\n{p.stdout}"
    assert summary["events"] == events["lines"], summary
    assert summary["sessions"] == events["sessions"], summary
    assert summary["lines_rejected"] == 0, summary["problems"]
    assert summary["stored"] == summary["sightings"] > 0, summary

    # Queryable at once through the running hub: every attacker address is in the feed.
    stored = _addresses(hub.feed_records("ops/cowrie-real", token))
    missing = sorted(set(attackers) - set(stored))
    assert not missing, f"{len(missing)} attacker addresses not imported, e.g. {missing[:5]}"
    # One sighting per session (more where the address is also a download host of a session).
    short = [(ip, stored[ip]["count"], n) for ip, n in attackers.items() if stored[ip]["count"] < n]
    assert not short, f"addresses counted fewer times than their sessions: {short[:5]}"

    ip = _busiest(attackers)
    found = _search_json(hub, token, ip)
    assert [r["feed"] for r in found] == ["ops/cowrie-real"], found
    rec = found[0]
    assert rec["indicator"] == ip and rec["itype"] == "ipv4"
    assert rec["count"] == attackers[ip], (rec, attackers[ip])
    for field in ("firsttime", "lasttime", "tags", "portlist", "protocol"):
        assert field in rec, (field, rec)
    assert rec["firsttime"] < rec["lasttime"] or attackers[ip] == 1
    assert rec["firsttime"].startswith(("2017", "2018", "2020", "2022")), rec

    # Importing the same files again counts nothing twice.
    before = {ip: r["count"] for ip, r in stored.items()}
    p = hub.cli("import", "cowrie", "--feed", "ops/cowrie-real", "--data", str(hub.data), "--json",
                *map(str, logs))
    again = _json_summary(p.stdout)
    assert again["stored"] == 0 and again["duplicates"] == summary["sightings"], again
    after = {ip: r["count"] for ip, r in _addresses(hub.feed_records("ops/cowrie-real", token)).items()}
    assert after == before


def test_import_through_hub_then_search(hub, logs, attackers):
    token = hub.add_user("ops")
    # The feed does not exist yet: the import creates it.
    hub.cli("import", "cowrie", "--feed", "ops/via-hub", "--hub", hub.url, "--token", token, *map(str, logs))

    stored = _addresses(hub.feed_records("ops/via-hub", token))
    missing = sorted(set(attackers) - set(stored))
    assert not missing, f"{len(missing)} attacker addresses not imported, e.g. {missing[:5]}"

    ip = _busiest(attackers)
    r = hub.api("GET", "/api/v1/indicators", token, params={"q": ip})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [x["feed"] for x in items] == ["ops/via-hub"], items
    assert items[0]["count"] == attackers[ip], (items[0], attackers[ip])
    assert [x["feed"] for x in _search_json(hub, token, ip)] == ["ops/via-hub"]


def test_import_offline_without_hub_then_serve(apiary_bin, tmp_path, logs, attackers):
    """The other offline order: import into a data dir no hub serves, then start the hub on it."""
    from conftest import _make_hub

    hub = _make_hub(apiary_bin, tmp_path)
    hub.cli("user", "add", "ops", "--data", str(hub.data))
    hub.cli("import", "cowrie", "--feed", "ops/cold", "--data", str(hub.data), str(logs[-1]))
    token = hub.cli("token", "create", "--user", "ops", "--scopes", "read", "--data", str(hub.data)).stdout.split()[-1]
    hub.start()
    try:
        d_attackers = set()
        for line in logs[-1].read_text().splitlines():
            e = json.loads(line)
            if e.get("eventid") == "cowrie.session.connect":
                d_attackers.add(e["src_ip"])
        stored = _addresses(hub.feed_records("ops/cold", token))
        assert d_attackers <= set(stored), sorted(d_attackers - set(stored))[:5]
    finally:
        hub.stop()


def _independent_sessions(path: Path) -> dict[str, dict]:
    """Per session id, what the raw lines say — read a second way, with no product code: its
    attacker, the login attempts (success and failed), the commands (as typed, or, in logs that
    never record typed input, the found/not-found ones), the download attempts."""
    per: dict[str, dict] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        e = json.loads(line)
        s = per.setdefault(e["session"], {"src_ip": e.get("src_ip"), "credentials": 0, "typed": 0,
                                          "other_commands": 0, "downloads": 0})
        eid = e["eventid"]
        if eid in ("cowrie.login.success", "cowrie.login.failed"):
            s["credentials"] += 1
        elif eid == "cowrie.command.input" and "input" in e:
            s["typed"] += 1
        elif eid in ("cowrie.command.success", "cowrie.command.failed") and "input" in e:
            s["other_commands"] += 1
        elif eid in ("cowrie.session.file_download", "cowrie.session.file_download.failed"):
            s["downloads"] += 1
    for s in per.values():
        s["commands"] = s["typed"] or s["other_commands"]
    return per


def test_stored_sessions_per_file_match_an_independent_count(hub, logs):
    """Each real log imported into its own feed by the binary: the sessions the hub then serves
    (sessions, credentials, commands, downloads, per file and per session) equal a count made
    straight from the raw JSON lines."""
    token = hub.add_user("ops")
    for i, log in enumerate(logs):
        feed = f"ops/file-{i}"
        hub.cli("import", "cowrie", "--feed", feed, "--data", str(hub.data), "--no-progress", str(log))
        want = _independent_sessions(log)
        got: dict[str, dict] = {}
        for ip in sorted({s["src_ip"] for s in want.values()}):
            r = hub.api("GET", "/api/v1/sessions", token, params={"attacker": ip, "feed": feed, "limit": 1000})
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            assert len(items) < 1000, f"{ip}: more sessions than one page"
            for item in items:
                assert item["session"] not in got, f"{log.name}: session {item['session']} listed twice"
                got[item["session"]] = item
        assert set(got) == set(want), f"{log.name}: {len(set(want) - set(got))} sessions missing, {len(set(got) - set(want))} unknown"
        for what, of_stored in (("credentials", lambda s: len(s["credentials"])),
                                ("commands", lambda s: len(s["commands"])),
                                ("downloads", lambda s: len(s["downloads"]))):
            by_session = {sid: of_stored(s) for sid, s in got.items()}
            expected = {sid: w[what] for sid, w in want.items()}
            differ = [(sid, by_session[sid], expected[sid]) for sid in expected if by_session[sid] != expected[sid]]
            assert not differ, f"{log.name}: {what} per session (stored, counted) differ: {differ[:5]}"
            assert sum(by_session.values()) == sum(expected.values())
        # The per-file totals, printed for the record of the run.
        print(f"{log.name}: {len(want)} sessions, "
              + ", ".join(f"{k} {sum(w[k] for w in want.values())}" for k in ("credentials", "commands", "downloads")))
        assert all(got[sid]["attacker"] for sid in got), f"{log.name}: a session without its attacker"
