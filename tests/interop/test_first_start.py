"""First start of a hub on an empty data directory: the admin token it prints once works, and is
enough to make a user and a token over the native API, which the csirtg CLI then uses."""

from __future__ import annotations

import re

from test_csirtg_cli import csirtg, parse_table

TOKEN_RE = re.compile(r"^\s+(\S{20,})\s*$", re.M)


def test_first_start_prints_a_working_admin_token_once(hub, clients_venv):
    printed = TOKEN_RE.findall(hub.log())
    assert len(printed) == 1, f"expected the admin token once in the first-start output:\n{hub.log()}"
    admin = printed[0]

    r = hub.api("POST", "/api/v1/users", admin, json={"name": "bob"})
    assert r.status_code == 201, r.text
    r = hub.api("POST", "/api/v1/tokens", admin, json={"user": "bob", "scopes": "read,write", "label": "cli"})
    assert r.status_code == 201, r.text
    bob = r.json()["token"]

    p = csirtg(hub, clients_venv, bob, "--user", "bob", "--feed-new", "first", "--description", "bob's first feed")
    assert [row["name"] for row in parse_table(p.stdout)] == ["first"], p.stdout
    r = hub.api("GET", "/api/v1/feeds/bob/first", bob)
    assert r.status_code == 200 and r.json()["owner"] == "bob", r.text

    # Without admin scope, bob cannot make users.
    assert hub.api("POST", "/api/v1/users", bob, json={"name": "mallory"}).status_code == 403

    # A restart on the same data prints no token again.
    hub.stop()
    hub.start()
    assert TOKEN_RE.findall(hub.log()) == [], hub.log()
    assert hub.api("GET", "/api/v1/feeds/bob/first", admin).status_code == 200
