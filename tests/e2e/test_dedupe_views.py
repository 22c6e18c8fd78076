"""The stack's `<table>_deduped` views keep one row per id and let a dt filter prune
partitions: the view SQL is taken from template.yaml's named queries, transpiled from Athena
to DuckDB by sqlglot, and its plan read with EXPLAIN (DuckDB, like Trino, pushes a filter on a
window's PARTITION BY columns below the window; on a column outside it, it cannot)."""

import gzip
import json

import duckdb
import sqlglot
from cfnlint.decode import decode
from conftest import ROOT


def view_sql(resource: str) -> str:
    parsed, problems = decode(str(ROOT / "template.yaml"))
    assert not problems
    text = parsed["Resources"][resource]["Properties"]["QueryString"]["Fn::Sub"]
    return sqlglot.transpile(text.replace("${SchemaName}", "klaviyo"), read="athena", write="duckdb")[0]


def lake(tmp_path):
    for day in ["2024-01-04", "2024-01-05"]:
        directory = tmp_path / f"klaviyo/collection=email_opened/dt={day}"
        directory.mkdir(parents=True)
        # Every id delivered twice: first by a webhook whose profile lookup failed, a second
        # later by the pull with the identity resolved.
        rows = [{"id": f"{day}-{i}", "event": "email_opened", "received_at": f"{day}T00:00:0{copy}Z",
                 "context_klaviyo_identity_resolved": copy == 1}
                for i in range(3) for copy in range(2)]
        (directory / "part.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    con = duckdb.connect()
    con.sql("create schema klaviyo_raw")
    glob = tmp_path / "klaviyo/collection=*/dt=*/*.gz"
    con.sql(f"create view klaviyo_raw.email_opened as select * exclude (collection) "
            f"from read_json_auto('{glob}', hive_partitioning = true)")
    con.sql(f"create view klaviyo_raw.tracks as select * from read_json_auto('{glob}', hive_partitioning = true)")
    return con


def test_deduped_views_keep_one_row_per_id_and_prune_by_dt(tmp_path):
    con = lake(tmp_path)
    for resource, view in [("EmailOpenedDedupeViewQuery", "email_opened_deduped"),
                           ("TracksDedupeViewQuery", "tracks_deduped")]:
        con.sql(view_sql(resource))
        rows = con.sql(f"select id, received_at from klaviyo_raw.{view} order by id").fetchall()
        # The tables' rule: the resolved copy, though received later.
        assert len(rows) == 6 and all(received.second == 1 for _, received in rows), rows
        plan = con.sql(f"explain select * from klaviyo_raw.{view} where dt = '2024-01-04'").fetchall()[0][1]
        assert "Scanning Files: 1/2" in plan, plan


def test_a_view_partitioned_by_id_alone_would_scan_every_day(tmp_path):
    """The contrast that shows the check above can fail: the old view shape reads all files."""
    con = lake(tmp_path)
    con.sql("create view klaviyo_raw.by_id as select * from (select *, row_number() over "
            "(partition by id order by received_at) as row_rank from klaviyo_raw.email_opened) where row_rank = 1")
    plan = con.sql("explain select * from klaviyo_raw.by_id where dt = '2024-01-04'").fetchall()[0][1]
    assert "Scanning Files: 1/2" not in plan
