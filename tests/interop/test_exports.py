"""Exports and TAXII, checked by the programs that consume them.

- PyPI `stix2` parses every STIX bundle the hub exports (and every TAXII envelope's objects).
- PyPI `taxii2-client` lists the collections and pages through a collection larger than a page.
- `named-checkzone` (Debian bind9-utils) loads the RPZ zone.
- `nginx -t` accepts a config that includes the deny list and the geo block.
- Plus the HTTP contract: gzip, ETag/Last-Modified with 304, 406 on a wrong Accept, the export
  rules (special-use, allowlisted and TLP:RED values), and `apiary export` through a hub and
  offline giving the same file.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import require

stix2 = pytest.importorskip("stix2", reason="stix2 is pinned in tests/interop/requirements-clients.txt")
taxii_v21 = pytest.importorskip("taxii2client.v21", reason="taxii2-client is pinned in requirements-clients.txt")

OWNER = "exporter"
FEED = f"{OWNER}/mixed"
BIG = f"{OWNER}/big"
BIG_COUNT = 250
PAGE = 100

# Values that must leave the hub, by type (public addresses and names; none is allowlisted).
EXPORTED = {
    "185.220.101.47": "ipv4",
    "45.155.205.0/24": "ipv4",
    "2a03:b0c0:3:d0::1": "ipv6",
    "2a0e:1c80::/32": "ipv6",
    "evil-updates.xyz": "fqdn",
    "http://bad-host.xyz:8080/it's\\here?a=1": "url",
    "abuse@bad-host.xyz": "email",
    "44d88612fea8a8f36de82e1278abb02f": "md5",
    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f": "sha256",
}
# Never exported: special-use (private, documentation), a big public resolver (excluded), and
# a /24 that contains one (a CIDR overlapping an excluded range is never exported whole).
NEVER = ["10.1.2.3", "198.51.100.7", "8.8.8.8", "8.8.8.0/24"]
RED = "185.244.25.10"


def publish(hub, token: str, feed: str, items: list[dict]) -> None:
    body = "\n".join(json.dumps(i) for i in items)
    r = hub.api("POST", f"/api/v1/feeds/{feed}/indicators", token, data=body,
                headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code in (200, 201), f"publish to {feed}: {r.status_code} {r.text}"


@pytest.fixture(scope="module")
def world(module_hub):
    """One owner with a mixed feed and a feed larger than a TAXII page; another user."""
    hub = module_hub
    token = hub.add_user(OWNER)
    other = hub.add_user("bystander", scopes="read")
    hub.create_feed(FEED)
    hub.create_feed(BIG)
    # The hub-wide BLOCK tier is what the trust model scores BLOCK (TRUST.md): reports of a seed
    # from two of its sensors reach it, an unknown source's never do. So an admin names the
    # exporter's feeds seeds, and the values the BLOCK export must carry are reported twice, from
    # two vantage points: sensors the owner declared in two different networks (undeclared sensor
    # names are the feed's one vantage point, so they would add nothing; docs/trust.md).
    for feed in (FEED, BIG):
        hub.cli("source", "tier", feed, "seed", "--data", str(hub.data))
    for feed, sensor, asn, prefix in ((FEED, "pot-1", "64501", "185.222.209.0/24"),
                                      (FEED, "pot-2", "64502", "185.222.210.0/24"),
                                      (BIG, "pot-2", "64502", "185.222.210.0/24")):
        hub.cli("feed", "sensor", "add", feed, sensor, "--asn", asn, "--prefix", prefix, "--data", str(hub.data))
    items = [{"indicator": v, "tags": ["scanner"] if t in ("ipv4", "ipv6") else ["malware"], "tlp": "green",
              "description": "seen by the honeypot, \"twice\"", "confidence": 8} for v, t in EXPORTED.items()]
    items += [{"indicator": v, "tags": ["scanner"]} for v in NEVER]
    items.append({"indicator": RED, "tags": ["c2"], "tlp": "red"})
    publish(hub, token, FEED, [dict(i, sensor="pot-1") for i in items])
    publish(hub, token, FEED, [dict(i, sensor="pot-2") for i in items if i["indicator"] not in NEVER])
    big = [{"indicator": f"23.{i // 250 + 1}.{i % 250}.{7 + i % 3}", "tags": ["scanner"]} for i in range(BIG_COUNT)]
    publish(hub, token, BIG, big)
    publish(hub, token, BIG, [{"indicator": "23.1.0.7", "tags": ["scanner"], "sensor": "pot-2"}])
    return {"hub": hub, "token": token, "other": other}


def export(world, fmt: str, token: str | None = None, feed: str = FEED, **params) -> requests.Response:
    hub = world["hub"]
    r = hub.api("GET", f"/api/v1/feeds/{feed}/export", token, params={"format": fmt, **params})
    assert r.status_code == 200, f"export {fmt}: {r.status_code} {r.text}"
    return r


def values_of_text(text: str) -> set[str]:
    return {line for line in text.splitlines() if line and not line.startswith("#")}


# -- the export rules ------------------------------------------------------------------------------
def test_text_export_applies_the_rules(world):
    anon = values_of_text(export(world, "text").text)
    assert anon == set(EXPORTED), f"anonymous text export: {sorted(anon ^ set(EXPORTED))}"
    # TLP:RED goes to its owner only, not to another reader.
    assert RED in values_of_text(export(world, "text", world["token"]).text)
    assert RED not in values_of_text(export(world, "text", world["other"]).text)
    # Filters: type, TLP, limit.
    assert values_of_text(export(world, "text", type="ipv6").text) == {"2a03:b0c0:3:d0::1", "2a0e:1c80::/32"}
    assert values_of_text(export(world, "text", world["token"], tlp="red").text) == {RED}
    assert len(values_of_text(export(world, "text", limit="3").text)) == 3


# -- STIX 2.1, parsed by stix2 -----------------------------------------------------------------------
def test_every_stix_bundle_parses_with_stix2(world):
    for token in (None, world["token"]):
        for feed in (FEED, BIG):
            text = export(world, "stix", token, feed=feed).text
            bundle = stix2.parse(text, allow_custom=False)
            indicators = [o for o in bundle.objects if o.type == "indicator"]
            markings = {o.id for o in bundle.objects if o.type == "marking-definition"}
            for ind in indicators:
                assert set(ind.object_marking_refs) <= markings, "every marking used is in the bundle"
            if feed == FEED:
                names = {i.name for i in indicators}
                assert names == set(EXPORTED) | ({RED} if token else set())
            else:
                assert len(indicators) == BIG_COUNT
    # The hub-wide BLOCK tier is a bundle too, once the scoring job has scored the seeds' reports.
    # TLP:RED evidence is not shared, so it never scores (docs/trust.md, "Only shared evidence"):
    # the RED value stays out of the hub-wide tier even for its owner.
    want = set(EXPORTED) | {"23.1.0.7"}
    deadline = time.monotonic() + 60
    while True:
        r = world["hub"].api("GET", "/api/v1/export", world["token"], params={"format": "stix", "tier": "block"})
        assert r.status_code == 200, r.text
        bundle = stix2.parse(r.text, allow_custom=False)
        names = [o.name for o in bundle.objects if o.type == "indicator"]
        assert len(names) == len(set(names)), "one object per value"
        if want <= set(names) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert want <= set(names), f"missing from the BLOCK tier after 60 s: {sorted(want - set(names))}"
    assert RED not in names, "RED evidence never makes a hub score"
    assert not set(NEVER) & set(names), "special-use and excluded values never reach the BLOCK tier"


def test_stix_ids_are_deterministic(world):
    one = json.loads(export(world, "stix").text)
    two = json.loads(export(world, "stix").text)
    ids = lambda b: sorted(o["id"] for o in b["objects"] if o["type"] == "indicator")  # noqa: E731
    assert ids(one) == ids(two) and len(ids(one)) == len(EXPORTED)


# -- RPZ, loaded by named-checkzone ------------------------------------------------------------------
def test_rpz_zone_loads_in_named_checkzone(world, tmp_path: Path):
    checkzone = shutil.which("named-checkzone")
    require(checkzone is not None, "named-checkzone is not installed (Debian: apt-get install bind9-utils)")
    zone = tmp_path / "rpz.zone"
    zone.write_text(export(world, "rpz", zone="rpz.apiary.test").text)
    p = subprocess.run([checkzone, "rpz.apiary.test", str(zone)], capture_output=True, text=True)
    assert p.returncode == 0, f"named-checkzone refused the zone:\n{p.stdout}{p.stderr}\n{zone.read_text()}"
    text = zone.read_text()
    assert "evil-updates.xyz CNAME ." in text and "*.evil-updates.xyz CNAME ." in text
    assert "32.47.101.220.185.rpz-ip CNAME ." in text and "128.1.zz.d0.3.b0c0.2a03.rpz-ip CNAME ." in text


# -- nginx, checked by nginx -t ---------------------------------------------------------------------
def test_nginx_accepts_the_deny_list_and_geo_block(world, tmp_path: Path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    require(nginx is not None, "nginx is not installed (Debian: apt-get install nginx)")
    (tmp_path / "deny.conf").write_text(export(world, "nginx", feed=BIG).text)
    (tmp_path / "geo.conf").write_text(export(world, "nginx-geo").text)
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp_path};
    proxy_temp_path {tmp_path};
    fastcgi_temp_path {tmp_path};
    uwsgi_temp_path {tmp_path};
    scgi_temp_path {tmp_path};
    include {tmp_path}/geo.conf;
    server {{
        listen 127.0.0.1:1;
        include {tmp_path}/deny.conf;
        location / {{ if ($apiary_blocked) {{ return 403; }} return 204; }}
    }}
}}
""")
    p = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 0, f"nginx -t refused:\n{p.stderr}"
    assert (tmp_path / "deny.conf").read_text().count("deny ") == BIG_COUNT


# -- TAXII 2.1, through taxii2-client -----------------------------------------------------------------
def test_taxii2_client_lists_collections_and_pages_through_one(world):
    hub = world["hub"]
    server = taxii_v21.Server(f"{hub.url}/taxii2/", user=OWNER, password=world["token"])
    assert server.title == "Apiary"
    root = server.api_roots[0]
    titles = {c.title: c for c in root.collections}
    assert {FEED, BIG, "hub/block"} <= set(titles), titles.keys()
    big = titles[BIG]
    assert big.can_read and not big.can_write
    seen: list[str] = []
    added: list[str] = []
    pages = 0
    for envelope in taxii_v21.as_pages(big.get_objects, per_request=PAGE):
        pages += 1
        objects = envelope.get("objects", [])
        for obj in objects:
            stix2.parse(obj, allow_custom=False)
        seen.extend(o["id"] for o in objects)
        added.extend(o["modified"] for o in objects)  # an object's date added is its version
    assert pages >= 3, f"{BIG_COUNT} objects in pages of {PAGE} took {pages} page(s)"
    assert len(seen) == BIG_COUNT == len(set(seen)), "every object once"
    assert added == sorted(added), "TAXII 2.1 pages run in ascending date added, across pages too"
    # Manifest pages too, and an object is found by id with its one version.
    manifest = list(taxii_v21.as_pages(big.get_manifest, per_request=PAGE))
    assert sum(len(m.get("objects", [])) for m in manifest) == BIG_COUNT
    one = big.get_object(seen[0])
    assert [o["id"] for o in one["objects"]] == [seen[0]]
    versions = big.object_versions(seen[0])
    assert len(versions["versions"]) == 1


def test_taxii_filters_headers_and_auth(world):
    hub = world["hub"]
    taxii = "application/taxii+json;version=2.1"
    cols = hub.api("GET", "/taxii2/apiary/collections/", headers={"Accept": taxii}).json()["collections"]
    mixed = next(c for c in cols if c["title"] == FEED)
    url = f"/taxii2/apiary/collections/{mixed['id']}/objects/"
    # Anonymous: no RED object; with the owner's token as Basic password: the RED one too.
    anon = hub.api("GET", url, headers={"Accept": taxii})
    assert anon.status_code == 200 and anon.headers["Content-Type"].startswith("application/taxii+json")
    names = {o["name"] for o in anon.json()["objects"]}
    assert names == set(EXPORTED)
    assert anon.headers["X-TAXII-Date-Added-First"] <= anon.headers["X-TAXII-Date-Added-Last"]
    owner = requests.get(hub.url + url, headers={"Accept": taxii}, auth=(OWNER, world["token"]), timeout=30)
    assert RED in {o["name"] for o in owner.json()["objects"]}
    # A wrong password is refused with a Basic challenge.
    bad = requests.get(hub.url + url, headers={"Accept": taxii}, auth=(OWNER, "wrong"), timeout=30)
    assert bad.status_code == 401 and bad.headers.get("WWW-Authenticate", "").startswith("Basic")
    assert bad.headers["Content-Type"].startswith("application/taxii+json") and bad.json()["http_status"] == "401"
    # Wrong Accept → 406.
    assert hub.api("GET", url, headers={"Accept": "application/json"}).status_code == 406
    assert hub.api("GET", "/taxii2/", headers={"Accept": "application/taxii+json;version=2.0"}).status_code == 406
    # added_after: nothing after the newest.
    last = anon.headers["X-TAXII-Date-Added-Last"]
    after = hub.api("GET", url, params={"added_after": last}, headers={"Accept": taxii}).json()
    assert after.get("objects", []) == [] and after["more"] is False
    # match[type] for a type the collection has none of; match[id].
    assert "objects" not in hub.api("GET", url, params={"match[type]": "malware"}, headers={"Accept": taxii}).json()
    some = anon.json()["objects"][0]["id"]
    got = hub.api("GET", url, params={"match[id]": some}, headers={"Accept": taxii}).json()
    assert [o["id"] for o in got["objects"]] == [some]


# -- HTTP: gzip, validators, errors ------------------------------------------------------------------
def test_gzip_etag_and_304(world):
    hub = world["hub"]
    path = f"{hub.url}/api/v1/feeds/{BIG}/export"
    r = requests.get(path, params={"format": "csv"}, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30)
    assert r.status_code == 200 and r.headers.get("Content-Encoding") == "gzip"
    raw = r.raw.read()
    text = gzip.decompress(raw).decode()
    assert text.startswith("indicator,itype,feed,") and text.count("\r\n") == BIG_COUNT + 1
    etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    assert requests.get(path, params={"format": "csv"}, headers={"If-None-Match": etag}, timeout=30).status_code == 304
    assert requests.get(path, params={"format": "csv"}, headers={"If-Modified-Since": modified}, timeout=30).status_code == 304
    # Another format is another representation.
    assert requests.get(path, params={"format": "text"}, headers={"If-None-Match": etag}, timeout=30).status_code == 200
    # New data changes the validators.
    publish(hub, world["token"], BIG, [{"indicator": "23.9.9.9", "tags": ["scanner"]}])
    fresh = requests.get(path, params={"format": "csv"}, headers={"If-None-Match": etag}, timeout=30)
    assert fresh.status_code == 200 and "23.9.9.9" in fresh.text and fresh.headers["ETag"] != etag


def test_errors_are_clear(world):
    hub = world["hub"]
    r = hub.api("GET", f"/api/v1/feeds/{FEED}/export", params={"format": "pdf"})
    assert r.status_code == 422 and "formats:" in r.json()["error"]["message"]
    assert hub.api("GET", f"/api/v1/feeds/{OWNER}/nope/export").status_code == 404
    assert hub.api("GET", "/api/v1/export", params={"tier": "watch"}).status_code == 422


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_export_through_hub_and_offline_agree(world):
    hub = world["hub"]
    online = hub.cli("export", FEED, "--format", "text", "--hub", hub.url, "--token", world["token"]).stdout
    offline = hub.cli("export", FEED, "--format", "text", "--data", str(hub.data)).stdout
    assert values_of_text(online) == values_of_text(offline) == set(EXPORTED) | {RED}
    ipset = hub.cli("export", BIG, "--format", "ipset", "--set", "scanners", "--hub", hub.url).stdout
    assert ipset.count("add scanners-v4-tmp ") >= BIG_COUNT and "swap scanners-v4-tmp scanners-v4" in ipset
    cats = hub.cli("export", FEED, "--format", "suricata-iprep", "--categories", "--hub", hub.url).stdout
    assert cats.splitlines()[0] == "1,Scanner,Scanning hosts"
    bad = hub.cli("export", FEED, "--format", "pdf", "--hub", hub.url, check=False)
    assert bad.returncode != 0 and "pdf" in bad.stderr and "possible values" in bad.stderr and "stix" in bad.stderr, bad.stderr


# -- round trip: real feed files in, plain text out --------------------------------------------------
def test_every_real_feed_file_round_trips_through_the_text_export(apiary_bin, shared, tmp_path: Path):
    """Each file of ../shared/data/feeds imports, and the feed's text export lists exactly the
    values the import report calls exportable (stored minus what the exclude, hold and special-use
    rules keep out); the jsonl export, a data format, also carries the held ones."""
    files = sorted((shared / "data" / "feeds").iterdir())
    require(len(files) >= 8, "../shared/data/feeds holds the real feed files")
    data = tmp_path / "data"

    def run(*args: str) -> subprocess.CompletedProcess:
        p = subprocess.run([str(apiary_bin), *args], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"apiary {' '.join(args)}: {p.returncode}\n{p.stderr}"
        return p

    run("user", "add", "rt", "--data", str(data))
    for i, path in enumerate(files):
        feed = f"rt/file{i}"
        report = json.loads(run("import", "feed", "--feed", feed, "--data", str(data), "--json", str(path)).stdout)
        text = values_of_text(run("export", feed, "--format", "text", "--window", "all", "--data", str(data)).stdout)
        assert len(text) == report["exportable"], f"{path.name}: export lists {len(text)}, import said {report['exportable']} exportable"
        rows = [json.loads(line) for line in run("export", feed, "--format", "jsonl", "--window", "all", "--data", str(data)).stdout.splitlines()]
        assert {r["indicator"] for r in rows if not r["held"]} == text, path.name
        assert len(rows) == report["exportable"] + report["held"], path.name
