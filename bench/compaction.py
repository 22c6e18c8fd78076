#!/usr/bin/env python3
"""Compaction throughput, memory and size on realistic rows: a day of DISTINCT events spread
over 12 collections (rows made from the webhook fixture's real rows, ids varied), landed as
gzip NDJSON objects of 5,000 rows the way the local lake and Firehose land them, then:

1. `klaviyo-source compact` over one copy of each row: new rows parsed and written;
2. COPIES - 1 further copies of every object landed (retries, re-reads) and compacted again:
   duplicates dropped without a new version. The copies are exact (as Firehose's retries
   land them) unless `--retimed`, which gives each copy a later `received_at` (as a
   sender's retry after a 503 or a re-read lands it): such a copy has to be ranked.

Prints one JSON line per step (rows, CPU seconds, rows/s per core, peak RSS) and the sizes of
the day's Parquet files against the gzip NDJSON of its distinct rows. Loopback-free: files
only. `.venv/bin/python bench/compaction.py --binary target/release/klaviyo-source`
"""

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from query_lake import current_files  # noqa: E402
FIXTURE = ROOT / "tests/fixtures/expected/all_six_collections.ndjson"
COLLECTIONS = ["email_delivered", "email_opened", "email_link_clicked", "email_unsubscribed", "email_bounced",
               "email_marked_as_spam", "dropped_email", "received_sms", "clicked_sms", "order_completed",
               "page_viewed", "subscribed_to_list"]
ROWS_PER_OBJECT = 5_000


def land(lake: Path, distinct: int, copy: int, retimed: bool = False) -> int:
    """Lands copy number `copy` of every row (received `copy` minutes later when `retimed`);
    the bytes of the objects written."""
    templates = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    written = 0
    per_collection = distinct // len(COLLECTIONS)
    for c, collection in enumerate(COLLECTIONS):
        directory = lake / "klaviyo" / f"collection={collection}" / "dt=2024-01-04"
        directory.mkdir(parents=True, exist_ok=True)
        for start in range(0, per_collection, ROWS_PER_OBJECT):
            lines = []
            for i in range(start, min(start + ROWS_PER_OBJECT, per_collection)):
                row = dict(templates[i % len(templates)])
                row["id"] = f"klaviyo-{c:02d}{i:08d}"
                row["event"] = collection
                row["klaviyo_message"] = f"01HK{i % 977:06d}"
                if retimed and copy:
                    row["received_at"] = f"2024-01-04T19:{copy:02d}:30.000Z"
                lines.append(json.dumps(row, separators=(",", ":")))
            body = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6)
            (directory / f"copy{copy}-{start:08d}.gz").write_bytes(body)
            written += len(body)
    return written


# Runs the command in a child of its own, so the peak RSS is this run's alone.
MEASURE = """
import json, resource, subprocess, sys, time
started = time.monotonic()
out = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True).stdout
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"report": json.loads(out), "wall_s": time.monotonic() - started,
                  "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_kib": usage.ru_maxrss}))
"""


QUERY_COLUMNS = ["id", "timestamp", "campaign_name", "anonymous_id"]


def projected_bytes(files, columns) -> int:
    """Compressed bytes of `columns`' chunks in every row group of `files`."""
    import pyarrow.parquet as pq
    total = 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                if chunk.path_in_schema in columns:
                    total += chunk.total_compressed_size
    return total


def footer_bytes(path: Path) -> int:
    """The file's footer: its metadata length (the last 8 bytes say it) plus those 8."""
    with open(path, "rb") as file:
        file.seek(-8, 2)
        return int.from_bytes(file.read(4), "little") + 8


def compact(binary: str, lake: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", MEASURE, binary, "compact", "--lake", str(lake)],
                            capture_output=True, text=True, check=True)
    measured = json.loads(result.stdout)
    return {**measured["report"], "wall_s": round(measured["wall_s"], 2), "cpu_s": round(measured["cpu_s"], 2),
            "peak_rss_mib": round(measured["peak_rss_kib"] / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / "target/release/klaviyo-source"))
    parser.add_argument("--distinct", type=int, default=1_000_000)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--retimed", action="store_true", help="copies received later, not exact")
    args = parser.parse_args()
    lake = Path(tempfile.mkdtemp(prefix="compaction-bench-"))
    try:
        raw_bytes = land(lake, args.distinct, 0)
        first = compact(args.binary, lake)
        rows = first["rows_written"]
        print(json.dumps({"step": "new rows parsed and written", "rows": rows,
                          "rows_per_cpu_s": round(rows / first["cpu_s"]), **first}))
        for copy in range(1, args.copies):
            land(lake, args.distinct, copy, args.retimed)
        second = compact(args.binary, lake)
        dropped = second["duplicates_dropped"]
        kind = "retimed" if args.retimed else "exact"
        print(json.dumps({"step": f"{args.copies - 1} more {kind} copies of each row dropped", "rows": dropped,
                          "rows_per_cpu_s": round(dropped / second["cpu_s"]) if second["cpu_s"] else None,
                          **second}))
        # One new event per collection: each day's whole version is rewritten (what every
        # run that gains an id costs a day's partition), so this prices a rewritten row.
        templates = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
        for c, collection in enumerate(COLLECTIONS):
            row = {**templates[0], "id": f"klaviyo-late-{c:02d}", "event": collection}
            directory = lake / "klaviyo" / f"collection={collection}" / "dt=2024-01-04"
            (directory / "late.gz").write_bytes(gzip.compress((json.dumps(row) + "\n").encode()))
        third = compact(args.binary, lake)
        rewritten = third["rows_written"]
        print(json.dumps({"step": "one new id per day: every row of the day rewritten", "rows": rewritten,
                          "rows_per_cpu_s": round(rewritten / third["cpu_s"]) if third["cpu_s"] else None,
                          **third}))
        # The current versions only (a replaced one stays for its grace of an hour).
        files = [f for table in (lake / "_tables" / "klaviyo").iterdir() if table.is_dir()
                 for f in current_files(table)]
        parquet = sum(p.stat().st_size for p in files)
        print(json.dumps({"step": "sizes", "distinct_rows_gzip_ndjson_bytes": raw_bytes, "parquet_bytes": parquet,
                          "parquet_to_gzip_ndjson": round(parquet / raw_bytes, 3)}))
        # What a 4-column query reads of the tables (the column chunks Parquet's metadata
        # says it must fetch, footers aside) against what a query of the raw `_deduped`
        # view reads: every byte of every copy, at the pull's 29 copies per event.
        projected = projected_bytes(files, QUERY_COLUMNS)
        footers = sum(footer_bytes(f) for f in files)
        raw_at_29 = raw_bytes * 29
        print(json.dumps({"step": "bytes a 4-column query reads", "columns": QUERY_COLUMNS,
                          "table_column_chunk_bytes": projected, "table_footer_bytes": footers,
                          "raw_deduped_view_bytes_at_29_copies": raw_at_29,
                          "share": round((projected + footers) / raw_at_29, 5),
                          "count_star_reads": "footers only (row counts are in each row group's metadata)",
                          "count_star_bytes": footers}))
    finally:
        shutil.rmtree(lake, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
