#!/usr/bin/env python3
"""Turns criterion's estimates for the `pipeline` group into events/s per core for the full
path and the parse-and-serialize baseline, with their ratio and the targets."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target/criterion/pipeline"
TARGET_RATIO = 0.8
TARGET_EVENTS_PER_SECOND = 200_000


def events_per_second(function: str, events: int) -> float:
    estimates = json.loads((CRITERION / function / str(events) / "new/estimates.json").read_text())
    nanoseconds = estimates["mean"]["point_estimate"]
    return events / (nanoseconds / 1e9)


def main() -> int:
    lines = ["| events per request | full path (events/s/core) | baseline parse+serialize (events/s/core) | ratio | targets (≥ 0.8×, ≥ 200k/s) |",
             "|---|---|---|---|---|"]
    for events in (1, 100, 1000):
        full = events_per_second("full", events)
        base = events_per_second("baseline", events)
        ratio = full / base
        met = "met" if ratio >= TARGET_RATIO and full >= TARGET_EVENTS_PER_SECOND else "not met"
        lines.append(f"| {events} | {full:,.0f} | {base:,.0f} | {ratio:.2f} | {met} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
