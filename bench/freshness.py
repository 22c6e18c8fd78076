#!/usr/bin/env python3
"""Freshness of the compacted tables in the emulated stack: signed webhooks posted at a
steady rate to `klaviyo-source serve` delivering to the emulated Firehose stream
(tests/emulator), the real `compaction` binary run on a schedule against the emulated bucket
and Glue, and after each run the tables read back (their current manifests' Parquet files,
through DuckDB) to see which events became visible. An event's freshness is the time from its
webhook's 200 to the end of the first run after which the tables list it.

The emulated stream writes its objects at once; real Firehose buffers up to 60 s
(`BufferingHints` in template.yaml), which adds up to 60 s to every figure here.

    .venv/bin/python bench/freshness.py --schedule 60 --minutes 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests/e2e"), str(ROOT / "scripts")]
os.environ.setdefault("INGEST_BIN", str(ROOT / "target/debug/klaviyo-source"))

from conftest import WRITE_KEY, LocalEndpoint, StackEmulator, webhook_body  # noqa: E402
from query_lake import connect_tables  # noqa: E402
from send_sample_webhook import post_webhook  # noqa: E402


def visible_ids(emulator, scratch: Path) -> set:
    """The ids the compacted tables list now (every collection)."""
    lake = emulator.download("_tables/", scratch)
    con = connect_tables(lake)
    return {row[0] for row in con.execute("select id from tracks").fetchall()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedule", type=float, default=60.0, help="seconds between compaction runs")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long webhooks are sent")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between webhooks (5 events each)")
    parser.add_argument("--compaction", default=str(ROOT / "target/debug/compaction"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        emulator = StackEmulator(tmp)
        endpoint = LocalEndpoint(None, env=emulator.env())
        # The server logs every request: read its pipes, or a full pipe blocks it.
        for pipe in (endpoint.process.stdout, endpoint.process.stderr):
            threading.Thread(target=lambda p=pipe: [None for _ in p], daemon=True).start()
        sent = {}
        stop = threading.Event()

        def send():
            n = 0
            while not stop.is_set():
                status, answer = post_webhook(endpoint.webhook_url, webhook_body(5, f"fresh{n:05d}-"), WRITE_KEY)
                if status == 200:
                    at = time.monotonic()
                    for i in range(5):
                        sent[f"klaviyo-fresh{n:05d}-{i:06d}"] = at
                n += 1
                stop.wait(args.every)

        sender = threading.Thread(target=send)
        began = time.monotonic()
        sender.start()
        env = {"PATH": "/usr/bin:/bin", **emulator.env(), "LAKE_BUCKET": emulator.info["bucket"],
               "SCHEMA_NAME": "klaviyo", "GLUE_DATABASE": emulator.info["database"]}
        visible_at, runs, run_seconds = {}, 0, []
        next_run = began + args.schedule
        try:
            while True:
                time.sleep(max(0.0, next_run - time.monotonic()))
                next_run += args.schedule
                if time.monotonic() - began >= args.minutes * 60 and not stop.is_set():
                    stop.set()
                    sender.join()
                started = time.monotonic()
                result = subprocess.run([args.compaction], capture_output=True, text=True, env=env, timeout=600)
                if result.returncode != 0:
                    raise SystemExit(f"compaction failed: {result.stderr[-2000:]}")
                ended = time.monotonic()
                runs += 1
                run_seconds.append(ended - started)
                for event_id in visible_ids(emulator, tmp / f"tables-{runs}") & sent.keys():
                    visible_at.setdefault(event_id, ended)
                if stop.is_set() and visible_at.keys() >= sent.keys():
                    break
        finally:
            stop.set()
            endpoint.stop()
            emulator.process.terminate()
        ages = sorted(visible_at[i] - sent[i] for i in sent)
        p99 = ages[min(len(ages) - 1, int(len(ages) * 0.99))]
        print(json.dumps({
            "events": len(sent), "runs": runs, "schedule_s": args.schedule,
            "run_s_mean": round(statistics.mean(run_seconds), 2), "run_s_max": round(max(run_seconds), 2),
            "freshness_s_p50": round(statistics.median(ages), 1), "freshness_s_p99": round(p99, 1),
            "freshness_s_max": round(ages[-1], 1), "target_s": args.schedule + 180,
            "note": "the emulated stream writes at once; real Firehose adds up to its 60 s buffer",
        }))


if __name__ == "__main__":
    main()
