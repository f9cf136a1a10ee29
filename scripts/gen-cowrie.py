#!/usr/bin/env python3
"""Generate a Cowrie JSON log with the shape of the real ones in ../shared/data/cowrie/.

Used by the import benchmark (BENCHMARKS.md, "Cowrie import"). Deterministic for a given seed.

    scripts/gen-cowrie.py --events 1000000 --out /tmp/cowrie-1m.json

Shape, taken from the four real logs: sessions of a mix of kinds (connect-only scans, SSH
handshakes, brute force, logins with commands, downloads, direct-tcpip tunnels), a few sessions
open at once so their events interleave, about six events per session, compact JSON as written
by Cowrie 2.x (one sensor in five writes the 2017 form: spaced JSON, `system`/`isError`, no
`protocol`). Addresses come from a pool so attackers return, as they do. Every address and URL
is in documentation or benchmark ranges (RFC 5737, RFC 2544) or example domains.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from datetime import datetime, timedelta, timezone

CLIENTS = [
    "SSH-2.0-libssh-0.6.3",
    "SSH-2.0-Go",
    "SSH-2.0-OpenSSH_7.3",
    "SSH-2.0-PuTTY_Release_0.70",
    "SSH-2.0-libssh2_1.8.0",
]
HASSHES = [
    "51cba57125523ce4b9db67714a90bf6e",
    "0a07365cc01fa9fc82608ba4019af499",
    "b5752e36ba6c5979a575e43178908adf",
    "92674389fa1e47a27ddd8d9b63ecd42b",
]
USERS = ["root", "admin", "user", "test", "oracle", "ubuntu", "pi", "support", "guest", "ftpuser"]
PASSWORDS = ["123456", "admin", "root", "password", "1234", "12345", "qwerty", "test", "pass", "raspberry"]
COMMANDS = [
    "uname -a",
    "cat /proc/cpuinfo | grep name | wc -l",
    "cd /tmp || cd /var/run || cd /mnt; ls -la",
    "echo -e '\\x41\\x4b\\x34\\x37'",
    "free -m | grep Mem",
    "ls -lh $(which ls)",
    "crontab -l",
    "w",
    "top",
    "enable",
    "system",
    "shell",
    "sh",
]
KEX = ["curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha1"]
ENC = ["aes128-ctr", "aes192-ctr", "aes256-ctr", "aes256-cbc", "3des-cbc"]


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Gen:
    def __init__(self, seed: int, attackers: int, sensors: int):
        self.r = random.Random(seed)
        self.t = datetime(2022, 7, 17, 0, 0, 0, tzinfo=timezone.utc)
        # RFC 5737 TEST-NET-2/3 and RFC 2544 benchmarking space: never someone's real address.
        nets = [(198, 51, 100), (203, 0, 113)]
        self.pool = []
        for i in range(attackers):
            if i % 3 == 2:
                self.pool.append(f"198.{18 + (i >> 16) % 2}.{(i >> 8) & 255}.{i & 255}")
            else:
                a, b, c = nets[i % 2]
                self.pool.append(f"{a}.{b}.{c}.{(i // 2) % 254 + 1}")
        self.sensors = [f"sensor-{i:02d}" for i in range(sensors)]
        self.downloads = [f"http://{h}.example/{p}" for h in ("bins", "update", "cdn") for p in ("x86", "arm7", "mips", "bins.sh")]

    def session_events(self) -> list[dict]:
        r = self.r
        sensor = r.choice(self.sensors)
        old = sensor.endswith(("0", "5"))  # the 2017 form
        sid = "%012x" % r.getrandbits(48)
        ip = r.choice(self.pool)
        proto = "telnet" if r.random() < 0.15 else "ssh"
        dport = 2223 if proto == "telnet" else 2222
        base = {"sensor": sensor, "src_ip": ip, "session": sid}
        if old:
            base.update({"isError": 0, "system": f"HoneyPotSSHTransport,{r.randint(1, 99999)},{ip}"})
        kind = r.choices(
            ["scan", "handshake", "brute", "commands", "download", "tunnel"],
            weights=[30, 25, 30, 9, 3, 3],
        )[0]
        evs: list[dict] = []

        def ev(eventid: str, **kw) -> None:
            e = {"eventid": eventid, **kw, **base}
            evs.append(e)

        sport = r.randint(1024, 65535)
        connect = dict(src_port=sport, dst_ip="172.31.17.139", dst_port=dport,
                       message=f"New connection: {ip}:{sport} (172.31.17.139:{dport}) [session: {sid}]")
        if not old:
            connect["protocol"] = proto
        ev("cowrie.session.connect", **connect)
        if kind != "scan" and proto == "ssh":
            v = r.choice(CLIENTS)
            ev("cowrie.client.version", version=v, message=f"Remote SSH version: {v}")
            h = r.choice(HASSHES)
            ev("cowrie.client.kex", hassh=h, hasshAlgorithms=";".join([",".join(KEX), ",".join(ENC), "hmac-sha1", "none"]),
               kexAlgs=KEX, keyAlgs=["ssh-rsa", "ssh-dss"], encCS=ENC, macCS=["hmac-sha1"], compCS=["none"], langCS=[""],
               message=f"SSH client hassh fingerprint: {h}")
        if kind in ("brute", "commands", "download", "tunnel"):
            for _ in range(r.randint(1, 4) if kind != "brute" else r.randint(1, 8)):
                u, p = r.choice(USERS), r.choice(PASSWORDS)
                ev("cowrie.login.failed", username=u, password=p, message=f"login attempt [{u}/{p}] failed")
        if kind in ("commands", "download", "tunnel"):
            u, p = "root", r.choice(PASSWORDS)
            ev("cowrie.login.success", username=u, password=p, message=f"login attempt [{u}/{p}] succeeded")
        if kind == "tunnel":
            for _ in range(r.randint(1, 3)):
                ev("cowrie.direct-tcpip.request", dst_ip="www.example.com", dst_port=443, src_port=0,
                   message="direct-tcp connection request to www.example.com:443 from localhost:0")
                ev("cowrie.direct-tcpip.data", dst_ip="www.example.com", dst_port=443, data="\\x16\\x03\\x01\\x02\\x00\\x01",
                   message="direct-tcp forward to www.example.com:443 with data")
        if kind in ("commands", "download"):
            ev("cowrie.session.params", arch="linux-x64-lsb", message=[])
            for _ in range(r.randint(1, 6)):
                c = r.choice(COMMANDS)
                ev("cowrie.command.input", input=c, message=f"CMD: {c}")
            if r.random() < 0.3:
                ev("cowrie.command.failed", input="enable", message="Command not found: enable")
        if kind == "download":
            url = r.choice(self.downloads)
            sha = hashlib.sha256(url.encode()).hexdigest()
            ev("cowrie.session.file_download", url=url, outfile=f"var/lib/cowrie/downloads/{sha}", shasum=sha,
               duplicate=r.random() < 0.7, destfile="", message=f"Downloaded URL ({url}) with SHA-256 {sha} to var/lib/cowrie/downloads/{sha}")
        if kind in ("commands", "download"):
            tty = "%064x" % r.getrandbits(256)
            ev("cowrie.log.closed", ttylog=f"var/lib/cowrie/tty/{tty}", size=r.randint(200, 9000), shasum=tty,
               duplicate=False, duration=round(r.random() * 30, 6), message=f"Closing TTY Log: var/lib/cowrie/tty/{tty} after 3 seconds")
        d = r.random() * 60
        ev("cowrie.session.closed", duration=d, message=f"Connection lost after {int(d)} seconds")
        return evs

    def run(self, events: int, out) -> int:
        r = self.r
        active: list[list[dict]] = []
        written = 0
        old_sensor = lambda e: e["sensor"].endswith(("0", "5"))  # noqa: E731
        while written < events:
            while len(active) < 4:
                active.append(self.session_events())
            i = r.randrange(len(active))
            e = active[i].pop(0)
            if not active[i]:
                active.pop(i)
            self.t += timedelta(microseconds=r.randint(1_000, 400_000))
            e["timestamp"] = ts(self.t)
            if old_sensor(e):
                out.write(json.dumps(e))
            else:
                out.write(json.dumps(e, separators=(",", ":")))
            out.write("\n")
            written += 1
        return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--out", default="-", help="output file (default: standard output)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--attackers", type=int, default=50_000, help="size of the attacker address pool")
    ap.add_argument("--sensors", type=int, default=10)
    a = ap.parse_args()
    out = sys.stdout if a.out == "-" else open(a.out, "w", buffering=1 << 20)
    n = Gen(a.seed, a.attackers, a.sensors).run(a.events, out)
    if out is not sys.stdout:
        out.close()
    print(f"wrote {n} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
