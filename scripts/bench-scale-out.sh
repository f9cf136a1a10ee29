#!/usr/bin/env bash
# Scale-out benchmark (issue 8), side by side in one run (BENCHMARKS.md, "Scale-out (issue 8)"):
#
#   1. bulk ingest and a full read of the feed on SQLite and PostgreSQL
#      (crates/store/examples/bench_scale.rs, EVENTS sightings per phase);
#   2. `apiary export OWNER/FEED --store URL --format csv --window all` on both stores, the
#      stores of step 1 (EVENTS/10 + EVENTS records), median of RUNS;
#   3. firehose delivery latency across two nodes: two `apiary serve --store postgres://…
#      --bus nats://…` on one PostgreSQL and one NATS, publish on A, native stream (SSE) on B
#      (scripts/bench-two-nodes.py, N sightings at RATE a second).
#
#   scripts/bench-scale-out.sh    # env: EVENTS (100000), RUNS (3), N (500), RATE (50), BUILD (1),
#                                 #      PG (postgres://postgres@127.0.0.1:5432/test), NATS (nats://127.0.0.1:4222)
#
# Everything it creates (schemas apiary_bench_*, the stream, temp dirs) is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-100000}
RUNS=${RUNS:-3}
N=${N:-500}
RATE=${RATE:-50}
PG=${PG:-postgres://postgres@127.0.0.1:5432/test}
NATS=${NATS:-nats://127.0.0.1:4222}
BIN=target/release/apiary
if [ "${BUILD:-1}" = 1 ]; then    # BUILD=0: use the release binaries already built
    cargo build -q --release -p apiary
    cargo build -q --release -p apiary-store --example bench_scale
fi

work=$(mktemp -d)
pids=()
schemas=()
dirs=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for s in "${schemas[@]}"; do psql "$PG" -qc "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
echo
echo "== 1. bulk ingest and full read ($EVENTS sightings per phase)"
target/release/examples/bench_scale --events "$EVENTS" --store sqlite: --store "$PG" --keep | tee "$work/scale.txt"

echo
echo "== 2. apiary export bench/honeypot --format csv --window all (median of $RUNS)"
echo "| store | records | lines exported | export time (s, median) |"
echo "|---|---:|---:|---:|"
while read -r url; do
    case "$url" in
        sqlite:*) label=SQLite; dirs+=("${url#sqlite:}") ;;
        *) label=PostgreSQL; schemas+=("${url##*schema=}") ;;
    esac
    times=()
    for _ in $(seq 1 "$RUNS"); do
        start=$(date +%s.%N)
        $BIN export bench/honeypot --store "$url" --format csv --window all > "$work/export.csv"
        end=$(date +%s.%N)
        times+=("$(echo "$end - $start" | bc)")
    done
    median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '| %s | %d | %d | %.2f |\n' "$label" $((EVENTS / 10 + EVENTS)) "$(($(wc -l < "$work/export.csv") - 1))" "$median"
done < <(sed -n 's/^keep: //p' "$work/scale.txt")
for d in "${dirs[@]:-}"; do [ -n "$d" ] && rm -rf "$d"; done

echo
echo "== 3. firehose delivery across two nodes ($N sightings at $RATE/s)"
tag=$(printf '%08x' $((RANDOM * 32768 + RANDOM)))
schema="apiary_bench_nodes_$tag"
schemas+=("$schema")
stream="APIARY_BENCH_NODES_$tag"
store="$PG?schema=$schema"
bus="$NATS?stream=$stream&prefix=apiary_bench_nodes_$tag.sightings"
$BIN user add alice --store "$store" >/dev/null
token=$($BIN token create --user alice --scopes read,write --store "$store" | tail -n1 | tr -d ' ')
$BIN feed create alice/honeypot --store "$store" >/dev/null
for port in 18181 18182; do
    $BIN serve --store "$store" --bus "$bus" --listen "127.0.0.1:$port" --log warn 2>"$work/node-$port.log" &
    pids+=($!)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.2; done
done
python3 scripts/bench-two-nodes.py --a http://127.0.0.1:18181 --b http://127.0.0.1:18182 --token "$token" \
    --feed alice/honeypot --n "$N" --rate "$RATE" --delete-stream "$stream" --nats "${NATS#nats://}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
