"""The pull from Klaviyo's Events API, end to end: the real `klaviyo-source pull` against the
Events API double (tests/doubles/klaviyo_events_api.py), writing the local lake, read back
with DuckDB through the README's SQL. The interleavings of the run itself (overlapping runs,
expired cursors, dense windows split, a failing store, a stopped run resumed) are tested in
process in `tests/it/pull_run.rs`; these keep what needs the binary and the HTTP double."""

import datetime as dt
import gzip
import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, WRITE_KEY, KlaviyoApiDouble, LocalEndpoint, ingest_binary
from query_lake import connect, connect_tables
from send_sample_webhook import post_webhook

EMAIL_METRICS = [
    {"id": "WKHXf4", "name": "Received Email"},
    {"id": "OPn3d1", "name": "Opened Email"},
    {"id": "SxR9Bt", "name": "Clicked Email"},
    {"id": "VFFb4u", "name": "Clicked Email", "integration_key": "api"},
    {"id": "Xi7Kwh", "name": "Bounced Email"},
    {"id": "THfYvj", "name": "Marked Email as Spam"},
    {"id": "VvFRZN", "name": "Unsubscribed"},
    {"id": "SmS001", "name": "Received Text Message"},
]
PROFILES = [
    {"id": "01GDDKASAP8TKDDA2GRZDSVP4H", "email": "sarah.mason@klaviyo-demo.com", "external_id": "crm-10045"},
    {"id": "01HB7Q9M4X3K2N8W5V6T1R0Y9Z", "email": "li.wei@example.com", "external_id": None},
]


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def hours_ago(hours: float) -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return now - dt.timedelta(hours=hours)


def pull(double, lake: Path, *args, check=True, timeout=300):
    env = {**os.environ, "KLAVIYO_API_KEY": double.API_KEY, "KLAVIYO_API_BASE_URL": double.url}
    result = subprocess.run([str(ingest_binary()), "pull", "--lake", str(lake), *args],
                            capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def start_pull(double, lake: Path, *args):
    env = {**os.environ, "KLAVIYO_API_KEY": double.API_KEY, "KLAVIYO_API_BASE_URL": double.url}
    return subprocess.Popen([str(ingest_binary()), "pull", "--lake", str(lake), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def rows(lake: Path, collection: str = "*"):
    found = []
    for path in sorted((lake / "klaviyo").glob(f"collection={collection}/dt=*/*.gz")):
        found.extend(json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines())
    return found


def state(lake: Path) -> dict:
    return json.loads((lake / "_state/klaviyo-pull.json").read_text())["state"]


def seed(double, events):
    double.post("/__metrics", {"metrics": EMAIL_METRICS})
    double.post("/__profiles", {"profiles": PROFILES})
    double.post("/__events", {"events": events})


def event(ident, metric_id, at, profile="01GDDKASAP8TKDDA2GRZDSVP4H", **properties):
    return {"id": ident, "metric_id": metric_id, "profile_id": profile, "datetime": iso(at),
            "properties": {"Subject": "Hello", "$message": "01MSG", **properties}}


def test_pull_fills_the_lake_with_the_webhook_collections_and_identity(events_api, tmp_path):
    base = hours_ago(5).replace(minute=0, second=0)
    events = [
        event("evt-delivered", "WKHXf4", base + dt.timedelta(minutes=1)),
        event("evt-opened", "OPn3d1", base + dt.timedelta(minutes=2), profile=PROFILES[1]["id"]),
        event("evt-clicked", "SxR9Bt", base + dt.timedelta(hours=1, minutes=3), URL="https://example.com/x"),
        event("evt-custom-click", "VFFb4u", base + dt.timedelta(minutes=4)),
        event("evt-bounced", "Xi7Kwh", base + dt.timedelta(hours=2, minutes=5)),
        event("evt-spam", "THfYvj", base + dt.timedelta(minutes=6)),
        event("evt-unsub", "VvFRZN", base + dt.timedelta(minutes=7)),
        event("evt-no-profile", "OPn3d1", base + dt.timedelta(minutes=8), profile=None),
        event("evt-sms", "SmS001", base + dt.timedelta(minutes=9)),
        event("evt-outside", "OPn3d1", base + dt.timedelta(hours=4)),
    ]
    seed(events_api, events)
    lake = tmp_path / "lake"
    result = pull(events_api, lake, "--from", iso(base), "--to", iso(base + dt.timedelta(hours=3)))
    assert "6 events stored (1 rejected, 0 skipped, 0 already stored)" in result.stdout, result.stdout

    stored = {row["id"]: row for row in rows(lake) if row.get("event") != "rejected"}
    assert set(stored) == {"klaviyo-evt-delivered", "klaviyo-evt-opened", "klaviyo-evt-clicked",
                           "klaviyo-evt-bounced", "klaviyo-evt-spam", "klaviyo-evt-unsub"} | \
        {r["id"] for r in rows(lake, "rejected_events")}
    collections = {row["id"]: path.parent.parent.name for path in (lake / "klaviyo").glob("collection=*/dt=*/*.gz")
                   for row in map(json.loads, gzip.decompress(path.read_bytes()).splitlines())}
    assert collections["klaviyo-evt-delivered"] == "collection=email_delivered"
    assert collections["klaviyo-evt-clicked"] == "collection=email_link_clicked"
    assert collections["klaviyo-evt-unsub"] == "collection=email_unsubscribed"
    assert collections["klaviyo-evt-spam"] == "collection=email_marked_as_spam"
    sarah = stored["klaviyo-evt-delivered"]
    assert sarah["user_id"] == "crm-10045" and sarah["anonymous_id"] is None
    assert sarah["context_traits_email"] == "sarah.mason@klaviyo-demo.com"
    assert sarah["context_klaviyo_source"] == "pull"
    assert sarah["context_integration_version"] == "2026-01-15"
    assert sarah["context_klaviyo_identity_resolved"] is True
    li = stored["klaviyo-evt-opened"]
    assert li["user_id"] is None and li["anonymous_id"] == "li.wei@example.com"
    assert stored["klaviyo-evt-clicked"]["link_url"] == "https://example.com/x"
    rejected = rows(lake, "rejected_events")
    assert len(rejected) == 1 and "profile" in rejected[0]["reason"] and rejected[0]["source"] == "klaviyo_pull"

    # The README's SQL runs on what the pull wrote.
    con = connect(lake)
    for query in sorted((ROOT / "sql/examples").glob("*.sql")):
        assert con.sql(query.read_text()).fetchall(), query.name
    assert con.sql("select count(*) from email_delivered").fetchall()[0][0] == 1

    # Reconcile: Klaviyo's count per metric and day against the distinct ids stored.
    env = {**os.environ, "KLAVIYO_API_KEY": events_api.API_KEY, "KLAVIYO_API_BASE_URL": events_api.url}
    report = subprocess.run([str(ingest_binary()), "reconcile", "--lake", str(lake), "--from", iso(base),
                             "--to", iso(base + dt.timedelta(hours=3))], capture_output=True, text=True, env=env)
    assert report.returncode == 0, report.stderr
    lines = {" ".join(line.split()[:-4]): line.split()[-3:] for line in report.stdout.splitlines()[1:-1]}
    # The profile-less opened event is in Klaviyo's count, and in rejected_events, not the table.
    assert lines["Opened Email"] == ["2", "1", "1"] and lines["Received Email"] == ["1", "1", "0"], report.stdout
    assert "missing in total: 1" in report.stdout

    # A second pull of the same window replaces its own objects: no id twice.
    pull(events_api, lake, "--from", iso(base), "--to", iso(base + dt.timedelta(hours=3)))
    ids = [row["id"] for row in rows(lake)]
    assert len(ids) == len(set(ids)) == 7


def test_a_pushed_and_a_pulled_event_give_the_same_row_and_one_deduped_id(events_api, klaviyo_api, tmp_path):
    """The webhook carries exactly the resource the Events API lists (formats.md, path C)."""
    at = hours_ago(3).replace(minute=10, second=0)
    seed(events_api, [event("4sDShKQjrdT", "OPn3d1", at, **{"Client Name": "Gmail", "machine_open": False})])
    lake = tmp_path / "lake"
    pull(events_api, lake, "--from", iso(at - dt.timedelta(minutes=10)), "--to", iso(at + dt.timedelta(minutes=10)))
    pulled = rows(lake, "email_opened")
    assert len(pulled) == 1

    # The same event, pushed: the Events API's resource as the webhook's payload.data.
    page = json.loads(urllib_get(events_api, "/api/events?filter=" + urllib_quote(
        f'equals(metric_id,"OPn3d1"),greater-or-equal(datetime,{iso(at)}),'
        f'less-than(datetime,{iso(at + dt.timedelta(seconds=1))})')))
    # The webhook names the account the pull read from GET /api/accounts, and its payload's
    # revision differs from the pull's pinned one (docs/pull.md lists what may differ).
    time.sleep(1.1)  # Get Accounts allows one request a second: the pull just made it
    [account] = json.loads(urllib_get(events_api, "/api/accounts"))["data"]
    webhook = {"data": [{"topic": "event:klaviyo.opened_email", "payload": {"data": page["data"][0]}}],
               "meta": {"klaviyo_webhook_id": "wh-parity", "timestamp": iso(hours_ago(0)), "version": "2025-07-15",
                        "klaviyo_account_id": account["id"]}}
    # Pushed into a lake of its own: the local lake names objects after the ids they hold,
    # so in one lake the second copy would replace the first before it could be compared.
    pushed_lake = tmp_path / "pushed"
    served = LocalEndpoint(pushed_lake, ["--write-key", WRITE_KEY],
                           env={"KLAVIYO_API_KEY": klaviyo_api.API_KEY, "KLAVIYO_API_BASE_URL": klaviyo_api.url})
    try:
        status, answer = post_webhook(served.webhook_url, json.dumps(webhook).encode(), WRITE_KEY,
                                      webhook_id="wh-parity")
        assert status == 200, answer
    finally:
        served.stop()
    [pushed] = rows(pushed_lake, "email_opened")
    [pulled] = rows(lake, "email_opened")
    assert (pushed["context_klaviyo_source"], pulled["context_klaviyo_source"]) == ("webhook", "pull")
    receipt = {"received_at", "sent_at", "uuid_ts", "context_klaviyo_source", "context_klaviyo_webhook_id",
               "context_integration_version"}
    assert {k: v for k, v in pushed.items() if k not in receipt} == \
        {k: v for k, v in pulled.items() if k not in receipt}
    assert pushed["context_klaviyo_account_id"] == pulled["context_klaviyo_account_id"] == account["id"]
    assert (pushed["context_integration_version"], pulled["context_integration_version"]) == ("2025-07-15", "2026-01-15")
    assert pushed["id"] == pulled["id"] == "klaviyo-4sDShKQjrdT"

    # In S3 both copies land as separate objects (Firehose names objects itself): the
    # dedupe view keeps one.
    [pushed_object] = (pushed_lake / "klaviyo").glob("collection=email_opened/dt=*/*.gz")
    target = lake / "klaviyo" / pushed_object.relative_to(pushed_lake / "klaviyo").parent / "from-webhook.gz"
    target.write_bytes(pushed_object.read_bytes())
    con = connect(lake)
    assert con.sql("select count(distinct id), count(*) from email_opened").fetchall()[0] == (1, 2)
    # The raw landing is the `<schema>_raw` database in AWS.
    con.execute("create schema klaviyo_raw")
    con.execute("create view klaviyo_raw.email_opened as select * from klaviyo.email_opened")
    con.sql(dedupe_view_sql("EmailOpenedDedupeViewQuery"))
    assert con.sql("select count(*) from klaviyo_raw.email_opened_deduped").fetchall()[0][0] == 1


def urllib_get(double, path):
    import urllib.request
    request = urllib.request.Request(double.url + path, headers={
        "Authorization": f"Klaviyo-API-Key {double.API_KEY}", "revision": "2026-01-15"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def urllib_quote(text):
    import urllib.parse
    return urllib.parse.quote(text, safe="")


def dedupe_view_sql(resource):
    from test_dedupe_views import view_sql
    return view_sql(resource)


def series(double, count, start, step_us, prefix="gen-", metric="OPn3d1"):
    double.post("/__metrics", {"metrics": EMAIL_METRICS})
    double.post("/__series", {"metric_id": metric, "prefix": prefix, "start": iso(start), "count": count,
                              "step_us": step_us, "profiles": 50})


def test_a_run_killed_at_a_random_page_resumes_with_no_gap_and_no_duplicate(events_api, tmp_path):
    start = hours_ago(30).replace(minute=0, second=0)
    # 12,000 events over 20 hours: about a dozen pages of 1,000, some windows dense.
    series(events_api, 12_000, start, 6_000_000)
    events_api.post("/__control", {"delay": 0.3})
    lake = tmp_path / "lake"
    window = ["--from", iso(start), "--to", iso(start + dt.timedelta(hours=24)), "--lease-secs", "2"]
    run = start_pull(events_api, lake, *window)
    kill_after = random.Random(os.environ.get("PYTEST_SEED", "7")).randint(2, 8)
    deadline = time.monotonic() + 120
    while len(rows(lake)) < kill_after * 1000 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    stored_before = len(rows(lake))
    assert 0 < stored_before < 12_000, stored_before
    events_api.post("/__control", {"delay": 0.0})
    # The killed run's lease lapses after --lease-secs; until then a new run must refuse.
    blocked = pull(events_api, lake, *window, check=False)
    if blocked.returncode != 0:
        assert "holds the lease" in blocked.stderr + blocked.stdout
        time.sleep(2.1)  # the 2 s lease of the killed run
        pull(events_api, lake, *window)
    ids = [row["id"] for row in rows(lake)]
    assert len(ids) == len(set(ids)) == 12_000
    assert set(ids) == {f"klaviyo-gen-{i:010d}" for i in range(12_000)}


def test_late_events_behind_the_cursor_are_caught_by_the_passes_and_stored_once(events_api, tmp_path):
    # An event dated two hours ahead (a client clock): never asked for before its time.
    seed(events_api, [event("on-time", "OPn3d1", hours_ago(2)), event("future", "OPn3d1", hours_ago(-2))])
    lake = tmp_path / "lake"
    # Every pass due at every run: the recent hours, and the count checks of the days.
    incremental = ["--lookback-hours", "48", "--recent-every-minutes", "0", "--check-every-hours", "0"]
    pull(events_api, lake, *incremental)
    assert [r["id"] for r in rows(lake)] == ["klaviyo-on-time"]
    assert list((lake / "_state" / "ids" / "OPn3d1").glob("*.ids")), "the day's id ledger"
    # Klaviyo lists these only now, dated behind the cursor: minutes, hours and a day late.
    events_api.post("/__events", {"events": [event("late-minutes", "OPn3d1", hours_ago(0.2)),
                                             event("late-hours", "OPn3d1", hours_ago(5)),
                                             event("late-day", "OPn3d1", hours_ago(30))]})
    second = pull(events_api, lake, *incremental)
    assert {r["id"] for r in rows(lake)} == {
        "klaviyo-on-time", "klaviyo-late-minutes", "klaviyo-late-hours", "klaviyo-late-day"}
    # The re-read pages held the on-time event again; its day's ledger kept it from being
    # stored twice: one raw row per event.
    assert len(rows(lake)) == 4
    assert "already stored" in second.stdout + second.stderr
    compacted = subprocess.run([str(ingest_binary()), "compact", "--lake", str(lake)],
                               capture_output=True, text=True, check=True)
    assert json.loads(compacted.stdout)["duplicates_dropped"] == 0
    counted = connect_tables(lake).execute("select count(*), count(distinct id) from email_opened").fetchone()
    assert counted == (4, 4)
    # A third run finds nothing new and writes nothing.
    files = sorted(p for p in (lake / "klaviyo").rglob("*.gz"))
    pull(events_api, lake, *incremental)
    assert sorted(p for p in (lake / "klaviyo").rglob("*.gz")) == files


def test_an_explicit_window_read_again_stores_what_klaviyo_listed_late(events_api, tmp_path):
    start = hours_ago(72).replace(minute=0, second=0, microsecond=0)
    seed(events_api, [event(f"w{i}", "OPn3d1", start + dt.timedelta(minutes=i)) for i in range(50)])
    lake = tmp_path / "lake"
    window = ["--from", iso(start), "--to", iso(start + dt.timedelta(hours=24))]
    pull(events_api, lake, *window)
    assert len(rows(lake)) == 50
    events_api.post("/__events", {"events": [event("w-late", "OPn3d1", start + dt.timedelta(hours=3))]})
    pull(events_api, lake, *window)
    ids = [r["id"] for r in rows(lake)]
    assert len(ids) == len(set(ids)) == 51 and "klaviyo-w-late" in ids


def test_a_conversion_read_by_name_keeps_its_flow_attribution(events_api, tmp_path):
    """Placed Order, read with --metric: its attribution comes as relationships (recent
    revisions), and lands in the columns a webhook's $flow / $message fill."""
    at = hours_ago(4).replace(minute=0, second=0)
    events_api.post("/__metrics", {"metrics": [*EMAIL_METRICS, {"id": "PlOrd1", "name": "Placed Order",
                                                                "integration_key": "shopify"}]})
    events_api.post("/__profiles", {"profiles": PROFILES})
    order = {"id": "ord-1", "metric_id": "PlOrd1", "profile_id": PROFILES[0]["id"], "datetime": iso(at),
             "properties": {"$value": 42.5},
             "attributions": [{"id": "attr-1", "attributed_event": "open-9", "flow": "FlowA1",
                               "flow_message": "FMsgB2", "flow_message_variation": "VarC3"}]}
    events_api.post("/__events", {"events": [order]})
    lake = tmp_path / "lake"
    pull(events_api, lake, "--metric", "Placed Order", "--from", iso(at - dt.timedelta(minutes=5)),
         "--to", iso(at + dt.timedelta(minutes=5)))
    [row] = rows(lake, "placed_order")
    assert (row["campaign_id"], row["email_id"]) == ("FlowA1", "FMsgB2"), row
    # Klaviyo's $-keys as a webhook's would be flattened.
    assert (row["klaviyo_variation"], row["klaviyo_attributed_event_id"]) == ("VarC3", "open-9"), row


def test_the_request_budget_is_never_exceeded(events_api, tmp_path):
    start = hours_ago(20).replace(minute=0, second=0)
    series(events_api, 30_000, start, 2_000_000)
    lake = tmp_path / "lake"
    pull(events_api, lake, "--from", iso(start), "--to", iso(start + dt.timedelta(hours=17)),
         "--requests-per-minute", "120")
    sent = sorted(r["t"] for r in events_api.stats()["requests"])
    assert len(sent) >= 31
    # A bucket of 2 a second holding at most 2: any span of s seconds sees at most 2 + 2 s
    # requests (plus a little for the clocks of two processes).
    for span in (1.0, 5.0, 10.0):
        most = max(sum(1 for t in sent[i:] if t < start_t + span) for i, start_t in enumerate(sent))
        assert most <= 2 + 2 * span + 1, (span, most)
    assert len(rows(lake)) == 30_000


def test_a_429_waits_for_retry_after_and_a_refused_page_size_falls_back(events_api, tmp_path):
    at = hours_ago(3).replace(minute=0, second=0)
    # Spread over most of the hour, so the first page of 200 covers enough not to split it.
    seed(events_api, [event(f"e{i}", "OPn3d1", at + dt.timedelta(seconds=7 * i)) for i in range(450)])
    events_api.post("/__control", {"fail": [{"status": 429, "retry_after": 2}, {"status": 503}],
                                   "max_page_size": 200})
    lake = tmp_path / "lake"
    result = pull(events_api, lake, "--from", iso(at), "--to", iso(at + dt.timedelta(hours=1)))
    assert "1 x 429" in result.stdout, result.stdout
    requests = events_api.stats()["requests"]
    throttled = next(i for i, r in enumerate(requests) if r["status"] == 429)
    assert requests[throttled + 1]["t"] - requests[throttled]["t"] >= 2.0
    assert any(r["status"] == 400 and "size%5D=1000" in r["path"] for r in requests)
    opened_pages = [r for r in requests if r["status"] == 200 and "/api/events" in r["path"] and "OPn3d1" in r["path"]]
    assert len(opened_pages) == 3  # 200 + 200 + 50 events
    assert len(rows(lake)) == 450


def test_a_429_pauses_every_window_of_the_endpoint_not_only_the_one_that_got_it(events_api, tmp_path):
    start = hours_ago(24 * 6).replace(hour=0, minute=0, second=0, microsecond=0)
    # Six days of 1,000 events, read six windows at once, 200 events a page: every window
    # keeps asking for pages while the others wait. The 429 comes on a cursor page, while
    # every window is busy.
    seed(events_api, [event(f"p{d}-{i}", "OPn3d1", start + dt.timedelta(days=d, seconds=80 * i))
                      for d in range(6) for i in range(1_000)])
    events_api.post("/__control", {"max_page_size": 200,
                                   "fail": [{"status": 429, "retry_after": 2, "path": "page%5Bcursor%5D"}]})
    lake = tmp_path / "lake"
    result = pull(events_api, lake, "--from", iso(start), "--to", iso(start + dt.timedelta(days=6)),
                  "--parallel-windows", "6")
    assert "1 x 429" in result.stdout, result.stdout
    requests = [r for r in events_api.stats()["requests"] if "/api/events" in r["path"]]
    throttled = next(r for r in requests if r["status"] == 429)
    # Requests already in flight when the 429 was answered are answered at once; after
    # that, nothing goes to Get Events until Retry-After has passed.
    during = [r for r in requests if throttled["t"] + 0.1 < r["t"] < throttled["t"] + 1.95]
    assert during == [], f"{len(during)} requests to Get Events during its Retry-After"
    assert len([r for r in requests if r["t"] > throttled["t"] + 1.95]) > 6
    ids = [r["id"] for r in rows(lake)]
    assert len(ids) == len(set(ids)) == 6_000


def test_the_cursor_never_moves_past_rows_that_were_not_stored(events_api, tmp_path):
    at = hours_ago(3).replace(minute=0, second=0)
    seed(events_api, [event("first", "WKHXf4", at), event("second", "OPn3d1", at + dt.timedelta(minutes=1))])
    lake = tmp_path / "lake"
    # A file where the opened partition's directory must go: the lake cannot store that row.
    blocker = lake / "klaviyo/collection=email_opened"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    window = ["--from", iso(at), "--to", iso(at + dt.timedelta(hours=1))]
    result = pull(events_api, lake, *window, check=False)
    assert result.returncode != 0 and "cursor stays before them" in result.stderr, result.stderr
    job = next(iter(state(lake)["jobs"].values()))
    opened = job["OPn3d1"]
    # Nothing counts as stored: the window is open at its very start, with no cursor.
    assert opened["done"] == opened["from"] and opened["completed"] == []
    assert all(w["resume_at"] == w["from"] and w["next_link"] is None for w in opened["open"])
    blocker.unlink()
    pull(events_api, lake, *window)
    assert sorted(r["id"] for r in rows(lake)) == ["klaviyo-first", "klaviyo-second"]


def test_a_refused_key_fails_fast_and_says_which_scopes(events_api, tmp_path):
    seed(events_api, [])
    events_api.post("/__control", {"forbidden": True})
    result = pull(events_api, tmp_path / "lake", check=False)
    assert result.returncode == 1
    assert "HTTP 403" in result.stderr and "events:read" in result.stderr
    assert len(events_api.stats()["requests"]) == 1


def test_dry_run_prints_klaviyos_counts_and_stores_nothing(events_api, tmp_path):
    at = hours_ago(30).replace(minute=0, second=0)
    seed(events_api, [event(f"d{i}", "OPn3d1", at + dt.timedelta(hours=i)) for i in range(5)])
    lake = tmp_path / "lake"
    result = pull(events_api, lake, "--from", iso(at), "--to", iso(at + dt.timedelta(hours=6)), "--dry-run")
    opened = next(line for line in result.stdout.splitlines() if "Opened Email" in line)
    assert " 5 events" in opened, result.stdout
    assert "total 5 events" in result.stdout
    assert not (lake / "klaviyo").exists()


def backfill(double, lake: Path, *args):
    env = {**os.environ, "KLAVIYO_API_KEY": double.API_KEY, "KLAVIYO_API_BASE_URL": double.url}
    return subprocess.Popen([str(ingest_binary()), "backfill", "--lake", str(lake), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_a_backfill_shows_progress_and_ctrl_c_stops_it_cleanly_for_the_same_command_to_resume(events_api, tmp_path):
    start = hours_ago(24 * 12).replace(hour=0, minute=0, second=0)
    series(events_api, 10_000, start, 86_400_000_000 // 1_000)  # 1,000 a day for 10 days
    events_api.post("/__control", {"delay": 0.4})
    lake = tmp_path / "lake"
    window = ["--from", iso(start), "--to", iso(start + dt.timedelta(days=10)), "--parallel-windows", "1"]
    run = backfill(events_api, lake, *window)
    deadline = time.monotonic() + 60
    while len(rows(lake)) < 2_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 3, out + err  # stopped before the window was complete
    assert "about 10000 events" in err and "/ ~10000 events" in err, err
    assert "NOT complete" in out
    assert state(lake)["lease"] is None  # released: the next run need not wait
    events_api.post("/__control", {"delay": 0.0})
    resumed = backfill(events_api, lake, *window)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out + err
    ids = [row["id"] for row in rows(lake)]
    assert len(ids) == len(set(ids)) == 10_000


def test_a_renamed_metric_keeps_its_stream_and_collection_and_is_reported(events_api, tmp_path):
    seed(events_api, [event("before-rename", "OPn3d1", hours_ago(3))])
    lake = tmp_path / "lake"
    pull(events_api, lake, "--settle-secs", "1")
    renamed = [dict(m, name="Opened Email (legacy)") if m["id"] == "OPn3d1" else m for m in EMAIL_METRICS]
    events_api.post("/__metrics", {"metrics": renamed})
    # Dated after the first run's cursor (now less 1 s of settle time when it ran)...
    events_api.post("/__events", {"events": [event("after-rename", "OPn3d1", hours_ago(0))]})
    time.sleep(2)  # ...and older than the second run's settle time of 1 s.
    result = pull(events_api, lake, "--settle-secs", "1")
    assert 'renamed from "Opened Email" to "Opened Email (legacy)"' in result.stdout, result.stdout
    assert "expected Klaviyo email metric (opened_email) is not in the account" in result.stdout
    assert {r["id"] for r in rows(lake, "email_opened")} == {"klaviyo-before-rename", "klaviyo-after-rename"}


def test_newest_first_reads_the_latest_day_first_and_channels_add_sms(events_api, tmp_path):
    import urllib.parse
    start = hours_ago(24 * 5).replace(hour=0, minute=0, second=0)
    seed(events_api, [event(f"day{d}", "OPn3d1", start + dt.timedelta(days=d, hours=1)) for d in range(3)]
         + [event("text", "SmS001", start + dt.timedelta(hours=2))])
    lake = tmp_path / "lake"
    pull(events_api, lake, "--from", iso(start), "--to", iso(start + dt.timedelta(days=3)),
         "--newest-first", "--parallel-windows", "1", "--channels", "email,sms")
    assert {r["id"] for r in rows(lake, "email_opened")} == {"klaviyo-day0", "klaviyo-day1", "klaviyo-day2"}
    assert [r["id"] for r in rows(lake, "received_sms")] == ["klaviyo-text"]
    starts = []
    for request in events_api.stats()["requests"]:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request["path"]).query)
        if "OPn3d1" in query.get("filter", [""])[0]:
            starts += re.findall(r"greater-or-equal\(datetime,([^)]+)\)", query["filter"][0])
    assert starts == [iso(start + dt.timedelta(days=d)) for d in (2, 1, 0)], starts
