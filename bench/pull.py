#!/usr/bin/env python3
"""Backfill throughput and memory of the pull, against the Events API double with a page
latency like Klaviyo's: events per second against the ceiling the request budget allows
(page size x requests per second), and the pull's peak resident memory, for two history
lengths (it must not grow with the history).

    .venv/bin/python bench/pull.py --binary target/release/klaviyo-source
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "pk_bench_double_0001"
PAGE_SIZE = 1000


def post(url, payload):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def high_water_kib(pid):
    """VmHWM (peak resident set) of a running process, KiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_one(binary, events, latency, budget, parallel):
    double = subprocess.Popen([sys.executable, str(ROOT / "tests/doubles/klaviyo_events_api.py"), "--port", "0",
                               "--api-key", API_KEY], stdout=subprocess.PIPE, text=True)
    url = double.stdout.readline().strip()
    try:
        start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)).replace(hour=0, minute=0, second=0,
                                                                                    microsecond=0)
        span_us = 30 * 86_400 * 1_000_000
        post(url + "/__metrics", {"metrics": [{"id": "OPn3d1", "name": "Opened Email"}]})
        post(url + "/__series", {"metric_id": "OPn3d1", "prefix": "b-", "start": start.isoformat(),
                                 "count": events, "step_us": span_us // events, "profiles": 5000})
        post(url + "/__control", {"delay": latency})
        with tempfile.TemporaryDirectory() as lake:
            env = {**os.environ, "KLAVIYO_API_KEY": API_KEY, "KLAVIYO_API_BASE_URL": url}
            began = time.monotonic()
            pull = subprocess.Popen([binary, "pull", "--lake", lake, "--from", start.isoformat(),
                                     "--to", (start + dt.timedelta(days=31)).isoformat(),
                                     "--requests-per-minute", str(budget),
                                     *(["--parallel-windows", str(parallel)] if parallel else [])],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            peak_kib = 0
            while pull.poll() is None:
                peak_kib = max(peak_kib, high_water_kib(pull.pid))
                time.sleep(0.05)
            elapsed = time.monotonic() - began
            out, err = pull.communicate()
            if pull.returncode != 0:
                raise SystemExit(f"pull failed: {out}{err}")
        ceiling = PAGE_SIZE * budget / 60
        rate = events / elapsed
        return {"events": events, "seconds": round(elapsed, 1), "events_per_s": round(rate),
                "ceiling_events_per_s": round(ceiling), "share_of_ceiling": round(rate / ceiling, 2),
                "peak_rss_mib": round(peak_kib / 1024, 1), "latency_s": latency,
                "budget_per_min": budget, "parallel_windows": parallel or "default", "requests": requests(out),
                "summary": out.splitlines()[0] if out else ""}
    finally:
        double.terminate()
        double.wait(timeout=10)


def requests(summary):
    """The request count the pull reports ("...; 122 requests, 0 x 429")."""
    for part in summary.replace(";", ",").split(","):
        if part.strip().endswith("requests"):
            return int(part.split()[0])
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / "target/release/klaviyo-source"))
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per page at the double")
    parser.add_argument("--budget", type=int, default=700, help="requests per minute (the default budget)")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--parallel-windows", type=int, default=None,
                        help="default: the pull's own, derived from the budget (8 at 700/min, 35 at 3,500)")
    args = parser.parse_args()
    for events in map(int, args.sizes.split(",")):
        print(json.dumps(run_one(args.binary, events, args.latency, args.budget, args.parallel_windows)), flush=True)


if __name__ == "__main__":
    main()
