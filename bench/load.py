#!/usr/bin/env python3
"""The release binary in local mode under load from wrk (loopback only, bounded in time).

For 1-event and 100-event signed webhooks, with the discarding sink and with the local
lake: requests/s, events/s, p50/p99 latency, and the endpoint's peak RSS (VmHWM). Also the
time from process start to the first answered request (a cold-start proxy) and the
stripped binary's size.
"""

import argparse
import email.utils
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from send_sample_webhook import sign  # noqa: E402

KEY = "bench-load-write-key-01"
FIXTURE = ROOT / "tests/fixtures/webhooks/all_six_collections.json"


def body_of(events: int) -> bytes:
    template = json.loads(FIXTURE.read_text())
    data = template["data"]
    out = []
    for i in range(events):
        event = json.loads(json.dumps(data[i % len(data)]))
        event["payload"]["data"]["id"] = f"load{i:06d}"
        out.append(event)
    template["data"] = out
    return json.dumps(template).encode()


def start(binary: Path, args, port: int):
    process = subprocess.Popen([str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--write-key", KEY, *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "LOG_LEVEL": "warn"})
    wait_healthy(port)
    return process


def wait_healthy(port: int, timeout: float = 10.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.0005)
    raise RuntimeError("endpoint did not become healthy")


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, body: bytes, seconds: int, connections: int, threads: int):
    timestamp = email.utils.formatdate(time.time(), usegmt=True)
    webhook_id = json.loads(body)["meta"]["klaviyo_webhook_id"]
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(f"""
wrk.method = "POST"
local f = io.open("{body_path}", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Klaviyo-Webhook-Id"] = "{webhook_id}"
wrk.headers["Klaviyo-Timestamp"] = "{timestamp}"
wrk.headers["Klaviyo-Signature"] = "{sign(KEY, body, timestamp)}"
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %d %d %f %f %f %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max, errors))
end
""")
        out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", str(script),
                              f"http://127.0.0.1:{port}/webhooks/klaviyo"], capture_output=True, text=True, check=True)
    fields = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", out.stdout).groups()
    requests, duration_us, p50, p99, worst, errors = fields
    seconds_run = int(duration_us) / 1e6
    return {"requests_per_second": int(requests) / seconds_run, "p50_ms": float(p50) / 1000,
            "p99_ms": float(p99) / 1000, "max_ms": float(worst) / 1000, "errors": int(errors),
            "requests": int(requests)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", type=Path, default=ROOT / "target/release/klaviyo-source")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--port", type=int, default=3911)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (bench/run.sh installs it with apt-get)")

    print(f"stripped release binary: {args.binary.stat().st_size / 1e6:.2f} MB ({args.binary.stat().st_size} bytes)")
    starts = []
    for _ in range(10):
        begun = time.perf_counter()
        process = subprocess.Popen([str(args.binary), "serve", "--listen", f"127.0.0.1:{args.port}", "--write-key", KEY,
                                    "--discard-events-for-benchmarks"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        wait_healthy(args.port)
        starts.append((time.perf_counter() - begun) * 1000)
        process.terminate()
        process.wait()
    print(f"process start to first answered request: median {statistics.median(starts):.1f} ms, "
          f"max {max(starts):.1f} ms over {len(starts)} starts (target < 50 ms)")

    figures = {"binary_bytes": args.binary.stat().st_size, "start_to_first_answer_ms_median": statistics.median(starts),
               "runs": []}
    print("\n| sink | events/request | connections | requests/s | events/s | p50 ms | p99 ms | max ms | errors | CPU ms/request | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for sink_name, sink_args in (("discard", ["--discard-events-for-benchmarks"]), ("lake", None)):
        for events, connections in ((1, 16), (100, 16), (100, 1)):
            with tempfile.TemporaryDirectory() as lake:
                extra = sink_args if sink_args else ["--lake", lake]
                process = start(args.binary, extra, args.port)
                try:
                    cpu_before = cpu_seconds(process.pid)
                    result = wrk(args.port, body_of(events), args.seconds, connections, min(2, connections))
                    cpu_ms = (cpu_seconds(process.pid) - cpu_before) * 1000 / max(result["requests"], 1)
                    rss = peak_rss_mib(process.pid)
                finally:
                    process.terminate()
                    process.wait()
            print(f"| {sink_name} | {events} | {connections} | {result['requests_per_second']:,.0f} | "
                  f"{result['requests_per_second'] * events:,.0f} | {result['p50_ms']:.2f} | {result['p99_ms']:.2f} | "
                  f"{result['max_ms']:.2f} | {result['errors']} | {cpu_ms:.3f} | {rss:.1f} |")
            figures["runs"].append({"sink": sink_name, "events": events, "connections": connections,
                                    "cpu_ms_per_request": cpu_ms, "peak_rss_mib": rss, **result})
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
