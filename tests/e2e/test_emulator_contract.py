"""The emulator answers to AWS's documents: each behaviour of tests/emulator/README.md's
contract table, driven with plain boto3 calls (no project code involved)."""

import base64
import gzip
import json

import boto3
import pytest


@pytest.fixture
def stack(emulator):
    emulator.clear()
    yield emulator
    emulator.clear()


def firehose(stack):
    return boto3.client("firehose", endpoint_url=stack.info["endpoint"], region_name=stack.info["region"],
                        aws_access_key_id="test", aws_secret_access_key="test")


def row(i, day="2024-01-04", collection="email_opened"):
    return json.dumps({"id": f"r{i}", "event": collection, "timestamp": f"{day}T10:00:00.000Z"})


def put(stack, datas):
    return firehose(stack).put_record_batch(DeliveryStreamName=stack.info["stream"],
                                            Records=[{"Data": d.encode()} for d in datas])


def error_records(stack):
    found = []
    for key in stack.keys("firehose-errors/"):
        body = stack.s3.get_object(Bucket=stack.info["bucket"], Key=key)["Body"].read()
        found.extend((key, json.loads(line)) for line in gzip.decompress(body).decode().splitlines())
    return found


def lake_row_count(stack):
    count = 0
    for key in stack.keys("klaviyo/"):
        body = stack.s3.get_object(Bucket=stack.info["bucket"], Key=key)["Body"].read()
        count += len(gzip.decompress(body).decode().splitlines())
    return count


def test_deaggregation_splits_at_most_500_objects_and_errors_the_rest(stack):
    answer = put(stack, ["\n".join(row(i) for i in range(600))])
    assert answer["FailedPutCount"] == 0, "the call succeeds"
    assert lake_row_count(stack) == 500
    errors = error_records(stack)
    assert len(errors) == 100
    assert {e["errorCode"] for _, e in errors} == {"DynamicPartitioning.DeAggregationRecordCountLimitExceeded"}
    assert json.loads(base64.b64decode(errors[0][1]["rawData"]))["id"] == "r500"
    assert all(key.startswith("firehose-errors/klaviyo/partitioning-failed/dt=") for key, _ in errors)


def test_a_record_that_is_not_json_goes_to_the_error_prefix(stack):
    answer = put(stack, ["{not json", row(1)])
    assert answer["FailedPutCount"] == 0
    assert lake_row_count(stack) == 1
    assert [e["errorCode"] for _, e in error_records(stack)] == ["DynamicPartitioning.DeAggregationFailed"]


def test_a_row_whose_keys_cannot_be_extracted_goes_to_the_error_prefix(stack):
    answer = put(stack, [json.dumps({"id": "x", "event": "email_opened", "timestamp": 17}), row(2)])
    assert answer["FailedPutCount"] == 0
    assert lake_row_count(stack) == 1
    assert [e["errorCode"] for _, e in error_records(stack)] == ["DynamicPartitioning.MetadataExtractionFailed"]


def test_more_than_500_active_partitions_go_to_the_error_prefix(stack):
    days = [f"2023-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]  # 336 days
    rows = [row(i, days[i % len(days)], collection=f"c{i // len(days)}") for i in range(501)]
    answer = put(stack, ["\n".join(rows[:400]), "\n".join(rows[400:])])
    assert answer["FailedPutCount"] == 0
    # 500 objects: counted from the emulator and the listing, not read back one by one.
    assert stack.control("/stats")["rows_written"] == 500
    assert len(stack.keys("klaviyo/")) == 500
    errors = error_records(stack)
    assert len(errors) == 1 and "/activePartitionExceeded/" in errors[0][0]


def test_the_api_limits_refuse_the_whole_call(stack):
    client = firehose(stack)
    with pytest.raises(client.exceptions.InvalidArgumentException):
        put(stack, [row(i) for i in range(501)])
    with pytest.raises(client.exceptions.InvalidArgumentException):
        put(stack, ["x" * (1000 * 1024 + 1)])
