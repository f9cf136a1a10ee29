"""Durability: every indicator the hub acknowledged with a 2xx survives a `kill -9` of the hub."""

from __future__ import annotations

import concurrent.futures

import requests

N = 300
CONCURRENCY = 8


def _values(n: int) -> list[str]:
    # 100.64.0.0/10 is shared address space: a valid IPv4 indicator that points at no real host.
    return [f"100.{64 + i // 65536 % 64}.{i // 256 % 256}.{i % 256}" for i in range(n)]


def test_acknowledged_indicators_survive_kill9(hub):
    token = hub.add_user("durable")
    hub.create_feed("durable/crash")
    values = _values(N)

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def publish(v: str) -> tuple[str, int, str]:
        # Alternate the two APIs real publishers use: native, and CSIRTG (what Cowrie sends).
        if int(v.rsplit(".", 1)[1]) % 2:
            r = session.post(f"{hub.url}/api/v1/feeds/durable/crash/indicators",
                             json={"indicator": v, "tags": ["scanner"]}, timeout=30)
        else:
            r = session.post(f"{hub.url}/api//users/durable/feeds/crash/indicators",
                             headers={"Authorization": f"Token token={token}",
                                      "Accept": "application/vnd.csirtg.v1"},
                             json={"indicator": {"indicator": v, "itype": "ipv4", "tags": ["scanner"],
                                                 "portlist": 22, "protocol": "tcp"},
                                   "comment": None, "content": None}, timeout=30)
        return v, r.status_code, r.text

    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(publish, values))
    failed = [(v, s, t[:200]) for v, s, t in results if not 200 <= s < 300]
    assert not failed, f"{len(failed)} publishes not acknowledged, e.g. {failed[:3]}"

    hub.kill9()  # right after the last 2xx: nothing gets a chance to flush on the way out
    hub.start()

    stored = {r["indicator"] for r in hub.feed_records("durable/crash", token)}
    missing = sorted(set(values) - stored)
    assert not missing, f"{len(missing)} of {N} acknowledged indicators lost after kill -9, e.g. {missing[:5]}"
    assert len(stored) == N
