"""The scheduled pull as deployed: the `pull` binary (what the PullFunction runs)
against the Events API double, writing its raw objects straight into the lake's bucket (not
through the emulated Firehose stream) and keeping its state and id ledgers in S3 objects
written with conditional writes (moto)."""

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest
from test_pull import EMAIL_METRICS, PROFILES, event, hours_ago, seed

STATE_KEY = "pull-state/klaviyo-pull.json"


def pull_binary() -> Path:
    path = os.environ.get("PULL_BIN")
    if not path or not Path(path).is_file():
        pytest.fail("PULL_BIN must name the built pull binary (tests/run.sh sets it)")
    return Path(path)


def pull_env(emulator, double, **overrides) -> dict:
    """The scheduled pull's environment as template.yaml sets it: the lake's bucket for state
    and rows, and no Firehose settings (the pull does not need a delivery stream)."""
    return {**os.environ, **emulator.env(WRITE_KEY_SECRET_ARN="", KLAVIYO_API_KEY=double.API_KEY,
                                           KLAVIYO_API_BASE_URL=double.url,
                                           PULL_STATE_BUCKET=emulator.info["bucket"],
                                           DELIVERY_STREAM_NAME="", DEAD_LETTER_BUCKET="", **overrides)}


def run(emulator, double, **overrides):
    env = pull_env(emulator, double, **overrides)
    return subprocess.run([str(pull_binary())], capture_output=True, text=True, env=env, timeout=300)


def stored_ids(emulator, tmp_path):
    lake = emulator.download("klaviyo/", tmp_path / f"download-{len(list(tmp_path.iterdir()))}")
    import gzip
    ids = []
    for path in lake.rglob("*"):
        if path.is_file() and "collection=" in str(path):
            ids.extend(json.loads(line)["id"] for line in gzip.decompress(path.read_bytes()).splitlines() if line)
    return ids


def metric_lines(result):
    return [json.loads(line) for line in result.stdout.splitlines() if '"_aws"' in line]


def test_the_scheduled_pull_writes_straight_to_s3_and_keeps_its_state_and_ledgers_there(emulator, events_api, tmp_path):
    emulator.clear()
    seed(events_api, [event(f"s{i}", "OPn3d1", hours_ago(3) + dt.timedelta(seconds=i)) for i in range(30)])
    first = run(emulator, events_api)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert report["events"] == 30 and report["complete"] is True
    [metrics] = metric_lines(first)
    assert metrics["PullEventsStored"] == 30 and metrics["PullKeyRefused"] == 0 and metrics["PullLeaseHeld"] == 0
    assert 0 <= metrics["PullCursorLagSeconds"] < 600
    assert sorted(set(stored_ids(emulator, tmp_path))) == sorted(f"klaviyo-s{i}" for i in range(30))
    # Not one record through Firehose: the pull's bytes never meet the stream's quota.
    assert emulator.control("/stats")["records"] == 0
    state = emulator.s3.get_object(Bucket=emulator.info["bucket"], Key=STATE_KEY)
    saved = json.loads(state["Body"].read())
    assert saved["lease"] is None and "OPn3d1" in saved["streams"]
    ledgers = emulator.keys("pull-state/ids/OPn3d1/")
    assert ledgers and all(k.endswith(".ids") for k in ledgers)

    # A second run re-reads the recent hours (its late-event pass) and writes no object.
    objects = {k: emulator.s3.head_object(Bucket=emulator.info["bucket"], Key=k)["ETag"]
               for k in emulator.keys("klaviyo/")}
    saved["streams"]["OPn3d1"]["passes"] = {}
    emulator.s3.put_object(Bucket=emulator.info["bucket"], Key=STATE_KEY, Body=json.dumps(saved).encode())
    again = run(emulator, events_api)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["events"] == 0
    assert {k: emulator.s3.head_object(Bucket=emulator.info["bucket"], Key=k)["ETag"]
            for k in emulator.keys("klaviyo/")} == objects

    # Another run holding an unexpired lease: this one does nothing, and is no failure.
    saved = json.loads(emulator.s3.get_object(Bucket=emulator.info["bucket"], Key=STATE_KEY)["Body"].read())
    saved["lease"] = {"holder": "lambda-other", "expires_at": (dt.datetime.now(dt.timezone.utc)
                                                              + dt.timedelta(minutes=5)).isoformat()}
    emulator.s3.put_object(Bucket=emulator.info["bucket"], Key=STATE_KEY, Body=json.dumps(saved).encode())
    blocked = run(emulator, events_api)
    assert blocked.returncode == 3, blocked.stderr
    assert "holds the lease" in blocked.stdout + blocked.stderr
    [held] = metric_lines(blocked)
    assert held["PullLeaseHeld"] == 1 and held["PullEventsStored"] == 0


def test_a_state_write_whose_answer_was_lost_does_not_stop_the_run(emulator, events_api, tmp_path):
    """The first run's lease write commits, but its answer is lost: the SDK retries the
    conditional write, S3 refuses it (412: the object exists now), and the run reads the
    state back, finds exactly what it wrote, and goes on."""
    emulator.clear()
    seed(events_api, [event(f"lost{i}", "OPn3d1", hours_ago(2) + dt.timedelta(seconds=i)) for i in range(5)])
    emulator.control("/faults", {"lose_answer": {"call": f"s3:put {STATE_KEY}"}})
    result = run(emulator, events_api)
    assert emulator.control("/stats").get("lost_answer") == f"s3:put {STATE_KEY}", "the fault never fired"
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["events"] == 5
    assert sorted(set(stored_ids(emulator, tmp_path))) == sorted(f"klaviyo-lost{i}" for i in range(5))


def test_in_lambda_a_refused_key_is_one_error_not_a_failed_invocation(emulator, events_api):
    """Under the Lambda Runtime API: the invocation succeeds (no errors alarm every tick),
    the log says why once, and PullKeyRefused is 1 (its alarm is the one that fires)."""
    import sys
    import time
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambda_runtime"))
    from runtime_api import RuntimeApi
    emulator.clear()
    seed(events_api, [])
    events_api.post("/__control", {"forbidden": True})
    api = RuntimeApi({"source": "aws.scheduler"})
    env = {**pull_env(emulator, events_api),
           "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_FUNCTION_NAME": "pull",
           "AWS_LAMBDA_LOG_STREAM_NAME": "stand-in", "AWS_LAMBDA_LOG_GROUP_NAME": "stand-in",
           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}
    process = subprocess.Popen([str(pull_binary())], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while api.response is None and api.error is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    out, err = (text.decode(errors="replace") for text in process.communicate())
    api.shutdown()
    assert api.error is None and api.response is not None, err[-2000:]
    assert "HTTP 403" in json.loads(api.response)["error"]
    [line] = [json.loads(l) for l in out.splitlines() if '"_aws"' in l]
    assert line["PullKeyRefused"] == 1
    assert sum("refused the pull's key" in l for l in (out + err).splitlines()) == 1


def test_a_refused_key_is_counted_for_the_alarm(emulator, events_api):
    emulator.clear()
    seed(events_api, [])
    events_api.post("/__control", {"forbidden": True})
    result = run(emulator, events_api)
    assert result.returncode == 1 and "HTTP 403" in result.stderr
    [line] = [json.loads(l) for l in result.stdout.splitlines() if '"_aws"' in l]
    assert line["PullKeyRefused"] == 1


def cli(emulator, double, *args):
    from conftest import ingest_binary
    env = {**os.environ, **emulator.env(KLAVIYO_API_KEY=double.API_KEY, KLAVIYO_API_BASE_URL=double.url)}
    return subprocess.run([str(ingest_binary()), *args], capture_output=True, text=True, env=env, timeout=300)


def test_a_backfill_into_the_bucket_replaces_its_own_objects_and_reconciles_to_zero(emulator, events_api, tmp_path):
    emulator.clear()
    start = hours_ago(24 * 5).replace(hour=0, minute=0, second=0)
    seed(events_api, [event(f"h{i:04d}", "OPn3d1", start + dt.timedelta(seconds=60 * i)) for i in range(2_500)])
    bucket = emulator.info["bucket"]
    window = ["--from", start.isoformat(), "--to", (start + dt.timedelta(days=3)).isoformat()]
    first = cli(emulator, events_api, "backfill", "--bucket", bucket, *window)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"into s3://{bucket}/klaviyo/" in first.stdout
    keys = [k for k in emulator.keys("klaviyo/collection=email_opened/")]
    ids = stored_ids(emulator, tmp_path)
    assert len(ids) == len(set(ids)) == 2_500
    state_keys = emulator.keys("pull-state/")
    assert state_keys[0] == "pull-state/backfill.json"
    # One id ledger per day read, beside the scheduled pull's state (the two share them).
    assert state_keys[1:] == [f"pull-state/ids/OPn3d1/{(start + dt.timedelta(days=d)).date()}.ids" for d in range(2)]

    # The same backfill asked again: every event is in its day's ledger, nothing is written.
    etags = {k: emulator.s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in keys}
    again = cli(emulator, events_api, "backfill", "--bucket", bucket, *window)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 events stored (0 rejected, 0 skipped, 2500 already stored)" in again.stdout, again.stdout
    assert {k: emulator.s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in keys} == etags

    # From scratch (state and ledgers gone): the same objects, replaced, none added.
    emulator.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in state_keys]})
    scratch = cli(emulator, events_api, "backfill", "--bucket", bucket, *window)
    assert scratch.returncode == 0, scratch.stdout + scratch.stderr
    assert emulator.keys("klaviyo/collection=email_opened/") == keys
    assert len(stored_ids(emulator, tmp_path)) == 2_500

    report = cli(emulator, events_api, "reconcile", "--bucket", bucket, *window)
    assert report.returncode == 0, report.stderr
    opened = [line.split() for line in report.stdout.splitlines() if line.startswith("Opened Email")]
    assert len(opened) == 3 and sum(int(cols[-3]) for cols in opened) == 2_500
    assert all(cols[-3] == cols[-2] and cols[-1] == "0" for cols in opened), report.stdout
    assert "missing in total: 0" in report.stdout
