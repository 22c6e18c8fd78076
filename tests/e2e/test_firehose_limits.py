"""Large requests reach S3 whole through the emulated stack, whose Firehose splits at most
500 JSON objects out of one record (AWS's cap) and sends the rest to the error prefix."""

import gzip
import tempfile
import json
from pathlib import Path

import pytest
from conftest import SEGMENT_KEY, WRITE_KEY, LocalEndpoint, post_segment, webhook_body
from send_sample_webhook import post_webhook


@pytest.fixture
def stack(emulator):
    emulator.clear()
    yield emulator
    emulator.clear()


def stored_ids(stack):
    ids = []
    for key in stack.keys("klaviyo/"):
        body = stack.s3.get_object(Bucket=stack.info["bucket"], Key=key)["Body"].read()
        ids.extend(json.loads(line)["id"] for line in gzip.decompress(body).decode().splitlines())
    return ids


def test_a_1000_event_webhook_reaches_s3_in_full(stack):
    endpoint = LocalEndpoint(None, env=stack.env())
    status, answer = post_webhook(endpoint.webhook_url, webhook_body(1000, "e2eCap"), WRITE_KEY)
    endpoint.stop()
    assert (status, answer["accepted"]) == (200, 1000), answer
    stats = stack.control("/stats")
    assert stats["error_records"] == 0, stats
    assert stats["max_objects_per_record"] == 500, stats
    assert stack.keys("firehose-errors/") == []
    ids = stored_ids(stack)
    assert sorted(ids) == sorted(f"klaviyo-e2eCap{i:06d}" for i in range(1000))


def test_a_2500_event_segment_batch_reaches_s3_in_full(stack):
    batch = {"batch": [{"type": "track", "event": "Email Opened", "userId": f"u{i}", "messageId": f"cap-{i}",
                        "originalTimestamp": "2024-01-04T18:04:00Z"} for i in range(2500)]}
    endpoint = LocalEndpoint(None, env=stack.env())
    status, answer = post_segment(endpoint.base_url, "/v1/batch", batch, SEGMENT_KEY)
    endpoint.stop()
    assert (status, answer["accepted"]) == (200, 2500), answer
    stats = stack.control("/stats")
    assert stats["error_records"] == 0, stats
    assert stats["max_objects_per_record"] == 500, stats
    assert stats["records"] == 5, "2,500 small rows pack into five records of 500"
    assert len(set(stored_ids(stack))) == 2500


def test_a_burst_above_the_direct_put_quota_is_throttled_resent_spilled_and_still_reaches_the_tables(stack):
    """Firehose's Direct PUT quota (1 MiB/s in most Regions; the emulator's lowered to 400 KiB/s
    so a small burst passes it): calls above it are throttled, the endpoint resends and spills
    what it cannot deliver in time, every caller gets 200, and the compaction takes the
    landing and the spilled rows into the tables: every event once, no person involved."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from conftest import ingest_binary
    from query_lake import connect_tables

    stack.control("/faults", {"bytes_per_second": 400 * 1024})
    endpoint = LocalEndpoint(None, env=stack.env(DELIVERY_TIMEOUT_SECS="3"))
    bodies = [webhook_body(200, f"burst{n:02d}-") for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda body: post_webhook(endpoint.webhook_url, body, WRITE_KEY), bodies))
    endpoint.stop()
    assert all(status == 200 and answer["accepted"] == 200 for status, answer in answers), answers
    stats = stack.control("/stats")
    assert stats["throughput_throttled_calls"] > 0, stats
    # Some calls got through within the quota; the rest were throttled past the delivery
    # deadline and spilled.
    assert stats["calls"] > 0 and stats["rows_written"] < 8 * 200, stats
    assert stack.keys("dead-letter/"), "the rows Firehose would not take in time were spilled"
    result = subprocess.run([str(ingest_binary()), "compact", "--bucket", stack.info["bucket"]],
                            capture_output=True, text=True, env={**stack.env(), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr
    con = connect_tables(stack.download("_tables/", Path(tempfile.mkdtemp())))
    expected = 8 * 200
    assert con.execute("select count(*), count(distinct id) from tracks").fetchone() == (expected, expected)
    assert stack.keys("dead-letter/") == [], "spilled objects go once the tables hold their rows"


def dated_batch(prefix: str, days: int, start=None):
    """A Segment batch of one event per day over `days` days (each its own partition)."""
    import datetime
    start = start or datetime.date(2023, 1, 1)
    return {"batch": [{"type": "track", "event": "Order Completed", "userId": f"crm-{i}",
                       "messageId": f"{prefix}-{i:04d}",
                       "timestamp": f"{start + datetime.timedelta(days=i)}T12:00:00Z"} for i in range(days)]}


def test_segment_callers_cannot_open_firehose_partitions_without_bound_but_history_gets_in(stack):
    """A Segment write key travels in client code and every event name and timestamp opens a
    Firehose partition; past 500 active partitions Firehose sends the rest to its error prefix
    (the emulator's limit). A track or batch request may open at most 100 partitions (400
    beyond), Segment requests at most 400 a minute (429 beyond, with Retry-After); Klaviyo's
    webhooks are not held back; a /v1/import of 520 days of history is accepted and every
    event reaches the tables (the part past Firehose's 500 through the error records)."""
    import datetime
    import subprocess

    from conftest import ingest_binary
    from query_lake import connect_tables

    endpoint = LocalEndpoint(None, env=stack.env())
    status, answer = post_segment(endpoint.base_url, "/v1/batch", dated_batch("wide", 150), SEGMENT_KEY)
    assert (status, answer["code"]) == (400, "too_many_partitions"), answer
    assert "150" in answer["message"]
    assert stack.keys("klaviyo/") == [], "a refused request stores nothing"
    for n in range(4):
        status, answer = post_segment(endpoint.base_url, "/v1/batch",
                                      dated_batch(f"minute{n}", 100, start=datetime.date(2020 + n, 1, 1)),
                                      SEGMENT_KEY)
        assert status == 200, (n, answer)
    status, answer = post_segment(endpoint.base_url, "/v1/batch", dated_batch("fifth", 10, start=datetime.date(2025, 1, 1)),
                                  SEGMENT_KEY)
    assert (status, answer["code"]) == (429, "partition_rate_limited"), answer
    # Klaviyo's own events still land as rows, not in the error prefix.
    assert post_webhook(endpoint.webhook_url, webhook_body(6, "klaviyoDuring"), WRITE_KEY)[0] == 200
    assert stack.keys("firehose-errors/") == []
    status, answer = post_segment(endpoint.base_url, "/v1/import", dated_batch("history", 520), SEGMENT_KEY)
    endpoint.stop()
    assert (status, answer["accepted"]) == (200, 520), answer
    assert stack.keys("firehose-errors/"), "past Firehose's 500 partitions, the rest went to the error prefix"
    result = subprocess.run([str(ingest_binary()), "compact", "--bucket", stack.info["bucket"]],
                            capture_output=True, text=True, env={**stack.env(), "PATH": "/usr/bin:/bin"}, timeout=600)
    assert result.returncode == 0, result.stderr
    con = connect_tables(stack.download("_tables/", Path(tempfile.mkdtemp())))
    assert con.execute("select count(*), count(distinct id) from order_completed where id like 'history-%'"
                       ).fetchone() == (520, 520)
