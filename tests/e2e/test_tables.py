"""The tables that hold each event once, end to end on the local lake: the real
`klaviyo-source serve` fills the raw landing, copies are landed beside its objects the way
Firehose retries, re-reads and a second source land them (whole objects under new names),
the real `klaviyo-source compact` builds the tables, and DuckDB and pyarrow read them."""

import fcntl
import gzip
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from conftest import ROOT, WRITE_KEY, ingest_binary
from query_lake import connect, connect_tables, current_files
from send_sample_webhook import post_webhook

ALL_SIX = (ROOT / "tests/fixtures/webhooks/all_six_collections.json").read_bytes()
SIX = ["email_bounced", "email_delivered", "email_link_clicked", "email_marked_as_spam",
       "email_opened", "email_unsubscribed"]


def compact(lake: Path, check=True):
    result = subprocess.run([str(ingest_binary()), "compact", "--lake", str(lake)],
                            capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    return result


def raw_objects(lake: Path, collection: str):
    return sorted((lake / "klaviyo" / f"collection={collection}").glob("dt=*/*.gz"))


def land_copy(original: Path, name: str, change=None):
    """A copy of a raw object under another name: the same bytes (a retry), or its rows
    changed by `change`."""
    if change is None:
        (original.parent / name).write_bytes(original.read_bytes())
        return
    lines = gzip.decompress(original.read_bytes()).decode().splitlines()
    rows = [change(json.loads(line)) for line in lines if line]
    (original.parent / name).write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))


def table_files(lake: Path):
    return {p: p.stat().st_mtime_ns for p in (lake / "_tables").rglob("*") if p.is_file()}


def counts(lake: Path, table: str):
    con = connect_tables(lake)
    return con.execute(f'select count(*), count(distinct id) from "{table}"').fetchone()


def test_each_event_once_and_a_rerun_with_nothing_new_writes_nothing(endpoint):
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    # Copies as Firehose retries and re-reads land them: whole objects under new names.
    for collection in SIX:
        [original] = raw_objects(lake, collection)
        for copy in range(3):
            land_copy(original, f"retry-{copy}.gz")
    raw = connect(lake).execute("select count(*), count(distinct id) from tracks").fetchone()
    assert raw == (24, 6)
    report = compact(lake)
    assert report["objects_read"] == 24 and report["versions_written"] == 6
    assert report["new_ids"] == 6 and report["duplicates_dropped"] == 18
    for collection in SIX:
        assert counts(lake, collection) == (1, 1)
    con = connect_tables(lake)
    assert con.execute("select count(*), count(distinct id) from tracks").fetchone() == (6, 6)
    # The seed's query, on the table.
    assert con.execute("select count(*) from klaviyo.email_delivered").fetchone() == (1,)

    before = table_files(lake)
    again = compact(lake)
    assert again == {"objects_read": 0, "versions_written": 0, "rows_written": 0, "new_ids": 0,
                     "duplicates_dropped": 0, "unreadable_lines": 0, "lost_races": 0,
                     "dead_letter_objects_compacted": 0, "publications_finished": 0,
                     "error_objects_compacted": 0, "error_objects_found": 0, "rows_with_cast_errors": 0,
                     "rows_past_column_cap": 0, "raw_objects_expired": 0}
    assert table_files(lake) == before, "a re-run with nothing new wrote"


def test_twenty_eight_copies_of_a_compacted_day_make_no_new_version(endpoint):
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    compact(lake)
    [original] = raw_objects(lake, "email_opened")
    for copy in range(28):
        land_copy(original, f"reread-{copy}.gz")
    report = compact(lake)
    assert report["objects_read"] == 28 and report["duplicates_dropped"] == 28
    assert report["versions_written"] == 0
    manifest = json.loads(next((lake / "_tables/klaviyo/email_opened").glob("dt=*/manifest.json")).read_text())
    assert manifest["version"] == 1 and len(manifest["consumed"]) == 29
    assert counts(lake, "email_opened") == (1, 1)


def test_a_resolved_pulled_copy_repairs_an_unresolved_webhook_row(endpoint):
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    compact(lake)
    con = connect_tables(lake)
    assert con.execute("select context_klaviyo_identity_resolved, user_id from email_opened").fetchone() == (False, None)

    def pulled(row):
        return {**row, "context_klaviyo_identity_resolved": True, "context_klaviyo_source": "pull",
                "user_id": "crm-1", "received_at": "2024-01-05T00:00:00.000Z"}
    [original] = raw_objects(lake, "email_opened")
    land_copy(original, "pulled.gz", pulled)
    report = compact(lake)
    assert report["versions_written"] == 1 and report["new_ids"] == 0
    con = connect_tables(lake)
    assert con.execute("select count(*), bool_and(context_klaviyo_identity_resolved), max(user_id), "
                       "max(context_klaviyo_source) from email_opened").fetchone() == (1, True, "crm-1", "pull")


def test_a_new_property_is_a_new_column_appended_and_null_for_older_rows(endpoint):
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    compact(lake)
    [original] = raw_objects(lake, "email_opened")
    day = original.parent.name

    def later_event(row):
        return {**row, "id": "klaviyo-later", "klaviyo_brand_new": 123456789012345678901234567890, "klaviyo_esp": "text now"}
    land_copy(original, "later.gz", later_event)
    compact(lake)
    table = lake / "_tables/klaviyo/email_opened"
    columns = [name for name, _ in json.loads((table / "_columns.json").read_text())["columns"]]
    assert columns[-1] == "klaviyo_brand_new"
    # Every version's file has a prefix of the table's columns, in order.
    for file in table.rglob("part.parquet"):
        names = pq.read_schema(file).names
        assert names == columns[:len(names)], file
    con = connect_tables(lake)
    rows = dict(con.execute("select id, klaviyo_brand_new from email_opened").fetchall())
    assert rows["klaviyo-later"] == "123456789012345678901234567890", "a number's exact text"
    assert rows[next(i for i in rows if i != "klaviyo-later")] is None
    # A number in one row beside text in another is no conflict: both are text.
    assert sorted(r[0] for r in con.execute("select klaviyo_esp from email_opened").fetchall()) == ["1", "text now"]
    # The version before the current one stays for readers that planned on it.
    assert sorted(d.name.split("-")[0] for d in (table / day).glob("v=*")) == ["v=1", "v=2"]


def test_a_value_that_does_not_fit_its_declared_type_is_kept_in_cast_errors(endpoint):
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    [original] = raw_objects(lake, "email_bounced")
    land_copy(original, "odd.gz", lambda row: {**row, "id": "klaviyo-odd", "sent_at": "not a time"})
    compact(lake)
    con = connect_tables(lake)
    sent_at, errors = con.execute("select sent_at, _cast_errors from email_bounced where id = 'klaviyo-odd'").fetchone()
    assert sent_at is None and json.loads(errors) == {"sent_at": "not a time"}


def test_readers_never_see_a_half_written_version_and_a_rerun_finishes_it(endpoint):
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    compact(lake)
    [original] = raw_objects(lake, "email_opened")
    land_copy(original, "new.gz", lambda row: {**row, "id": "klaviyo-new"})
    # What a run killed while writing version 2 leaves: a partial file in its own folder, no
    # manifest change.
    partition = next((lake / "_tables/klaviyo/email_opened").glob("dt=*"))
    (partition / "v=2-killedrun").mkdir()
    (partition / "v=2-killedrun" / "part.parquet").write_bytes(b"PAR1 cut off")
    [current] = current_files(lake / "_tables/klaviyo/email_opened")
    assert current.parent.name.startswith("v=1-")
    assert counts(lake, "email_opened") == (1, 1)
    compact(lake)
    assert counts(lake, "email_opened") == (2, 2)
    [current] = current_files(lake / "_tables/klaviyo/email_opened")
    assert current.parent.name.startswith("v=2-") and current.parent.name != "v=2-killedrun"
    assert pq.read_table(current).num_rows == 2


def test_a_second_compaction_waits_for_the_lock_and_says_so(endpoint):
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    lock_path = lake / "_tables/.compaction.lock"
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = compact(lake, check=False)
        assert refused.returncode != 0 and "another compaction is running" in refused.stderr
        assert not list((lake / "_tables").rglob("part.parquet"))
    assert compact(lake)["versions_written"] == 6


def test_the_query_tool_prints_json_rows_of_the_tables(endpoint):
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    compact(lake)
    result = subprocess.run([sys.executable, str(ROOT / "scripts/query_lake.py"), "--lake", str(lake),
                             "--json", "select event, count(*) as n from tracks group by event order by event"],
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == [{"event": slug, "n": 1} for slug in SIX]
    # DuckDB reads the same files by name without the tool.
    files = [str(f) for f in current_files(lake / "_tables/klaviyo/email_opened")]
    assert duckdb.execute(f"select count(*) from read_parquet({files})").fetchone() == (1,)


def test_the_bucket_is_compacted_the_same_way_under_a_lease(endpoint, emulator, tmp_path):
    """`compact --bucket` against the emulated lake bucket (moto's S3, conditional writes
    included): the local lake's raw objects and copies of them, uploaded under the same keys
    Firehose's partitioning gives, become the same tables."""
    emulator.clear()
    bucket = emulator.info["bucket"]
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    for collection in SIX:
        [original] = raw_objects(endpoint.lake, collection)
        key = original.relative_to(endpoint.lake).as_posix()
        for name in ["firehose-1.gz", "firehose-2-retry.gz"]:
            emulator.s3.put_object(Bucket=bucket, Key=key.rsplit("/", 1)[0] + "/" + name, Body=original.read_bytes())
    env = {**emulator.env(), "PATH": "/usr/bin:/bin"}

    def compact_bucket():
        return subprocess.run([str(ingest_binary()), "compact", "--bucket", bucket], capture_output=True,
                              text=True, env=env, timeout=120)

    # A live lease of another run: this one stops at once and writes no table.
    lease = {"holder": "other", "expires_at": "2999-01-01T00:00:00Z"}
    emulator.s3.put_object(Bucket=bucket, Key="_tables/.compaction.lease", Body=json.dumps(lease).encode())
    refused = compact_bucket()
    assert refused.returncode != 0 and "another compaction is running" in refused.stderr, refused.stderr
    assert not [k for k in emulator.keys("_tables/") if not k.endswith(".lease")]
    # A lapsed one (a crashed run's) is taken over.
    lease["expires_at"] = "2001-01-01T00:00:00Z"
    emulator.s3.put_object(Bucket=bucket, Key="_tables/.compaction.lease", Body=json.dumps(lease).encode())
    first = compact_bucket()
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["objects_read"], report["versions_written"], report["duplicates_dropped"]) == (12, 6, 6)
    assert "_tables/.compaction.lease" not in emulator.keys("_tables/"), "the lease is given back"

    copy = emulator.download("_tables/", tmp_path / "bucket")
    con = connect_tables(copy)
    assert con.execute("select count(*), count(distinct id) from tracks").fetchone() == (6, 6)
    before = {k: emulator.s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in emulator.keys("_tables/")}
    again = compact_bucket()
    assert json.loads(again.stdout)["objects_read"] == 0
    assert {k: emulator.s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in emulator.keys("_tables/")} == before


def test_the_deployed_compaction_function_compacts_the_bucket(endpoint, emulator):
    """The `compaction` binary the stack deploys, run once outside Lambda with the variables
    the stack gives it (LAKE_BUCKET, SCHEMA_NAME) and the runtime's credentials."""
    emulator.clear()
    bucket = emulator.info["bucket"]
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    for collection in SIX:
        [original] = raw_objects(endpoint.lake, collection)
        emulator.s3.put_object(Bucket=bucket, Key=original.relative_to(endpoint.lake).as_posix(),
                               Body=original.read_bytes())
    env = {"PATH": "/usr/bin:/bin", **emulator.env(), "LAKE_BUCKET": bucket, "SCHEMA_NAME": "klaviyo"}
    binary = ingest_binary().parent / "compaction"
    first = subprocess.run([str(binary)], capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["versions_written"] == 6
    missing = subprocess.run([str(binary)], capture_output=True, text=True,
                             env={**env, "LAKE_BUCKET": ""}, timeout=120)
    assert missing.returncode != 0 and "LAKE_BUCKET" in missing.stderr


def test_spilled_rows_reach_the_tables_and_their_objects_go(endpoint, emulator):
    """Rows the endpoint spilled to dead-letter/ (Firehose would not take them) are compacted
    like the landing; an object whose every row is in a committed table is deleted, one with
    a line that can never be a row stays and is counted."""
    emulator.clear()
    bucket = emulator.info["bucket"]
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    [original] = raw_objects(endpoint.lake, "email_opened")
    rows = [json.loads(line) for line in gzip.decompress(original.read_bytes()).decode().splitlines() if line]
    spilled = [{**row, "id": "klaviyo-spilled"} for row in rows]
    emulator.s3.put_object(Bucket=bucket, Key="dead-letter/klaviyo/dt=2024-01-05/spilled.ndjson.gz",
                           Body=gzip.compress("".join(json.dumps(r) + "\n" for r in spilled).encode()))
    emulator.s3.put_object(Bucket=bucket, Key="dead-letter/klaviyo/dt=2024-01-05/broken.ndjson.gz",
                           Body=gzip.compress(b'{"id": "no event, no timestamp"}\n'))
    # A gzip object cut short cannot be read at all: it stays too, and the run goes on.
    emulator.s3.put_object(Bucket=bucket, Key="dead-letter/klaviyo/dt=2024-01-05/cut.ndjson.gz",
                           Body=gzip.compress(b'{"id": "x"}\n' * 50)[:20])
    env = {**emulator.env(), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(ingest_binary()), "compact", "--bucket", bucket], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dead_letter_objects_compacted"] == 1 and report["unreadable_lines"] == 2
    assert emulator.keys("dead-letter/") == ["dead-letter/klaviyo/dt=2024-01-05/broken.ndjson.gz",
                                             "dead-letter/klaviyo/dt=2024-01-05/cut.ndjson.gz"]
    manifest = json.loads(emulator.s3.get_object(
        Bucket=bucket, Key=next(k for k in emulator.keys("_tables/klaviyo/email_opened/") if k.endswith("manifest.json"))
    )["Body"].read())
    assert manifest["rows"] == 1 and "dead-letter:dead-letter/klaviyo/dt=2024-01-05/spilled.ndjson.gz" in manifest["consumed"]


def test_a_reader_during_compactions_always_sees_each_event_once(endpoint):
    """Readers follow the manifests while compactions keep replacing versions: every read
    finds its files and counts each id once, however the runs interleave with it."""
    import threading
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    compact(lake)
    [original] = raw_objects(lake, "email_opened")
    stop = threading.Event()
    failures = []

    def read_forever():
        while not stop.is_set():
            try:
                total, distinct = counts(lake, "email_opened")
                if total != distinct:
                    failures.append((total, distinct))
            except Exception as err:  # a missing file or a half-written one
                failures.append(repr(err))

    reader = threading.Thread(target=read_forever)
    reader.start()
    try:
        for round_ in range(12):
            # Each round: a new id and copies of old ones, so every run writes a new version.
            land_copy(original, f"round-{round_}.gz", lambda row, r=round_: {**row, "id": f"klaviyo-round-{r}"})
            land_copy(original, f"copy-{round_}.gz")
            report = compact(lake)
            assert report["versions_written"] == 1 and report["new_ids"] == 1
    finally:
        stop.set()
        reader.join(timeout=30)
    assert not failures, failures[:5]
    assert counts(lake, "email_opened") == (13, 13)


def test_rows_in_firehose_error_records_reach_the_tables_and_their_objects_go(endpoint, emulator):
    """A burst over Firehose's 500 active partitions sends the excess rows to the error prefix
    (activePartitionExceeded) after the call succeeded; the compaction takes each error
    record's rows into the tables and deletes the error object, while a record that can
    never be a row stays and is counted."""
    import base64
    emulator.clear()
    bucket = emulator.info["bucket"]
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    [original] = raw_objects(endpoint.lake, "email_opened")
    [row] = [json.loads(line) for line in gzip.decompress(original.read_bytes()).decode().splitlines() if line]
    import datetime
    days = [(datetime.date(2024, 1, 1) + datetime.timedelta(days=i)).isoformat() for i in range(520)]
    assert len(set(days)) == 520
    rows = [{**row, "id": f"burst-{i:04d}", "timestamp": f"{day}T10:00:00.000Z"} for i, day in enumerate(days)]
    records = [{"Data": "".join(json.dumps(r) for r in rows[:260]).encode()},
               {"Data": "".join(json.dumps(r) for r in rows[260:]).encode()}]
    import boto3
    client = boto3.client("firehose", endpoint_url=emulator.info["endpoint"], region_name=emulator.info["region"],
                          aws_access_key_id="test", aws_secret_access_key="test")
    answer = client.put_record_batch(DeliveryStreamName=emulator.info["stream"], Records=records)
    assert answer["FailedPutCount"] == 0
    errors = emulator.keys("firehose-errors/klaviyo/activePartitionExceeded/")
    assert errors, "the emulator's 500-partition limit sent the excess to the error prefix"
    # And a record that can never be a row, in an error object of its own.
    never = json.dumps({"attemptsMade": 1, "errorCode": "DynamicPartitioning.MetadataExtractionFailed",
                        "rawData": base64.b64encode(b"not json at all").decode()})
    emulator.s3.put_object(Bucket=bucket, Key="firehose-errors/klaviyo/partitioning-failed/dt=2026-12-03/x.gz",
                           Body=gzip.compress(never.encode() + b"\n"))
    result = subprocess.run([str(ingest_binary()), "compact", "--bucket", bucket], capture_output=True,
                            text=True, env={**emulator.env(), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["error_objects_compacted"] == len(errors) and report["unreadable_lines"] == 1
    assert report["error_objects_found"] == len(errors) + 1
    assert emulator.keys("firehose-errors/") == ["firehose-errors/klaviyo/partitioning-failed/dt=2026-12-03/x.gz"]
    copy = emulator.download("_tables/", endpoint.lake.parent / "burst")
    con = connect_tables(copy)
    assert con.execute("select count(*), count(distinct id) from email_opened where id like 'burst-%'"
                       ).fetchone() == (520, 520)


def test_raw_retention_deletes_only_what_the_tables_hold(endpoint):
    """`--raw-retention-days`: raw objects of days older than the retention go once a
    committed manifest lists them; the tables keep every event; a recent day keeps its raw
    objects."""
    import datetime
    lake = endpoint.lake
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    compact(lake)
    before = counts(lake, "tracks")
    [original] = raw_objects(lake, "email_opened")
    land_copy(original, "retry-copy.gz")
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    recent = lake / "klaviyo" / "collection=email_opened" / f"dt={today}"
    recent.mkdir(parents=True)
    rows = [json.loads(line) for line in gzip.decompress(original.read_bytes()).decode().splitlines() if line]
    (recent / "today.gz").write_bytes(gzip.compress("".join(
        json.dumps({**row, "id": "klaviyo-today", "timestamp": f"{today}T10:00:00.000Z"}) + "\n" for row in rows
    ).encode()))
    result = subprocess.run([str(ingest_binary()), "compact", "--lake", str(lake), "--raw-retention-days", "30"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["raw_objects_expired"] == 7, report
    assert [p.parent.name for p in (lake / "klaviyo").rglob("*.gz")] == [f"dt={today}"]
    assert counts(lake, "tracks") == (before[0] + 1, before[1] + 1)
