#!/usr/bin/env bash
# Indicator core benchmark (issue 2): apiary-core normalise+classify and allowlist lookups on a
# corpus built from ../shared/data, side by side with PyPI csirtg-indicator on the inputs both
# accept. Single-threaded; rates are per CPU-second of the benchmark thread.
#
#   scripts/bench-indicators.sh            # env: DATA, VENV, RUNS, OUT
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
VENV=${VENV:-/tmp/bench-venv}
RUNS=${RUNS:-7}
OUT=${OUT:-/tmp/apiary-bench}
CSIRTG_VERSION=3.0.0
mkdir -p "$OUT"

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "csirtg-indicator==$CSIRTG_VERSION"
cargo build -q --release -p apiary-core --example bench_parse
B=target/release/examples/bench_parse

# 1. The full corpus: apiary alone.
"$B" --data "$DATA" --runs "$RUNS" --json > "$OUT/apiary-full.json"
# 2. The inputs both accept: apiary's accepted values, filtered by csirtg-indicator.
"$B" --data "$DATA" --write-accepted "$OUT/apiary-accepted.txt"
"$VENV/bin/python" scripts/bench-csirtg.py "$OUT/apiary-accepted.txt" --accepted-out "$OUT/both.txt" --runs 5 > "$OUT/csirtg.json"
"$B" --data "$DATA" --corpus "$OUT/both.txt" --runs "$RUNS" --json > "$OUT/apiary-both.json"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
full = json.load(open(f"{out}/apiary-full.json"))
both = json.load(open(f"{out}/apiary-both.json"))
cs = json.load(open(f"{out}/csirtg.json"))
print(f"corpus: {full['values']} values, apiary accepts {full['accepted']}")
print(f"apiary normalise+classify, full corpus:     {full['parse_per_s']:>14,.0f} values/s")
print(f"apiary normalise+classify+builtin lists:    {full['parse_check_per_s']:>14,.0f} values/s")
print(f"inputs both accept: {both['values']}")
print(f"apiary on them:                             {both['parse_per_s']:>14,.0f} values/s")
print(f"csirtg-indicator {cs['version']} Indicator(v) on them: {cs['per_s']:>11,.0f} values/s")
print(f"ratio apiary / csirtg-indicator:            {both['parse_per_s'] / cs['per_s']:>14,.0f}x")
print(f"allowlist: {full['allowlist_entries']} entries")
print(f"lookups, corpus indicators:                 {full['lookups_corpus_per_s']:>14,.0f} lookups/s")
print(f"lookups, random probes:                     {full['lookups_random_per_s']:>14,.0f} lookups/s")
for k in full["lookups_by_kind"]:
    print(f"  {k['kind']:<22} {k['probes']:>7} probes {k['per_s']:>14,.0f} lookups/s")
PY
