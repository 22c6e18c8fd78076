#!/usr/bin/env python3
"""Query the local lake with SQL (DuckDB), using the table names of Segment's warehouse.

Creates one view per collection found under <lake>/<schema>/collection=*/ (for example
`email_delivered`), `tracks` over every collection's common columns, and
`rejected_events` for events that could not be mapped. Then runs the query.

    .venv/bin/python scripts/query_lake.py "select event, count(*) from tracks group by event"
"""

import argparse
import re
import sys
from pathlib import Path

import duckdb

TRACKS_COLUMNS = ["id", "anonymous_id", "user_id", "event", "event_text", "timestamp",
                  "original_timestamp", "sent_at", "received_at", "uuid_ts"]
REJECTED = "rejected_events"
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Collection slugs are ASCII letters, digits and _ (shared/core/src/collection.rs); they may start
# with a digit or be an SQL keyword (`group`, `order`), so every name is quoted.
COLLECTION = re.compile(r"^[a-z0-9_]+$")


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def objects(path: Path) -> str:
    return str(path / "dt=*" / "*.gz")


def connect(lake: Path, schema: str = "klaviyo") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake's tables as views."""
    con = duckdb.connect()
    if not SAFE_NAME.match(schema):
        raise ValueError(f"unsafe schema name {schema!r}")
    # Views live in a schema named like the warehouse schema, so Athena's qualified names
    # (klaviyo.email_opened) and bare names both resolve.
    con.execute(f"create schema {schema}")
    con.execute(f"set schema = '{schema}'")
    root = Path(lake) / schema
    collections = sorted(p.name.split("=", 1)[1] for p in root.glob("collection=*") if p.is_dir())
    for name in collections:
        if not COLLECTION.match(name):
            print(f"skipping collection={name}: not a slug this version writes", file=sys.stderr)
            continue
        con.execute(
            f"create view {quoted(name)} as select * from read_json_auto('{objects(root / f'collection={name}')}', "
            "format='newline_delimited', union_by_name=true, hive_partitioning=true, sample_size=-1)")
    tracked = [c for c in collections if c != REJECTED and COLLECTION.match(c)]
    if tracked:
        selects = []
        for c in tracked:
            # Only the columns each collection has: `union all by name` fills the rest with null.
            present = [row[0] for row in con.sql(f"describe {quoted(c)}").fetchall()]
            wanted = [name for name in present
                      if name in TRACKS_COLUMNS or name.startswith("context_") or name in ("collection", "dt")]
            selects.append(f"select {', '.join(quoted(n) for n in wanted)} from {quoted(c)}")
        con.execute(f"create view tracks as {' union all by name '.join(selects)}")
    return con


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sql", help="the query")
    parser.add_argument("--lake", type=Path, default=Path("lake"))
    parser.add_argument("--schema", default="klaviyo")
    args = parser.parse_args()
    result = connect(args.lake, args.schema).sql(args.sql)
    if result is not None:
        result.show(max_rows=1000, max_width=200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
