#!/usr/bin/env python3
"""Time PyPI csirtg-indicator's Indicator(value) on a corpus, one value per line.

Usage: bench-csirtg.py CORPUS [--accepted-out FILE] [--runs N]

Keeps the values Indicator() accepts (writes them to --accepted-out, so the Rust side can time
exactly the same inputs), then times Indicator(value) over them: the median of N runs, each a
full pass, measured in the thread's CPU time (the machine is shared; wall time would measure the
neighbours). Prints one JSON object.
"""
import argparse
import importlib.metadata
import json
import statistics
import time

from csirtg_indicator import Indicator


def accepts(value):
    try:
        Indicator(value)
        return True
    except Exception:  # the library signals an unknown or invalid value with several exception types
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--accepted-out")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with open(a.corpus, encoding="utf-8") as f:
        values = [line.rstrip("\n") for line in f if line.strip()]
    ok = [v for v in values if accepts(v)]
    if a.accepted_out:
        with open(a.accepted_out, "w", encoding="utf-8") as f:
            f.write("".join(v + "\n" for v in ok))
    rates = []
    for _ in range(a.runs):
        start = time.thread_time()
        for v in ok:
            Indicator(v)
        rates.append(len(ok) / (time.thread_time() - start))
    print(json.dumps({
        "library": "csirtg-indicator",
        "version": importlib.metadata.version("csirtg-indicator"),
        "values": len(values),
        "accepted": len(ok),
        "per_s": statistics.median(rates),
        "runs": rates,
    }))


if __name__ == "__main__":
    main()
