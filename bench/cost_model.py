#!/usr/bin/env python3
"""Dollars per million events, from measured figures and stated price assumptions.

Measured (inputs): Firehose billed bytes per event with packing (the firehose_billing
example), and the function's CPU time per 100-event request (bench/load.py, lake sink).
Assumed (stated, not measured here): list prices, the Lambda memory size, the Firehose round
trip the function waits for, and events per request. Check current AWS prices for your region.
"""

import argparse
import json
import sys
from pathlib import Path

# Assumed list prices (USD), us-east-1 / eu-west-1 public pricing pages; verify before use.
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS = 0.20
HTTP_API_PER_MILLION_REQUESTS = 1.00
FIREHOSE_INGEST_PER_GB = 0.029
FIREHOSE_DYNAMIC_PARTITIONING_PER_GB = 0.020
FIREHOSE_PER_1000_OBJECTS = 0.005
S3_STORAGE_PER_GB_MONTH = 0.023
GB = 1024 ** 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load-json", type=Path, required=True, help="bench/load.py --json output")
    parser.add_argument("--billed-bytes-per-event", type=float, required=True, help="packed, from firehose_billing")
    parser.add_argument("--row-bytes-per-event", type=float, required=True, help="from firehose_billing")
    parser.add_argument("--events-per-request", type=int, default=100)
    parser.add_argument("--memory-mb", type=int, default=128)
    parser.add_argument("--firehose-wait-ms", type=float, default=30.0,
                        help="assumed wall time per request waiting on PutRecordBatch")
    parser.add_argument("--gzip-ratio", type=float, default=0.1, help="assumed compressed/raw size in S3")
    args = parser.parse_args()

    load = json.loads(args.load_json.read_text())
    run = next(r for r in load["runs"] if r["sink"] == "lake" and r["events"] == 100 and r["connections"] == 1)
    cpu_ms = run["cpu_ms_per_request"]
    requests = 1_000_000 / args.events_per_request
    duration_ms = max(1.0, cpu_ms + args.firehose_wait_ms)  # Lambda bills per started ms
    gb_seconds = requests * duration_ms / 1000 * args.memory_mb / 1024
    raw_gb = 1_000_000 * args.row_bytes_per_event / GB
    billed_gb = 1_000_000 * args.billed_bytes_per_event / GB
    unpacked_gb = 1_000_000 * 5120 / GB
    objects = requests  # at most one object per partition per buffer; an upper bound at low volume
    lines = [
        f"Measured: CPU {cpu_ms:.3f} ms per {args.events_per_request}-event request (lake sink, 1 connection); "
        f"Firehose billed {args.billed_bytes_per_event:.0f} B/event packed (5120 unpacked); rows {args.row_bytes_per_event:.0f} B/event.",
        f"Assumed: {args.memory_mb} MB Lambda (arm64), {args.firehose_wait_ms:.0f} ms waiting on Firehose per request, "
        f"{args.events_per_request} events per request, gzip to {args.gzip_ratio:.0%}, list prices in bench/cost_model.py.",
        "",
        "| item (per million events) | quantity | USD |",
        "|---|---|---|",
        f"| Lambda compute | {gb_seconds:,.1f} GB-s | {gb_seconds * LAMBDA_ARM_PER_GB_SECOND:.4f} |",
        f"| Lambda requests | {requests:,.0f} | {requests / 1e6 * LAMBDA_PER_MILLION_REQUESTS:.4f} |",
        f"| HTTP API requests | {requests:,.0f} | {requests / 1e6 * HTTP_API_PER_MILLION_REQUESTS:.4f} |",
        f"| Firehose ingestion, packed | {billed_gb:.3f} GB billed | {billed_gb * FIREHOSE_INGEST_PER_GB:.4f} |",
        f"| (Firehose ingestion, one row per record) | {unpacked_gb:.3f} GB billed | ({unpacked_gb * FIREHOSE_INGEST_PER_GB:.4f}) |",
        f"| Dynamic partitioning | {raw_gb:.3f} GB | {raw_gb * FIREHOSE_DYNAMIC_PARTITIONING_PER_GB:.4f} |",
        f"| S3 objects delivered (upper bound) | {objects:,.0f} | {objects / 1000 * FIREHOSE_PER_1000_OBJECTS:.4f} |",
        f"| S3 storage, first month | {raw_gb * args.gzip_ratio:.3f} GB | {raw_gb * args.gzip_ratio * S3_STORAGE_PER_GB_MONTH:.4f} |",
    ]
    total = (gb_seconds * LAMBDA_ARM_PER_GB_SECOND + requests / 1e6 * (LAMBDA_PER_MILLION_REQUESTS + HTTP_API_PER_MILLION_REQUESTS)
             + billed_gb * FIREHOSE_INGEST_PER_GB + raw_gb * FIREHOSE_DYNAMIC_PARTITIONING_PER_GB
             + objects / 1000 * FIREHOSE_PER_1000_OBJECTS + raw_gb * args.gzip_ratio * S3_STORAGE_PER_GB_MONTH)
    lines.append(f"| **total** | | **{total:.4f}** |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
