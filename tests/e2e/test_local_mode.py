"""End to end: the real binary in local mode, signed webhooks in, the lake read with DuckDB
using the SQL the README shows."""

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PREVIOUS_KEY, ROOT, WRITE_KEY, LocalEndpoint, ingest_binary
from query_lake import connect, connect_tables
from send_sample_webhook import http_date, post_webhook, sign

FIXTURES = ROOT / "tests/fixtures/webhooks"
ALL_SIX = (FIXTURES / "all_six_collections.json").read_bytes()
EXAMPLES = ROOT / "sql/examples"
SIX_SLUGS = ["email_bounced", "email_delivered", "email_link_clicked", "email_marked_as_spam",
             "email_opened", "email_unsubscribed"]


def lake_objects(lake: Path):
    return sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file())


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


def test_readme_shows_the_example_queries_verbatim():
    readme = (ROOT / "README.md").read_text()
    for query in EXAMPLES.glob("*.sql"):
        assert query.read_text().strip() in readme, f"{query.name} is not in the README"


def test_six_collections_land_once_each_and_a_replay_adds_no_id(endpoint):
    status, answer = post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)
    assert (status, answer) == (200, {"accepted": 6, "rejected": 0, "rejections": []})
    objects = lake_objects(endpoint.lake)
    assert [o.rsplit("/", 1)[0] for o in objects] == [
        f"klaviyo/collection={slug}/dt=2024-01-04" for slug in SIX_SLUGS]

    counts = connect(endpoint.lake).sql(example("events_per_collection.sql")).fetchall()
    assert counts == [(slug, 1, 1) for slug in SIX_SLUGS]
    delivered = connect(endpoint.lake).sql(example("email_delivered.sql"))
    rows = [dict(zip(delivered.columns, row)) for row in delivered.fetchall()]
    assert len(rows) == 1
    assert rows[0]["id"] == "klaviyo-4vHPBsUkFKs"
    assert rows[0]["event_text"] == "Email Delivered"
    assert rows[0]["email_subject"] == "Your January picks"
    assert rows[0]["anonymous_id"] == "01GDDKASAP8TKDDA2GRZDSVP4H"
    assert rows[0]["user_id"] is None

    time.sleep(1.1)  # a new Klaviyo-Timestamp, so the replay is a distinct, freshly signed request
    status, _ = post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)
    assert status == 200
    again = connect(endpoint.lake).sql(example("events_per_collection.sql")).fetchall()
    assert [(slug, ids) for slug, _, ids in again] == [(slug, 1) for slug in SIX_SLUGS]

    # The README's examples on the compacted tables give the same answers.
    subprocess.run([str(ingest_binary()), "compact", "--lake", str(endpoint.lake)], check=True,
                   capture_output=True, timeout=120)
    tables = connect_tables(endpoint.lake)
    assert tables.sql(example("events_per_collection.sql")).fetchall() == [(slug, 1, 1) for slug in SIX_SLUGS]
    delivered = tables.sql(example("email_delivered.sql"))
    compacted = [dict(zip(delivered.columns, row)) for row in delivered.fetchall()]
    assert [(r["id"], r["email_subject"], r["user_id"]) for r in compacted] == [
        ("klaviyo-4vHPBsUkFKs", "Your January picks", None)]


def test_the_previous_key_is_accepted_during_rotation(endpoint):
    status, answer = post_webhook(endpoint.webhook_url, (FIXTURES / "unicode.json").read_bytes(), PREVIOUS_KEY)
    assert status == 200, answer
    subject = connect(endpoint.lake).sql("select email_subject from email_opened").fetchall()
    assert subject == [("Ihre Bestellung ist unterwegs 🚚 — 注文",)]


def test_broken_events_are_kept_in_rejected_events(endpoint):
    status, answer = post_webhook(endpoint.webhook_url, (FIXTURES / "one_broken_event.json").read_bytes(), WRITE_KEY)
    assert (status, answer["accepted"], answer["rejected"]) == (200, 2, 2)
    rejected = connect(endpoint.lake).sql("select request_index, raw_event from rejected_events order by 1").fetchall()
    assert [index for index, _ in rejected] == [1, 2]
    assert json.loads(rejected[0][1])["payload"]["data"]["id"] == "brokenNoTopic"


def refusals():
    body = ALL_SIX
    now = time.time()
    stale = http_date(now - 3600)
    return [
        ("bad signature", dict(signature="0" * 64), 401, "invalid_signature"),
        ("missing signature", dict(signature=""), 401, "invalid_signature"),
        ("stale timestamp", dict(timestamp=stale, signature=sign(WRITE_KEY, body, stale)), 401, "stale_timestamp"),
        ("mismatched webhook id", dict(webhook_id="not-the-subscription"), 401, "webhook_id_mismatch"),
        ("wrong content type", dict(content_type="text/plain"), 415, "unsupported_media_type"),
    ]


@pytest.mark.parametrize("name,overrides,status,code", refusals(), ids=[r[0] for r in refusals()])
def test_refused_requests_write_nothing(endpoint, name, overrides, status, code):
    got, answer = post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY, **overrides)
    assert (got, answer["error"]) == (status, code), answer
    assert answer["message"]
    assert lake_objects(endpoint.lake) == []


def test_malformed_json_and_oversized_bodies_write_nothing(endpoint):
    malformed = b'{"data": [{"topic": '
    got, answer = post_webhook(endpoint.webhook_url, malformed, WRITE_KEY, webhook_id="x")
    assert (got, answer["error"]) == (400, "malformed_json")
    oversized = b'{"data": [], "meta": {"klaviyo_webhook_id": "x", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}}'
    got, answer = post_webhook(endpoint.webhook_url, oversized, WRITE_KEY, webhook_id="x")
    assert (got, answer["error"]) == (413, "payload_too_large")
    assert lake_objects(endpoint.lake) == []


def test_logs_carry_no_key_email_or_body(endpoint):
    body = (FIXTURES / "unicode.json").read_bytes()
    assert post_webhook(endpoint.webhook_url, body, WRITE_KEY)[0] == 200
    assert post_webhook(endpoint.webhook_url, body, WRITE_KEY, signature="0" * 64)[0] == 401
    logs = endpoint.logs()
    assert "request stored" in logs and "klaviyo_webhook" in logs
    assert "request refused" in logs and "invalid_signature" in logs
    for secret in [WRITE_KEY, PREVIOUS_KEY, "Bestellung", "example.com", "01GDDKASAP8TKDDA2GRZDSVP4H"]:
        assert secret not in logs
    assert "\x1b[" not in logs, "no ANSI colour codes when the logs are not a terminal"


def test_a_write_key_is_generated_and_printed_when_none_is_given(tmp_path):
    server = LocalEndpoint(tmp_path / "lake", env={"WRITE_KEY": "", "WRITE_KEY_PREVIOUS": ""})
    try:
        printed = "".join(server.printed)
        generated = printed.split("generated one for this run: ", 1)[1].split()[0]
        assert len(generated) == 64
        status, _ = post_webhook(server.webhook_url, ALL_SIX, generated)
        assert status == 200
    finally:
        server.stop()


def test_segment_batches_land_in_the_same_tables(endpoint):
    from conftest import SEGMENT_BATCH, SEGMENT_KEY, post_segment
    status, answer = post_segment(endpoint.base_url, "/v1/batch", SEGMENT_BATCH, SEGMENT_KEY)
    assert (status, answer["accepted"], answer["rejected"]) == (200, 2, 1), answer
    assert "identify" in answer["rejections"][0]["reason"]
    con = connect(endpoint.lake)
    assert con.sql("select id, user_id, email_subject, context_library_name from email_opened").fetchall() == [
        ("seg-e2e-1", "crm-10045", "Hello", "analytics-python")]
    assert con.sql("select id, anonymous_id, list_name from email_unsubscribed").fetchall() == [
        ("seg-e2e-2", "li.wei@example.com", "Newsletter")]
    assert con.sql("select source, request_index from rejected_events").fetchall() == [("segment_api", 2)]


def test_every_collection_is_queryable_whatever_its_name(endpoint):
    from conftest import SEGMENT_KEY, post_segment
    names = ["Group", "Order", "Select", "9 Lives", "Über Event", "😀" * 62]
    batch = {"batch": [{"type": "track", "event": name, "userId": "u", "messageId": f"name-{i}",
                        "originalTimestamp": "2024-01-04T18:04:00Z"} for i, name in enumerate(names)]}
    status, answer = post_segment(endpoint.base_url, "/v1/batch", batch, SEGMENT_KEY)
    assert (status, answer["accepted"]) == (200, len(names)), answer
    collections = sorted(p.name for p in (endpoint.lake / "klaviyo").iterdir())
    assert all(len(c.encode()) <= len("collection=") + 64 and c.isascii() for c in collections), collections
    con = connect(endpoint.lake)
    stored = con.sql("select event_text from tracks order by id").fetchall()
    assert [row[0] for row in stored] == names
    assert con.sql('select count(*) from "group"').fetchall() == [(1,)]
    assert con.sql('select count(*) from "9_lives"').fetchall() == [(1,)]


def test_the_readme_commands_run_the_command_line_binary():
    """`cargo run -p klaviyo-source -- ...` (the README's quick start and pull commands) runs the
    command line, with every subcommand the README names."""
    import subprocess
    readme = (ROOT / "README.md").read_text()
    assert "cargo run --release -p klaviyo-source -- serve" in readme and "cargo run --release -p klaviyo-source -- pull" in readme
    result = subprocess.run(["cargo", "run", "-q", "--locked", "-p", "klaviyo-source", "--", "--help"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for command in ["serve", "pull", "backfill", "compact", "reconcile", "redrive"]:
        assert f"\n  {command} " in result.stdout, result.stdout
