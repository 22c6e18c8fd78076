#!/usr/bin/env python3
"""Peak memory of one request by body size: starts `klaviyo-source serve` (the binary in
INGEST_BIN, default target/release/klaviyo-source) for each size, posts one signed webhook of small
events of that size, and reads the process's peak resident set (VmHWM) after the answer.
A benchmark that prints figures, not a test.

    .venv/bin/python bench/memory.py [--sizes-mib 0.5 1 2 4]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from send_sample_webhook import post_webhook  # noqa: E402

KEY = "memory-bench-write-key-01"
WEBHOOK_ID = "memory-bench"


def small_event(i: int) -> dict:
    return {"topic": "event:klaviyo.opened_email",
            "payload": {"data": {"id": f"m{i:07d}", "attributes": {"datetime": "2024-01-04T18:05:01+00:00",
                                                                   "event_properties": {"$message": "M1"}},
                                 "relationships": {"profile": {"data": {"id": "P1"}}}}}}


def body_of(size: int) -> tuple[bytes, int]:
    one = len(json.dumps(small_event(0))) + 2
    count = max(1, (size - 200) // one)
    body = json.dumps({"data": [small_event(i) for i in range(count)],
                       "meta": {"klaviyo_webhook_id": WEBHOOK_ID}}).encode()
    return body, count


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def measure(binary: str, size: int) -> tuple[int, int, int, int]:
    with tempfile.TemporaryDirectory() as lake:
        process = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--lake", lake, "--write-key", KEY,
                                    "--segment-write-key", "memory-bench-segment-01"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            url = None
            for line in process.stdout:
                if line.startswith("Listening on "):
                    url = line.split()[2].rstrip(",")
                    break
            idle = peak_rss_kib(process.pid)
            body, count = body_of(size)
            status, answer = post_webhook(url, body, KEY, webhook_id=WEBHOOK_ID, timeout=120)
            if status != 200 or answer.get("accepted") != count:
                raise RuntimeError(f"{status} {answer}")
            return len(body), count, idle, peak_rss_kib(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mib", type=float, nargs="+", default=[0.5, 1, 2, 4])
    args = parser.parse_args()
    binary = os.environ.get("INGEST_BIN", str(ROOT / "target/release/klaviyo-source"))
    print(f"binary: {binary}")
    print("| body bytes | events | RSS before (MiB) | peak RSS (MiB) |")
    print("|---|---|---|---|")
    for mib in args.sizes_mib:
        size = int(mib * 1024 * 1024) - 4096
        length, count, idle, peak = measure(binary, size)
        print(f"| {length:,} | {count:,} | {idle / 1024:.1f} | {peak / 1024:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
