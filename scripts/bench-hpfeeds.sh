#!/usr/bin/env bash
# hpfeeds broker throughput and latency: our broker (`apiary serve --hpfeeds`) and the PyPI hpfeeds3
# broker (`hpfeeds-broker --auth env`) side by side, driven by the same native load generator
# (crates/server/examples/hpfeeds_load.rs): 1 publisher, SUBS subscribers, MESSAGES messages of
# SIZE bytes, at most WINDOW in flight. Runs RUNS rounds, alternating brokers, and prints each run
# and the medians.
#
#   scripts/bench-hpfeeds.sh                       defaults: RUNS=5 MESSAGES=100000 SUBS=10 SIZE=256 WINDOW=1000
#   RUNS=3 MESSAGES=50000 scripts/bench-hpfeeds.sh
#   BUILD=0 scripts/bench-hpfeeds.sh              use the release binaries already built
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
RUNS="${RUNS:-5}"
MESSAGES="${MESSAGES:-100000}"
SUBS="${SUBS:-10}"
SIZE="${SIZE:-256}"
WINDOW="${WINDOW:-1000}"
python="${APIARY_PYTHON:-/usr/bin/python3}"
venvs="${APIARY_VENVS:-/var/tmp/apiary-venvs}"

if [[ "${BUILD:-1}" != 0 ]]; then
    echo "==> building (release)" >&2
    cargo build --release -q -p apiary
    cargo build --release -q -p apiary-server --example hpfeeds_load
fi
apiary="$repo/target/release/apiary"
load="$repo/target/release/examples/hpfeeds_load"

req="$repo/scripts/hpfeeds-broker-requirements.txt"
venv="$venvs/hpfeeds-broker-$( { cat "$req"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)"
if [[ ! -f "$venv/.complete" ]]; then
    echo "==> building the hpfeeds3 broker venv in $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2
    "$venv/bin/pip" install --no-input --no-deps --quiet -r "$req" >&2
    touch "$venv/.complete"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        if "$python" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

secret=bench-secret
data="$work/data"
"$apiary" hpfeeds ident add benchpub --secret "$secret" --publish bench --data "$data" >/dev/null
"$apiary" hpfeeds ident add benchsub --secret "$secret" --subscribe bench --data "$data" >/dev/null
ours_port="$(free_port)"
APIARY_LOG=warn "$apiary" serve --data "$data" --listen "127.0.0.1:$(free_port)" --hpfeeds "127.0.0.1:$ours_port" \
    >"$work/apiary.log" 2>&1 &
pids+=($!)
py_port="$(free_port)"
env HPFEEDS_BENCHPUB_SECRET="$secret" HPFEEDS_BENCHPUB_PUBCHANS=bench \
    HPFEEDS_BENCHSUB_SECRET="$secret" HPFEEDS_BENCHSUB_SUBCHANS=bench \
    "$venv/bin/hpfeeds-broker" --auth env --bind "127.0.0.1:$py_port" >"$work/hpfeeds-broker.log" 2>&1 &
pids+=($!)
wait_port "$ours_port"
wait_port "$py_port"

run() {
    "$load" --broker "127.0.0.1:$2" --pub "benchpub:$secret" --sub "benchsub:$secret" \
        --subscribers "$SUBS" --messages "$MESSAGES" --size "$SIZE" --window "$WINDOW" | sed "s/^{/{\"broker\":\"$1\",/"
}

echo "==> $RUNS rounds: 1 publisher, $SUBS subscribers, $MESSAGES messages of $SIZE bytes, window $WINDOW" >&2
results="$work/results.jsonl"
for i in $(seq 1 "$RUNS"); do
    run apiary "$ours_port" | tee -a "$results"
    run hpfeeds3 "$py_port" | tee -a "$results"
done

"$python" - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {}
for b in ("apiary", "hpfeeds3"):
    rs = [r for r in rows if r["broker"] == b]
    med[b] = {k: statistics.median(r[k] for r in rs) for k in ("msgs_per_s", "deliveries_per_s", "p50_us", "p99_us")}
print()
print(f"{'broker':<10} {'msgs/s':>10} {'deliveries/s':>13} {'p50 µs':>8} {'p99 µs':>8}   (medians of {len(rows)//2} runs)")
for b, m in med.items():
    print(f"{b:<10} {m['msgs_per_s']:>10.0f} {m['deliveries_per_s']:>13.0f} {m['p50_us']:>8.0f} {m['p99_us']:>8.0f}")
print(f"\napiary / hpfeeds3 messages/s: {med['apiary']['msgs_per_s'] / med['hpfeeds3']['msgs_per_s']:.1f}x")
PY
