"""The real `csirtg` CLI (csirtgsdk 1.1.5 + csirtg-indicator 1.0.13) against the hub.

Pointed at us only by CSIRTG_REMOTE and CSIRTG_TOKEN. The CLI exits 0 even when a call failed, so
each command is checked twice: in what it prints, and in the hub's state over the native API.
"""

from __future__ import annotations

import subprocess

import pytest

from conftest import clean_env, parse_table

USER = "alice"


@pytest.fixture(scope="module")
def alice(module_hub):
    return module_hub.add_user(USER)


def csirtg(hub, venv, token, *args: str) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [str(venv / "bin" / "csirtg"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=clean_env(
            CSIRTG_REMOTE=hub.csirtg_remote,
            CSIRTG_TOKEN=token,
            # On a 5xx the client sleeps 30-60 s per retry; keep a failure quick here.
            CSIRTGSDK_CLIENT_HTTP_RETRIES_DELAY="1,1",
        ),
    )
    assert p.returncode == 0, f"csirtg {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr, f"csirtg {' '.join(args)} crashed:\n{p.stderr}"
    return p


def test_feed_create(module_hub, clients_venv, alice):
    p = csirtg(module_hub, clients_venv, alice, "--user", USER, "--feed-new", "scanners",
               "--description", "a feed of port scanners")
    rows = parse_table(p.stdout)
    assert [r["name"] for r in rows] == ["scanners"], p.stdout
    assert rows[0]["description"] == "a feed of port scanners"

    r = module_hub.api("GET", f"/api/v1/feeds/{USER}/scanners", alice)
    assert r.status_code == 200, r.text
    feed = r.json()
    assert feed["description"] == "a feed of port scanners"


def test_feeds_list(module_hub, clients_venv, alice):
    module_hub.create_feed(f"{USER}/listed-a")
    module_hub.create_feed(f"{USER}/listed-b")

    p = csirtg(module_hub, clients_venv, alice, "--user", USER, "--feeds")
    printed = {r["name"] for r in parse_table(p.stdout)}
    assert {"listed-a", "listed-b"} <= printed, p.stdout

    r = module_hub.api("GET", "/api/v1/feeds", alice)
    assert r.status_code == 200, r.text
    body = r.json()
    feeds = body["items"] if isinstance(body, dict) else body
    hub_names = {f["name"] for f in feeds if str(f.get("owner", USER)) == USER}
    # The CLI shows exactly alice's feeds as the hub knows them.
    assert printed == hub_names, (printed, hub_names)


def test_indicator_create_with_tags(module_hub, clients_venv, alice):
    module_hub.create_feed(f"{USER}/ssh-scanners")
    p = csirtg(module_hub, clients_venv, alice, "--user", USER, "--feed", "ssh-scanners",
               "--indicator-new", "198.51.100.23", "--tags", "scanner,ssh",
               "--portlist", "22", "--protocol", "tcp", "--comment", "seen on sensor a",
               "--firsttime", "2021-05-23T15:12:53Z", "--lasttime", "2021-05-24T09:00:00Z")
    rows = parse_table(p.stdout)
    assert len(rows) == 1, f"expected one indicator row, got:\n{p.stdout}\n{p.stderr}"
    assert rows[0]["indicator"] == "198.51.100.23"
    assert set(rows[0]["tags"].split(",")) == {"scanner", "ssh"}

    recs = [r for r in module_hub.records("198.51.100.23", alice) if r["feed"] == f"{USER}/ssh-scanners"]
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["itype"] == "ipv4"
    assert set(rec["tags"]) == {"scanner", "ssh"}
    assert rec["count"] == 1
    assert rec["protocol"] == "tcp"
    assert "22" in str(rec["portlist"])
    # The publisher's own times (csirtg-indicator 1.x sends firsttime/lasttime) are kept.
    assert rec["firsttime"].startswith("2021-05-23T15:12:53"), rec
    assert rec["lasttime"].startswith("2021-05-24T09:00:00"), rec

    # The comment has no column: it stays with the sighting.
    r = module_hub.api("GET", "/api/v1/indicators/198.51.100.23", alice)
    assert r.status_code == 200, r.text
    sightings = [s for s in r.json()["sightings"] if s["feed"] == f"{USER}/ssh-scanners"]
    assert [s["extra"].get("comment") for s in sightings] == ["seen on sensor a"], sightings


def test_indicator_create_fqdn_and_url(module_hub, clients_venv, alice):
    module_hub.create_feed(f"{USER}/uce-urls")
    # (the CLI cuts printed fields at 30 characters: keep values shorter)
    for value, itype in (("malicious.example.net", "fqdn"), ("http://bad.example.net/x.sh", "url")):
        p = csirtg(module_hub, clients_venv, alice, "--user", USER, "--feed", "uce-urls",
                   "--indicator-new", value, "--tags", "malware")
        assert value in p.stdout, p.stdout
        recs = [r for r in module_hub.records(value, alice) if r["feed"] == f"{USER}/uce-urls"]
        assert len(recs) == 1, (value, recs)
        assert recs[0]["itype"] == itype
        assert recs[0]["tags"] == ["malware"]


def test_feed_show(module_hub, clients_venv, alice):
    module_hub.create_feed(f"{USER}/shown")
    published = ["192.0.2.10", "192.0.2.11", "evil.example.org"]
    r = module_hub.api("POST", f"/api/v1/feeds/{USER}/shown/indicators", alice,
                       json=[{"indicator": v, "tags": ["bruteforce"]} for v in published])
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == len(published)

    p = csirtg(module_hub, clients_venv, alice, "--user", USER, "--feed", "shown")
    rows = parse_table(p.stdout)
    assert sorted(r["indicator"] for r in rows) == sorted(published), p.stdout
    for row in rows:
        assert row["user"] == USER and row["feed"] == "shown", row
        assert row["tags"] == "bruteforce", row

    hub_values = sorted(r["indicator"] for r in module_hub.feed_records(f"{USER}/shown", alice))
    assert hub_values == sorted(published)


def test_search(module_hub, clients_venv, alice):
    module_hub.create_feed(f"{USER}/search-a")
    module_hub.create_feed(f"{USER}/search-b")
    for feed in ("search-a", "search-b"):
        r = module_hub.api("POST", f"/api/v1/feeds/{USER}/{feed}/indicators", alice,
                           json={"indicator": "203.0.113.77", "tags": "scanner"})
        assert r.status_code == 201, r.text

    p = csirtg(module_hub, clients_venv, alice, "--search", "203.0.113.77")
    rows = parse_table(p.stdout)
    assert {(r["user"], r["feed"], r["indicator"]) for r in rows} == {
        (USER, "search-a", "203.0.113.77"),
        (USER, "search-b", "203.0.113.77"),
    }, p.stdout

    hub_feeds = {r["feed"] for r in module_hub.records("203.0.113.77", alice)}
    assert hub_feeds == {f"{USER}/search-a", f"{USER}/search-b"}


def test_search_unknown_value_prints_empty_table(module_hub, clients_venv, alice):
    p = csirtg(module_hub, clients_venv, alice, "--search", "203.0.113.250")
    assert parse_table(p.stdout) == [], p.stdout
    assert module_hub.records("203.0.113.250", alice) == []


def test_bad_token_is_refused(module_hub, clients_venv, alice):
    module_hub.create_feed(f"{USER}/guarded")
    p = csirtg(module_hub, clients_venv, "not-a-token", "--user", USER, "--feed", "guarded",
               "--indicator-new", "198.51.100.99")
    # The CLI prints the exception and exits 0; the hub must have stored nothing.
    assert parse_table(p.stdout) == [], p.stdout
    assert module_hub.records("198.51.100.99", alice) == []
