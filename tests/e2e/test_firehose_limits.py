"""Large requests reach S3 whole through the emulated stack, whose Firehose splits at most
500 JSON objects out of one record (AWS's cap) and sends the rest to the error prefix."""

import gzip
import json

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
