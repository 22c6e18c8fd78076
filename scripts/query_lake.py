#!/usr/bin/env python3
"""Query the local lake with SQL (DuckDB), using the table names of Segment's warehouse.

By default the compacted tables (`klaviyo-source compact`): one view per collection (for
example `email_delivered`) over the current version of each day's Parquet file, as the
partitions' manifests name them under <lake>/_tables/<schema>/; `tracks` over every
collection's common columns; `rejected_events` for events that could not be mapped. Each
event is there once. With --raw the same names read the raw landing under
<lake>/<schema>/collection=*/ instead (every copy of an event, as delivered).

    .venv/bin/python scripts/query_lake.py "select event, count(*) from tracks group by event"
    .venv/bin/python scripts/query_lake.py --json "select * from email_opened"
"""

import argparse
import json
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


def new_connection(schema: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if not SAFE_NAME.match(schema):
        raise ValueError(f"unsafe schema name {schema!r}")
    # Views live in a schema named like the warehouse schema, so Athena's qualified names
    # (klaviyo.email_opened) and bare names both resolve.
    con.execute(f"create schema {schema}")
    con.execute(f"set schema = '{schema}'")
    return con


def connect(lake: Path, schema: str = "klaviyo") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the raw landing as views (every copy)."""
    con = new_connection(schema)
    root = Path(lake) / schema
    collections = sorted(p.name.split("=", 1)[1] for p in root.glob("collection=*") if p.is_dir())
    for name in collections:
        if not COLLECTION.match(name):
            print(f"skipping collection={name}: not a slug this version writes", file=sys.stderr)
            continue
        con.execute(
            f"create view {quoted(name)} as select * from read_json_auto('{objects(root / f'collection={name}')}', "
            "format='newline_delimited', union_by_name=true, hive_partitioning=true, sample_size=-1)")
    add_tracks(con, collections)
    return con


def current_files(table: Path) -> list[Path]:
    """The current version's file of each day of a compacted table, as its manifest says."""
    files = []
    for manifest in sorted(table.glob("dt=*/manifest.json")):
        current = json.loads(manifest.read_text())
        if current["version"] > 0:
            files.append(manifest.parent / current["dir"] / "part.parquet")
    return files


def connect_tables(lake: Path, schema: str = "klaviyo") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the compacted tables as views (each event once)."""
    con = new_connection(schema)
    root = Path(lake) / "_tables" / schema
    collections = []
    for table in sorted(p for p in root.glob("*") if p.is_dir()):
        files = current_files(table)
        if not files or not COLLECTION.match(table.name):
            continue
        collections.append(table.name)
        listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        # Each day's file has a prefix of the table's columns: read them by name.
        con.execute(f"create view {quoted(table.name)} as select * exclude (v) from read_parquet([{listed}], "
                    "union_by_name=true, hive_partitioning=true)")
    add_tracks(con, collections)
    return con


def add_tracks(con: duckdb.DuckDBPyConnection, collections: list[str]) -> None:
    """`tracks`: the common columns of every collection but the rejected events."""
    tracked = [c for c in collections if c != REJECTED and COLLECTION.match(c)]
    if tracked:
        selects = []
        for c in tracked:
            # Only the columns each collection has: `union all by name` fills the rest with null.
            present = [row[0] for row in con.sql(f"describe {quoted(c)}").fetchall()]
            wanted = [name for name in present
                      if name in TRACKS_COLUMNS or name.startswith("context_") or name in ("collection", "dt")]
            collection = "'" + c + "' as collection, " if "collection" not in present else ""
            selects.append(f"select {collection}{', '.join(quoted(n) for n in wanted)} from {quoted(c)}")
        con.execute(f"create view tracks as {' union all by name '.join(selects)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sql", help="the query")
    parser.add_argument("--lake", type=Path, default=Path("lake"))
    parser.add_argument("--schema", default="klaviyo")
    parser.add_argument("--raw", action="store_true", help="query the raw landing (every copy) instead of the tables")
    parser.add_argument("--json", action="store_true", help="print the result as a JSON array of row objects")
    args = parser.parse_args()
    con = connect(args.lake, args.schema) if args.raw else connect_tables(args.lake, args.schema)
    result = con.sql(args.sql)
    if result is None:
        return 0
    if args.json:
        names = [column[0] for column in result.description]
        rows = [dict(zip(names, row)) for row in result.fetchall()]
        print(json.dumps(rows, default=str, ensure_ascii=False))
    else:
        result.show(max_rows=1000, max_width=200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
