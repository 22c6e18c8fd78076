#!/usr/bin/env python3
"""Bounded soak: nothing lost, nothing duplicated, through faults and an emulator restart.

Sends EVENTS events (default 10,000) as signed webhooks of 50 events to the real binary
(Firehose sink) against tests/emulator/stack_emulator.py, which fails records at random,
throttles and fails whole calls, and is restarted in the middle. The sender behaves like
Klaviyo: it retries every non-2xx (and every refused connection) with backoff. Loopback only;
it stops by itself (bounded retries, bounded time).

At the end it re-drives the dead-letter prefix, then checks that every sent id is in S3 and
that the dedupe query returns each exactly once, and prints the figures.
"""

import argparse
import gzip
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests/e2e"))
from query_lake import connect  # noqa: E402
from send_sample_webhook import post_webhook  # noqa: E402

KEY = "soak-write-key-0000001"
EVENTS_PER_REQUEST = 50
MAX_ATTEMPTS = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    def __init__(self, work: Path):
        self.work = work
        self.port, self.control_port = free_port(), free_port()
        self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(self.work / f"emulator-{self.starts}.log", "w")
        ready = self.work / "ready.json"
        ready.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/emulator/stack_emulator.py"), "--port", str(self.port),
             "--control-port", str(self.control_port), "--write-key", KEY, "--ready-file", str(ready),
             "--persist-dir", str(self.work / "s3")], stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + 60
        while not ready.exists():
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError("emulator did not start")
            time.sleep(0.1)
        time.sleep(0.2)
        self.info = json.loads(ready.read_text())
        self.faults({"record_failure_rate": 0.2, "fail_records_for_calls": -1, "seed": 5})

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def faults(self, plan: dict):
        request = urllib.request.Request(f"http://127.0.0.1:{self.control_port}/faults",
                                         data=json.dumps(plan).encode(), method="POST")
        urllib.request.urlopen(request, timeout=5).read()

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control_port}/stats", timeout=5) as r:
            return json.loads(r.read())


def inject(emulator: Emulator, plan: dict):
    """Adds a fault unless the emulator is down (restarting) right now."""
    try:
        emulator.faults(plan)
    except OSError:
        pass


def body(first: int, count: int) -> bytes:
    template = json.loads((ROOT / "tests/fixtures/webhooks/all_six_collections.json").read_text())
    events = []
    for i in range(first, first + count):
        event = json.loads(json.dumps(template["data"][i % 6]))
        event["payload"]["data"]["id"] = f"soak{i:07d}"
        events.append(event)
    template["data"] = events
    return json.dumps(template).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--binary", type=Path, default=ROOT / "target/release/klaviyo-source")
    parser.add_argument("--max-seconds", type=int, default=900)
    args = parser.parse_args()
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    emulator = Emulator(work)
    emulator.start()
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator.info["endpoint"], "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": emulator.info["region"],
           "DELIVERY_STREAM_NAME": emulator.info["stream"], "DEAD_LETTER_BUCKET": emulator.info["bucket"],
           "EMIT_METRICS": "true", "LOG_LEVEL": "warn", "DELIVERY_TIMEOUT_SECS": "5"}
    port = free_port()
    endpoint = subprocess.Popen([str(args.binary), "serve", "--listen", f"127.0.0.1:{port}", "--write-key", KEY],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    metrics = []
    threading.Thread(target=lambda: metrics.extend(json.loads(l) for l in endpoint.stdout if l.startswith("{")),
                     daemon=True).start()
    time.sleep(1)
    url = f"http://127.0.0.1:{port}/webhooks/klaviyo"
    requests = (args.events + EVENTS_PER_REQUEST - 1) // EVENTS_PER_REQUEST
    rng = random.Random(3)
    answers = {"2xx": 0, "non_2xx": 0, "connection_errors": 0}
    restarted = False
    restart = None
    for n in range(requests):
        first = n * EVENTS_PER_REQUEST
        payload = body(first, min(EVENTS_PER_REQUEST, args.events - first))
        if n == requests // 2 and not restarted:
            emulator.stop()                    # Firehose and S3 unreachable for a while ...
            restart = threading.Timer(3.0, emulator.start)  # ... then back, S3 objects intact
            restart.start()
            restarted = True
        elif n % 17 == 5:
            inject(emulator, {"throttle_calls": 2})       # SDK retries these
        elif n % 29 == 7:
            inject(emulator, {"fail_calls": 3})           # outlasts the SDK's 3 attempts: spill
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if time.time() - started > args.max_seconds:
                raise SystemExit("soak exceeded its time bound")
            try:
                status, _ = post_webhook(url, payload, KEY, timeout=30)
            except OSError:
                status = None
                answers["connection_errors"] += 1
            if status is not None and 200 <= status < 300:
                answers["2xx"] += 1
                break
            if status is not None:
                answers["non_2xx"] += 1
            time.sleep(min(2.0, 0.1 * 2 ** attempt) * rng.random())
        else:
            raise SystemExit(f"request {n} never succeeded")

    if restart is not None:
        restart.join()
    stats = emulator.stats()
    s3 = __import__("boto3").client("s3", endpoint_url=emulator.info["endpoint"], region_name="eu-west-1",
                                    aws_access_key_id="t", aws_secret_access_key="t")

    def rows_under(prefix):
        rows = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=emulator.info["bucket"], Prefix=prefix):
            for obj in page.get("Contents", []):
                data = s3.get_object(Bucket=emulator.info["bucket"], Key=obj["Key"])["Body"].read()
                rows.extend(json.loads(l) for l in gzip.decompress(data).decode().splitlines())
        return rows

    spilled_rows = rows_under("dead-letter/")
    lake_before = rows_under("klaviyo/")
    emulator.faults({"record_failure_rate": 0.0, "fail_records_for_calls": 0})
    redrive = subprocess.run([str(args.binary), "redrive"], env=env, capture_output=True, text=True, timeout=120)
    lake = rows_under("klaviyo/")
    left_in_dead_letter = rows_under("dead-letter/")
    endpoint.terminate()
    endpoint.wait()
    emulator.stop()

    sent = {f"klaviyo-soak{i:07d}" for i in range(args.events)}
    lake_ids = [r["id"] for r in lake]
    lost = sent - set(lake_ids) - {r["id"] for r in left_in_dead_letter}
    # The dedupe query the README documents, run with DuckDB over the bucket's objects
    # (the emulator's on-disk mirror of S3).
    mirror = work / "s3" / emulator.info["bucket"]
    dedupe = connect(mirror).sql(
        "select count(*), count(distinct id) from (select *, row_number() over (partition by id order by received_at)"
        " as row_rank from tracks) where row_rank = 1").fetchall()[0]
    resent = sum(m.get("RecordsResent", 0) for m in metrics)
    print(f"sent events: {len(sent)} in {requests} requests; answers: {answers}")
    print(f"emulator (since its last start): {stats}")
    print(f"emulator restarted mid-run: {restarted}")
    print(f"records resent by the function (RecordsResent): {resent}")
    print(f"rows spilled to dead-letter: {len(spilled_rows)}; redrive: {redrive.stdout.strip() or redrive.stderr.strip()}")
    print(f"rows in S3 before redrive: {len(lake_before)}; after: {len(lake)} ({len(set(lake_ids))} distinct ids)")
    print(f"duplicates before dedupe: {len(lake_ids) - len(set(lake_ids))}; after dedupe: {dedupe[0] - dedupe[1]} "
          f"({dedupe[0]} rows for {dedupe[1]} ids)")
    print(f"lost: {len(lost)}; left in dead-letter: {len(left_in_dead_letter)}")
    print(f"elapsed: {time.time() - started:.0f} s")
    ok = not lost and dedupe[0] == dedupe[1] == len(sent) and not left_in_dead_letter
    print("RESULT:", "0 lost, each id exactly once after dedupe" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
