#!/usr/bin/env python3
"""Cold-start (init) time of the Lambda binaries, through a stand-in of the Lambda Runtime
API: the time from starting the process to its first `GET .../invocation/next` is what Lambda
reports as Init Duration (the init phase ends when the runtime asks for its first event), and
the time from handing it an event to its response is the first invocation. The AWS services
the function reaches at start (Secrets Manager, Firehose's DescribeDeliveryStream) are the
stack emulator's (moto), on loopback, so the figures leave out network latency to AWS.
A benchmark that prints figures, not a test.

    .venv/bin/python bench/init_time.py --binary target/release/endpoint --runs 10

The Runtime API stand-in and its contract table: tests/lambda_runtime/runtime_api.py.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/lambda_runtime"))
from runtime_api import RuntimeApi  # noqa: E402

KEY = "init-bench-write-key-001"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_event():
    """An HTTP API (payload 2.0) GET /health."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "",
            "headers": {"host": "bench.execute-api.eu-west-1.amazonaws.com"},
            "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench",
                               "http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "bench"},
                               "requestId": "bench", "routeKey": "$default", "stage": "$default",
                               "time": "29/Nov/2026:08:00:00 +0000", "timeEpoch": 0},
            "isBase64Encoded": False}


def one_run(binary, env, event, init_only):
    api = RuntimeApi(event)
    started = time.monotonic()
    process = subprocess.Popen([binary], env={**env, "AWS_LAMBDA_RUNTIME_API": api.address},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = started + 60

    def done():
        if init_only:
            return api.first_next is not None
        return api.response_at is not None or api.error is not None

    while not done() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.002)
    process.kill()
    stderr = process.communicate()[1].decode(errors="replace")
    api.shutdown()
    if api.first_next is None or (not init_only and api.response_at is None):
        raise SystemExit(f"no answer: error={api.error!r} stderr={stderr[-2000:]}")
    first = None if init_only else (api.response_at - api.first_next) * 1000
    return (api.first_next - started) * 1000, first


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / "target/release/klaviyo-source"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pull", action="store_true",
                        help="the scheduled pull's binary: init only (its invocation would call Klaviyo)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    ready = work / "ready.json"
    emulator = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/emulator/stack_emulator.py"), "--port", str(free_port()),
         "--control-port", str(free_port()), "--write-key", KEY, "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ready.exists():
            time.sleep(0.1)
        time.sleep(0.2)
        info = json.loads(ready.read_text())
        env = {"PATH": os.environ.get("PATH", ""), "AWS_ENDPOINT_URL": info["endpoint"],
               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": info["region"],
               "DELIVERY_STREAM_NAME": info["stream"], "DEAD_LETTER_BUCKET": info["bucket"],
               "WRITE_KEY_SECRET_ARN": info["secret_arn"], "EMIT_METRICS": "true",
               "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
               "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
               "AWS_LAMBDA_LOG_GROUP_NAME": "bench"}
        event = health_event()
        if args.pull:
            env.update({"KLAVIYO_API_KEY": "pk_init_bench", "PULL_STATE_BUCKET": info["bucket"]})
            event = {"version": "0", "source": "aws.scheduler", "detail": {}}
        one_run(args.binary, env, event, args.pull)  # warm the page cache: every cold start reads the binary
        runs = [one_run(args.binary, env, event, args.pull) for _ in range(args.runs)]
        init = [r[0] for r in runs]
        first = [r[1] for r in runs if r[1] is not None]
        size = Path(args.binary).stat().st_size
        print(json.dumps({"binary": args.binary, "bytes": size, "runs": args.runs,
                          "init_ms_median": round(statistics.median(init), 1), "init_ms_min": round(min(init), 1),
                          "init_ms_max": round(max(init), 1),
                          "first_invocation_ms_median": round(statistics.median(first), 1) if first else None}))
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    main()
