"""End to end through the emulated AWS stack: the real binary with real SDK clients, write
keys from Secrets Manager, Firehose extended per template.yaml, objects read back from S3
and queried with the README's Athena SQL (transpiled to DuckDB by sqlglot)."""

import gzip
import json
import subprocess

import pytest
import sqlglot
from conftest import ROOT, WRITE_KEY, LocalEndpoint, ingest_binary, webhook_body
from query_lake import connect, connect_tables
from send_sample_webhook import post_webhook

SIX_SLUGS = ["email_bounced", "email_delivered", "email_link_clicked", "email_marked_as_spam",
             "email_opened", "email_unsubscribed"]
ATHENA_EXAMPLES = ROOT / "sql/athena"


@pytest.fixture
def stack(emulator):
    emulator.clear()
    yield emulator
    emulator.clear()


def start(stack, **env):
    return LocalEndpoint(None, env=stack.env(**env))


def lake_rows(stack, tmp_path):
    lake = stack.download("klaviyo/", tmp_path / "s3")
    rows = []
    for path in sorted(lake.rglob("*.gz")):
        rows.extend(json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines())
    return lake, rows


def dead_letter_rows(stack):
    rows = []
    for key in stack.keys("dead-letter/"):
        body = stack.s3.get_object(Bucket=stack.info["bucket"], Key=key)["Body"].read()
        rows.extend(json.loads(line) for line in gzip.decompress(body).decode().splitlines())
    return rows


def metric_lines(endpoint):
    """The per-request EMF documents (not the per-collection ones)."""
    endpoint.stop()
    documents = [json.loads(line) for line in endpoint.process.stdout.read().splitlines() if line.startswith("{")]
    return [d for d in documents if "EventsAccepted" in d]


def test_by_default_every_metric_is_one_without_dimensions(stack):
    """The basic set: no per-route or per-collection metrics (each dimension set is a
    custom metric billed monthly), and every alarm's metric there."""
    endpoint = start(stack)
    assert post_webhook(endpoint.webhook_url, webhook_body(12, "e2eBasic"), WRITE_KEY)[0] == 200
    from send_sample_webhook import post
    assert post(endpoint.base_url + "/nowhere", b"{}", {"Content-Type": "application/json"})[0] == 404
    endpoint.stop()
    documents = [json.loads(line) for line in endpoint.process.stdout.read().splitlines() if line.startswith("{")]
    assert documents and not [d for d in documents if "RowsStored" in d]
    for document in documents:
        assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]], document
    names = {m["Name"] for d in documents for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"EventsAccepted", "RowsSpilled", "RequestsRefused"} <= names


def test_rows_are_counted_per_collection_for_the_dashboard(stack):
    endpoint = start(stack, DETAILED_METRICS="true")
    status, _ = post_webhook(endpoint.webhook_url, webhook_body(12, "e2eDash"), WRITE_KEY)
    assert status == 200
    endpoint.stop()
    documents = [json.loads(line) for line in endpoint.process.stdout.read().splitlines() if line.startswith("{")]
    per_collection = {d["Collection"]: d["RowsStored"] for d in documents if "RowsStored" in d}
    assert per_collection == {slug: 2 for slug in SIX_SLUGS}
    stored = next(d for d in documents if "EventsAccepted" in d)
    assert stored["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Route"], []]


def athena(sql: str) -> str:
    return sqlglot.transpile(sql, read="athena", write="duckdb")[0]


def test_the_querying_guide_shows_the_athena_examples_verbatim():
    guide = (ROOT / "docs/querying.md").read_text()
    queries = list(ATHENA_EXAMPLES.glob("*.sql"))
    assert len(queries) == 3
    for query in queries:
        assert query.read_text().strip() in guide, f"{query.name} is not in docs/querying.md"


def test_signed_webhooks_land_in_s3_partitions_and_answer_the_athena_examples(stack, tmp_path):
    endpoint = start(stack)
    status, answer = post_webhook(endpoint.webhook_url, webhook_body(60, "e2eSix"), WRITE_KEY)
    assert (status, answer["accepted"]) == (200, 60), answer
    prefixes = sorted({key.rsplit("/", 1)[0] for key in stack.keys("klaviyo/")})
    assert prefixes == [f"klaviyo/collection={slug}/dt=2024-01-04" for slug in SIX_SLUGS]
    assert all(key.endswith(".gz") for key in stack.keys("klaviyo/"))
    stats = stack.control("/stats")
    assert stats["calls"] == 1 and stats["records"] == 1, f"60 rows should pack into one record: {stats}"

    lake, rows = lake_rows(stack, tmp_path)
    assert len(rows) == 60 and len({r["id"] for r in rows}) == 60
    # A second delivery of every object (a Firehose retry): the tables still hold each once.
    for key in stack.keys("klaviyo/"):
        stack.s3.copy_object(Bucket=stack.info["bucket"], Key=key.replace(".gz", "-retry.gz"),
                             CopySource={"Bucket": stack.info["bucket"], "Key": key})
    compacted = subprocess.run([str(ingest_binary()), "compact", "--bucket", stack.info["bucket"]],
                               capture_output=True, text=True, env={**stack.env(), "PATH": "/usr/bin:/bin"},
                               timeout=120)
    assert compacted.returncode == 0, compacted.stderr
    con = connect_tables(stack.download("_tables/", tmp_path / "tables"))
    per_collection = con.sql(athena((ATHENA_EXAMPLES / "events_per_collection.sql").read_text())).fetchall()
    assert per_collection == [(slug, 10, 10) for slug in SIX_SLUGS]
    opens = con.sql(athena((ATHENA_EXAMPLES / "opens_per_campaign.sql").read_text())).fetchall()
    assert opens == [("January Newsletter", 10, 1)]
    daily = con.sql(athena((ATHENA_EXAMPLES / "daily_deliveries.sql").read_text())).fetchall()
    assert [(str(day), n) for day, n in daily] == [("2024-01-04", 10)]
    # The raw landing (every copy) gives the same answers only through a dedupe.
    raw = connect(stack.download("klaviyo/", tmp_path / "raw"))
    assert raw.execute("select count(*), count(distinct id) from tracks").fetchone() == (120, 60)

    metrics = metric_lines(endpoint)
    assert metrics[-1]["EventsAccepted"] == 60 and metrics[-1]["RowsSpilled"] == 0


def test_only_failed_records_are_resent_and_nothing_is_duplicated(stack, tmp_path):
    endpoint = start(stack, PACK_RECORDS="false")
    stack.control("/faults", {"record_failure_rate": 0.4, "fail_records_for_calls": 2, "seed": 11})
    status, answer = post_webhook(endpoint.webhook_url, webhook_body(300, "e2ePartial"), WRITE_KEY)
    assert (status, answer["accepted"]) == (200, 300), answer
    stats = stack.control("/stats")
    assert stats["failed_records"] > 0, stats
    # Every call after the first carried only the records that had failed before it.
    assert stats["records"] == 300 + stats["failed_records"], stats
    _, rows = lake_rows(stack, tmp_path)
    assert len(rows) == 300, "no row lost or written twice"
    assert len({r["id"] for r in rows}) == 300
    metrics = metric_lines(endpoint)
    assert metrics[-1]["RecordsResent"] == stats["failed_records"]
    assert metrics[-1]["RowsSpilled"] == 0


def test_throttled_calls_are_retried_by_the_sdk(stack, tmp_path):
    endpoint = start(stack)
    stack.control("/faults", {"throttle_calls": 2})
    status, answer = post_webhook(endpoint.webhook_url, webhook_body(12, "e2eThrottle"), WRITE_KEY)
    assert status == 200, answer
    assert stack.control("/stats")["throttled_calls"] == 2
    _, rows = lake_rows(stack, tmp_path)
    assert len(rows) == 12
    endpoint.stop()


def test_exhausted_retries_spill_to_dead_letter_and_redrive_delivers_them(stack, tmp_path):
    endpoint = start(stack, PACK_RECORDS="false", DELIVERY_TIMEOUT_SECS="5")
    stack.control("/faults", {"record_failure_rate": 1.0, "fail_records_for_calls": -1})
    status, answer = post_webhook(endpoint.webhook_url, webhook_body(30, "e2eSpill"), WRITE_KEY)
    assert (status, answer["accepted"]) == (200, 30), answer
    assert stack.keys("klaviyo/") == []
    spilled = dead_letter_rows(stack)
    assert sorted(r["id"] for r in spilled) == sorted(f"klaviyo-e2eSpill{i:06d}" for i in range(30))
    assert all(key.startswith("dead-letter/klaviyo/dt=") for key in stack.keys("dead-letter/"))
    assert metric_lines(endpoint)[-1]["RowsSpilled"] == 30

    stack.control("/reset", {})
    redrive = subprocess.run([str(ingest_binary()), "redrive"], env=stack.env(), capture_output=True,
                             text=True, timeout=60)
    assert redrive.returncode == 0, redrive.stderr
    assert "re-delivered and deleted: 1 (30 rows)" in redrive.stdout, redrive.stdout
    assert stack.keys("dead-letter/") == []
    _, rows = lake_rows(stack, tmp_path)
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in spilled)


def test_a_failing_dead_letter_store_answers_503(stack):
    endpoint = start(stack, DEAD_LETTER_BUCKET="no-such-bucket", DELIVERY_TIMEOUT_SECS="2")
    stack.control("/faults", {"fail_calls": 100})
    status, answer = post_webhook(endpoint.webhook_url, webhook_body(3, "e2eDown"), WRITE_KEY)
    assert (status, answer["error"]) == (503, "storage_unavailable"), answer
    assert "no-such-bucket" not in answer["message"]
    endpoint.stop()


def test_large_requests_stay_within_the_api_limits(stack, tmp_path):
    endpoint = start(stack, PACK_RECORDS="false")
    status, answer = post_webhook(endpoint.webhook_url, webhook_body(1800, "e2eLimits"), WRITE_KEY)
    assert (status, answer["accepted"]) == (200, 1800), answer
    stats = stack.control("/stats")
    assert stats["calls"] == 4 and stats["records"] == 1800, stats
    _, rows = lake_rows(stack, tmp_path)
    assert len({r["id"] for r in rows}) == 1800
    endpoint.stop()


def test_write_keys_come_from_secrets_manager(stack):
    endpoint = start(stack)
    body = webhook_body(1, "e2eSecret")
    assert post_webhook(endpoint.webhook_url, body, WRITE_KEY)[0] == 200
    assert post_webhook(endpoint.webhook_url, body, "not-the-secret-key-000")[0] == 401
    assert "generated one" not in "".join(endpoint.printed)
    endpoint.stop()


def test_segment_batches_reach_s3_through_firehose(stack, tmp_path):
    from conftest import SEGMENT_BATCH, SEGMENT_KEY, post_segment
    endpoint = start(stack)
    status, answer = post_segment(endpoint.base_url, "/v1/batch", SEGMENT_BATCH, SEGMENT_KEY)
    assert (status, answer["accepted"]) == (200, 2), answer
    prefixes = sorted({key.rsplit("/", 1)[0] for key in stack.keys("klaviyo/")})
    received = __import__("datetime").datetime.now(__import__("datetime").timezone.utc).date().isoformat()
    # The identify event is rejected and dated by receipt.
    assert prefixes == ["klaviyo/collection=email_opened/dt=2024-01-04",
                        "klaviyo/collection=email_unsubscribed/dt=2024-01-04",
                        f"klaviyo/collection=rejected_events/dt={received}"]
    _, rows = lake_rows(stack, tmp_path)
    assert sorted(r["id"] for r in rows if r["event"] != "rejected_events") == ["seg-e2e-1", "seg-e2e-2"]
    endpoint.stop()


def test_every_refusal_gets_a_metric_line_404_and_405_included(stack):
    from send_sample_webhook import post
    endpoint = start(stack, DETAILED_METRICS="true")
    assert post(endpoint.base_url + "/nowhere", b"{}", {"Content-Type": "application/json"})[0] == 404
    assert post(endpoint.base_url + "/v1/identify", b"{}", {"Content-Type": "application/json"})[0] == 400
    assert post(endpoint.base_url + "/health", b"{}", {"Content-Type": "application/json"})[0] == 405
    endpoint.stop()
    documents = [json.loads(line) for line in endpoint.process.stdout.read().splitlines() if line.startswith("{")]
    refused = sorted((d["Route"], d["Reason"]) for d in documents if "RequestsRefused" in d)
    assert refused == [("health", "method_not_allowed"), ("segment_other", "unsupported_type"),
                       ("unmatched", "not_found")]
