#!/usr/bin/env bash
# HTTP hub benchmark (issue 3): Cowrie-style single-indicator POSTs, bulk publish and value
# lookups against a release `apiary serve` on loopback, with the default durability (each write
# synced before its reply). Prints one line per run and the medians; BENCHMARKS.md records them.
#
#   scripts/bench-http.sh                 # 3 runs of each, 20 s of POSTs per run
#   RUNS=1 DURATION=10s scripts/bench-http.sh
#   BUILD=0 scripts/bench-http.sh         # use target/release/apiary as it is
#
# Needs wrk (apt-get install -y wrk), curl and python3. Traffic goes to 127.0.0.1 only.
set -euo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
BULK_REQUESTS=${BULK_REQUESTS:-20}
BULK_SIZE=${BULK_SIZE:-10000}
PORT=${PORT:-18089}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/target/release/apiary"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
# BUILD=0 uses the binary already in target/release.
if [ "${BUILD:-1}" != 0 ]; then (cd "$ROOT" && cargo build --release -p apiary >&2); fi

WORK=$(mktemp -d)
HUB_PID=
cleanup() {
    if [ -n "$HUB_PID" ]; then kill "$HUB_PID" 2>/dev/null || true; wait "$HUB_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A Cowrie-like create: csirtg-indicator 3.x body, a different attacker address per request.
cat > "$WORK/post.lua" <<'LUA'
local counter = 0
local token = os.getenv("BENCH_TOKEN")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/vnd.csirtg.v1"
wrk.headers["Authorization"] = "Token token=" .. token
function setup(thread)
  thread:set("tid", math.random(0, 1000000))
end
request = function()
  counter = counter + 1
  local n = (tid or 0) * 7919 + counter
  local f = math.floor
  local ip = string.format("%d.%d.%d.%d", 11 + f(n / 16777216) % 200, f(n / 65536) % 256, f(n / 256) % 256, n % 256)
  local body = '{"indicator":{"indicator":"' .. ip .. '","itype":"ipv4","tlp":"amber","group":"everyone",'
    .. '"count":1,"tags":["scanner","ssh"],"confidence":3.0,"description":"random scanning activity",'
    .. '"portlist":22,"protocol":"tcp","reported_at":"2026-12-03T16:11:07.808911Z"},"comment":null,"content":null}'
  return wrk.format(nil, nil, nil, body)
end
LUA

# Value lookups: GET /api/v1/indicators?q=<a stored address>, random among the bulk values.
cat > "$WORK/lookup.lua" <<'LUA'
local token = os.getenv("BENCH_TOKEN")
local reqs = tonumber(os.getenv("BULK_REQUESTS"))
local size = tonumber(os.getenv("BULK_SIZE"))
wrk.headers["Authorization"] = "Bearer " .. token
request = function()
  local f = math.floor
  local n = math.random(0, reqs * size - 1)
  n = n - n % 3
  local ip = string.format("%d.%d.%d.%d", 23 + f(n / 16777216) % 150, f(n / 65536) % 256, f(n / 256) % 256, n % 256)
  return wrk.format("GET", "/api/v1/indicators?q=" .. ip)
end
LUA

start_hub() {
    local data="$WORK/data-$1"
    "$BIN" serve --data "$data" --listen "127.0.0.1:$PORT" --rate-limit-token 0 --log warn >"$WORK/hub.out" 2>"$WORK/hub.err" &
    HUB_PID=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    TOKEN=$(awk 'NF==1 && /^ +/ {print $1; exit}' "$WORK/hub.out")
    [ -n "$TOKEN" ] || { echo "no admin token in the hub's first-start output" >&2; cat "$WORK/hub.err" >&2; exit 1; }
    curl -sf -X POST "http://127.0.0.1:$PORT/api/users/admin/feeds" -H "Authorization: Token token=$TOKEN" \
        -H 'Content-Type: application/json' -d '{"feed":{"name":"bench","description":"benchmark"}}' >/dev/null
}

stop_hub() {
    kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true; HUB_PID=
}

rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$HUB_PID/status"; }

# wrk latency ("812.00us", "4.29ms", "1.02s") in milliseconds.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}'; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Bulk bodies: BULK_REQUESTS arrays of BULK_SIZE distinct indicators (addresses, names, URLs).
python3 - "$WORK" "$BULK_REQUESTS" "$BULK_SIZE" <<'PY'
import json, sys
work, reqs, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for r in range(reqs):
    items = []
    for i in range(size):
        n = r * size + i
        k = n % 3
        if k == 0:
            v = "%d.%d.%d.%d" % (23 + (n >> 24) % 150, (n >> 16) & 255, (n >> 8) & 255, n & 255)
        elif k == 1:
            v = "host%d.bench-%d.example.net" % (n, r)
        else:
            v = "http://dl%d.bench.example.org/x/%d.sh" % (r, n)
        items.append({"indicator": v, "tags": ["bench", "bulk"], "portlist": 22, "protocol": "tcp",
                      "lasttime": "2026-12-01T00:00:00Z"})
    with open("%s/bulk-%d.json" % (work, r), "w") as f:
        json.dump(items, f)
PY

echo "# single-indicator POSTs: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (CSIRTG create, durable before 201)"
: > "$WORK/rps"; : > "$WORK/p99"; : > "$WORK/p50"; : > "$WORK/rss"
for run in $(seq "$RUNS"); do
    start_hub "post-$run"
    BENCH_TOKEN=$TOKEN wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" \
        "http://127.0.0.1:$PORT/api//users/admin/feeds/bench/indicators" > "$WORK/wrk.out"
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
    p50=$(awk '$1=="50%" {print $2}' "$WORK/wrk.out" | to_ms)
    p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk.out" | to_ms)
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.out")
    rss=$(rss_mib)
    echo "run $run: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms, non-2xx ${non2xx:-0}, hub RSS ${rss} MiB"
    echo "$rps" >> "$WORK/rps"; echo "$p50" >> "$WORK/p50"; echo "$p99" >> "$WORK/p99"; echo "$rss" >> "$WORK/rss"
    stop_hub
done
echo "median: $(median < "$WORK/rps") req/s, p50 $(median < "$WORK/p50") ms, p99 $(median < "$WORK/p99") ms, RSS $(median < "$WORK/rss") MiB"

echo "# bulk publish: $BULK_REQUESTS POSTs of $BULK_SIZE indicators, 2 at a time (native API, JSON array)"
: > "$WORK/ips"; : > "$WORK/brss"; : > "$WORK/lrps"; : > "$WORK/lp99"
for run in $(seq "$RUNS"); do
    start_hub "bulk-$run"
    t0=$(date +%s.%N)
    for r in $(seq 0 "$((BULK_REQUESTS - 1))"); do
        echo "$WORK/bulk-$r.json"
    done | xargs -P 2 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST \
        "http://127.0.0.1:$PORT/api/v1/feeds/admin/bench/indicators" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary @{} > "$WORK/codes"
    t1=$(date +%s.%N)
    bad=$(grep -vc '^201$' "$WORK/codes" || true)
    stored=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^apiary_sightings_appended_total/ {print $2}')
    ips=$(awk -v n="$stored" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n/(b-a)}')
    rss=$(rss_mib)
    echo "run $run: $stored indicators in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}') s = $ips indicators/s, non-201 $bad, hub RSS ${rss} MiB"
    echo "$ips" >> "$WORK/ips"; echo "$rss" >> "$WORK/brss"
    BENCH_TOKEN=$TOKEN BULK_REQUESTS=$BULK_REQUESTS BULK_SIZE=$BULK_SIZE wrk -t"$THREADS" -c8 -d10s --latency \
        -s "$WORK/lookup.lua" "http://127.0.0.1:$PORT/" > "$WORK/wrk-lookup.out"
    lrps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk-lookup.out")
    lp99=$(awk '$1=="99%" {print $2}' "$WORK/wrk-lookup.out" | to_ms)
    echo "run $run: lookups of stored values: ${lrps} req/s, p99 ${lp99} ms (8 connections), hub RSS $(rss_mib) MiB"
    echo "$lrps" >> "$WORK/lrps"; echo "$lp99" >> "$WORK/lp99"
    stop_hub
done
echo "median: $(median < "$WORK/ips") indicators/s, RSS $(median < "$WORK/brss") MiB; lookups $(median < "$WORK/lrps") req/s, p99 $(median < "$WORK/lp99") ms"
