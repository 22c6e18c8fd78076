"""The scheduled pull as deployed: the `pull` binary (what the PullFunction runs)
against the Events API double, delivering through the emulated Firehose stream into S3 and
keeping its state in an S3 object written with conditional writes (moto)."""

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


def run(emulator, double, **overrides):
    env = {**os.environ, **emulator.env(WRITE_KEY_SECRET_ARN="", KLAVIYO_API_KEY=double.API_KEY,
                                          KLAVIYO_API_BASE_URL=double.url,
                                          PULL_STATE_BUCKET=emulator.info["bucket"], **overrides)}
    return subprocess.run([str(pull_binary())], capture_output=True, text=True, env=env, timeout=300)


def stored_ids(emulator, tmp_path):
    lake = emulator.download("klaviyo/", tmp_path / f"download-{len(list(tmp_path.iterdir()))}")
    import gzip
    ids = []
    for path in lake.rglob("*"):
        if path.is_file() and "collection=" in str(path):
            ids.extend(json.loads(line)["id"] for line in gzip.decompress(path.read_bytes()).splitlines() if line)
    return ids


def test_the_scheduled_pull_delivers_through_firehose_and_keeps_its_state_in_s3(emulator, events_api, tmp_path):
    emulator.clear()
    seed(events_api, [event(f"s{i}", "OPn3d1", hours_ago(3) + dt.timedelta(seconds=i)) for i in range(30)])
    first = run(emulator, events_api)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert report["events"] == 30 and report["complete"] is True
    metrics = [json.loads(line) for line in first.stdout.splitlines() if '"_aws"' in line]
    assert metrics and metrics[0]["PullEventsStored"] == 30 and metrics[0]["PullKeyRefused"] == 0
    assert 0 <= metrics[0]["PullCursorLagSeconds"] < 600
    assert sorted(set(stored_ids(emulator, tmp_path))) == sorted(f"klaviyo-s{i}" for i in range(30))
    state = emulator.s3.get_object(Bucket=emulator.info["bucket"], Key=STATE_KEY)
    saved = json.loads(state["Body"].read())
    assert saved["lease"] is None and "OPn3d1" in saved["streams"]

    # Another run holding an unexpired lease: this one must not start.
    saved["lease"] = {"holder": "lambda-other", "expires_at": (dt.datetime.now(dt.timezone.utc)
                                                              + dt.timedelta(minutes=5)).isoformat()}
    emulator.s3.put_object(Bucket=emulator.info["bucket"], Key=STATE_KEY, Body=json.dumps(saved).encode())
    blocked = run(emulator, events_api)
    assert blocked.returncode == 1 and "holds the lease" in blocked.stderr


def test_a_refused_key_is_counted_for_the_alarm(emulator, events_api):
    emulator.clear()
    seed(events_api, [])
    events_api.post("/__control", {"forbidden": True})
    result = run(emulator, events_api)
    assert result.returncode == 1 and "HTTP 403" in result.stderr
    [line] = [json.loads(l) for l in result.stdout.splitlines() if '"_aws"' in l]
    assert line["PullKeyRefused"] == 1


def test_when_neither_firehose_nor_the_spill_can_store_the_cursor_stays(emulator, events_api, tmp_path):
    emulator.clear()
    first_event_at = hours_ago(2)
    seed(events_api, [event(f"f{i}", "OPn3d1", first_event_at + dt.timedelta(seconds=i)) for i in range(5)])
    emulator.control("/faults", {"fail_calls": 1000})
    failed = run(emulator, events_api, DEAD_LETTER_BUCKET="no-such-bucket-for-spills", DELIVERY_TIMEOUT_SECS="2")
    assert failed.returncode == 1 and "cursor stays before them" in failed.stderr, failed.stderr
    saved = json.loads(emulator.s3.get_object(Bucket=emulator.info["bucket"], Key=STATE_KEY)["Body"].read())
    opened = saved["streams"]["OPn3d1"]["realtime"]
    # Empty days before the events may be done; nothing at or after the first unstored event.
    assert dt.datetime.fromisoformat(opened["done"]) <= first_event_at
    assert all(dt.datetime.fromisoformat(w["resume_at"]) <= first_event_at and w["next_link"] is None
               for w in opened["open"])
    assert all(dt.datetime.fromisoformat(to) <= first_event_at for _, to in opened["completed"])
    emulator.control("/reset", {})
    recovered = run(emulator, events_api)
    assert recovered.returncode == 0, recovered.stderr
    assert sorted(set(stored_ids(emulator, tmp_path))) == sorted(f"klaviyo-f{i}" for i in range(5))


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
    assert emulator.keys("pull-state/") == ["pull-state/backfill.json"]

    # The same backfill from scratch: the same objects, replaced, none added.
    emulator.s3.delete_object(Bucket=bucket, Key="pull-state/backfill.json")
    again = cli(emulator, events_api, "backfill", "--bucket", bucket, *window)
    assert again.returncode == 0, again.stdout + again.stderr
    assert emulator.keys("klaviyo/collection=email_opened/") == keys
    assert len(stored_ids(emulator, tmp_path)) == 2_500

    report = cli(emulator, events_api, "reconcile", "--bucket", bucket, *window)
    assert report.returncode == 0, report.stderr
    opened = [line.split() for line in report.stdout.splitlines() if line.startswith("Opened Email")]
    assert len(opened) == 3 and sum(int(cols[-3]) for cols in opened) == 2_500
    assert all(cols[-3] == cols[-2] and cols[-1] == "0" for cols in opened), report.stdout
    assert "missing in total: 0" in report.stdout
