#!/usr/bin/env bash
# Web pages benchmark (issue 9): server time per page with 1,000,000 indicators stored.
#
# Builds a data directory with one feed of 1,000,000 distinct IPv4 addresses (`apiary import
# feed`) plus the real Cowrie logs (`apiary import cowrie`, for attackers and sessions), starts
# `apiary serve` (release), waits until the pages' background digest has read the whole
# sightings log (timed: that is the catch-up after a restart), then requests each page RUNS
# times over loopback and prints the median and the slowest `time_total` of curl per page.
#
#   scripts/bench-web.sh            # env: DATA (/tmp/apiary-web-bench), RUNS (21), PORT (18089)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-/tmp/apiary-web-bench}
RUNS=${RUNS:-21}
PORT=${PORT:-18089}
SHARED=${APIARY_SHARED:-../shared}
BIN=target/release/apiary
cargo build -q --release -p apiary

if [ ! -e "$DATA/.built" ]; then
    rm -rf "$DATA"
    python3 -c 'import random; random.seed(7); s=set()
while len(s) < 10**6: s.add("%d.%d.%d.%d" % (random.randint(24,44), random.randint(0,255), random.randint(0,255), random.randint(1,254)))
open("/tmp/ips-1m.txt","w").write("\n".join(sorted(s))+"\n")'
    $BIN user add bench --data "$DATA" >/dev/null
    $BIN user add ops --data "$DATA" >/dev/null
    $BIN import feed --feed bench/million --format text --data "$DATA" /tmp/ips-1m.txt >/dev/null
    $BIN import cowrie --feed ops/honeypots --data "$DATA" "$SHARED"/data/cowrie/* >/dev/null
    touch "$DATA/.built"
fi

$BIN serve --data "$DATA" --listen "127.0.0.1:$PORT" 2>/tmp/apiary-web-bench.log &
hub=$!
trap 'kill $hub 2>/dev/null || true' EXIT
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do curl -fs "$base/health" >/dev/null && break; sleep 0.1; done

# The first page starts the digest; time until it has read the whole log.
start=$(date +%s.%N)
while curl -fs "$base/" | grep -q 'data-state="computing"'; do sleep 0.5; done
echo "digest catch-up (whole log, from the first page view): $(echo "$(date +%s.%N) - $start" | bc) s"
sleep 11   # let the overlaps be computed once

ip=$(sed -n 500000p /tmp/ips-1m.txt)
attacker=$(curl -fs "$base/feeds/ops/honeypots?tags=login&itype=ipv4" | grep -o 'href="/indicators/[0-9.]*"' | head -1 | sed 's/.*indicators\/\(.*\)"/\1/')
cursor=$(curl -fs "$base/feeds/bench/million" | grep -o 'cursor=[^"]*' | head -1 | sed 's/&amp;/\&/g')
pages=(
    "/"
    "/feeds"
    "/feeds/bench/million"
    "/feeds/bench/million?$cursor"
    "/feeds/bench/million?within=30.1.0.0%2F16"
    "/feeds/bench/million?q=$ip"
    "/indicators/$ip"
    "/indicators/$attacker"
    "/attackers"
    "/compare"
    "/live"
    "/account"
)
printf "| page | median | slowest | bytes |\n|---|---:|---:|---:|\n"
for p in "${pages[@]}"; do
    times=()
    for _ in $(seq 1 "$RUNS"); do
        times+=("$(curl -s -o /dev/null -w '%{time_total}' "$base$p")")
    done
    size=$(curl -s -o /dev/null -w '%{size_download}' "$base$p")
    sorted=$(printf "%s\n" "${times[@]}" | sort -n)
    median=$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p")
    slowest=$(echo "$sorted" | tail -1)
    printf "| \`%s\` | %.1f ms | %.1f ms | %s |\n" "$p" "$(echo "$median * 1000" | bc)" "$(echo "$slowest * 1000" | bc)" "$size"
done
echo "hub peak RSS: $(grep VmHWM /proc/$hub/status | awk '{print $2/1024 " MB"}')"
