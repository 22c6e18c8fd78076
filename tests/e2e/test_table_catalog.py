"""The compacted tables in the Glue Data Catalog (moto's, through the stack emulator), as
Athena and Redshift Spectrum find them: the real `compaction` binary registers one table per
collection under its Segment name and `tracks`, points each day's partition at the version
its manifest names, grows a table's columns, writes nothing to Glue when nothing is new, and
is killed at every step of a run without losing or doubling an event."""

import gzip
import json
import signal
import subprocess
import time

import pyarrow.parquet as pq
from conftest import WRITE_KEY, ingest_binary
from query_lake import connect_tables
from send_sample_webhook import post_webhook
from test_tables import ALL_SIX, SIX, raw_objects

DATABASE = "klaviyo"
TRACKS_COLUMNS = ["_cast_errors", "_extra", "id", "anonymous_id", "user_id", "event", "event_text", "timestamp",
                  "original_timestamp", "sent_at", "received_at", "uuid_ts", "context_library_name",
                  "context_library_version", "context_integration_name", "context_integration_version"]
HIVE_TYPES = {"text": "string", "boolean": "boolean", "timestamp": "timestamp"}


def compaction_env(emulator):
    return {"PATH": "/usr/bin:/bin", **emulator.env(), "LAKE_BUCKET": emulator.info["bucket"],
            "SCHEMA_NAME": "klaviyo", "GLUE_DATABASE": DATABASE}


def run_compaction(emulator, check=True):
    result = subprocess.run([str(ingest_binary().parent / "compaction")], capture_output=True, text=True,
                            env=compaction_env(emulator), timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    return result


def land_six(endpoint, emulator, names=("firehose-1.gz", "firehose-2-retry.gz")):
    """The local endpoint's raw objects of the six collections, uploaded under their landing
    keys, each under every one of `names` (copies, as Firehose retries land them)."""
    bucket = emulator.info["bucket"]
    for collection in SIX:
        [original] = raw_objects(endpoint.lake, collection)
        key = original.relative_to(endpoint.lake).as_posix()
        for name in names:
            emulator.s3.put_object(Bucket=bucket, Key=key.rsplit("/", 1)[0] + "/" + name, Body=original.read_bytes())


def land_new_opened(endpoint, emulator, name: str, event_id: str, extra: dict | None = None):
    """A raw object of email_opened with one new event (a new id), optionally with new
    properties."""
    [original] = raw_objects(endpoint.lake, "email_opened")
    [row] = [json.loads(line) for line in gzip.decompress(original.read_bytes()).decode().splitlines() if line]
    row = {**row, "id": event_id, **(extra or {})}
    key = original.relative_to(endpoint.lake).as_posix().rsplit("/", 1)[0] + "/" + name
    emulator.s3.put_object(Bucket=emulator.info["bucket"], Key=key, Body=gzip.compress((json.dumps(row) + "\n").encode()))


def manifest(emulator, collection: str):
    [key] = [k for k in emulator.keys(f"_tables/klaviyo/{collection}/") if k.endswith("manifest.json")]
    return key.rsplit("/", 1)[0], json.loads(emulator.s3.get_object(Bucket=emulator.info["bucket"], Key=key)["Body"].read())


def partition_location(emulator, table: str, values):
    found = emulator.glue.get_partition(DatabaseName=DATABASE, TableName=table, PartitionValues=values)
    return found["Partition"]["StorageDescriptor"]["Location"]


def assert_catalog_matches_manifests(emulator):
    """Every collection's partition, and its tracks partition, points at the version the
    manifest names; every table's columns are its `_columns.json`."""
    bucket = emulator.info["bucket"]
    for collection in SIX:
        partition, current = manifest(emulator, collection)
        day = partition.rsplit("dt=", 1)[1]
        expected = f"s3://{bucket}/{partition}/{current['dir']}/"
        assert partition_location(emulator, collection, [day]) == expected, collection
        assert partition_location(emulator, "tracks", [collection, day]) == expected, collection
        columns = json.loads(emulator.s3.get_object(
            Bucket=bucket, Key=f"_tables/klaviyo/{collection}/_columns.json")["Body"].read())["columns"]
        table = emulator.glue.get_table(DatabaseName=DATABASE, Name=collection)["Table"]
        glue_columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        assert glue_columns == [(name, HIVE_TYPES[kind]) for name, kind in columns], collection


def test_the_tables_are_registered_under_segment_names_and_point_at_the_manifests_versions(
        endpoint, emulator, tmp_path):
    emulator.clear()
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    land_six(endpoint, emulator)
    report = run_compaction(emulator)
    assert report["versions_written"] == 6 and report["duplicates_dropped"] == 6

    tables = {t["Name"]: t for t in emulator.glue.get_tables(DatabaseName=DATABASE)["TableList"]}
    assert set(tables) == set(SIX) | {"tracks"}
    for name in SIX:
        table = tables[name]
        assert table["TableType"] == "EXTERNAL_TABLE"
        assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
        serde = table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
        assert serde == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        assert table["StorageDescriptor"]["Location"] == f"s3://{emulator.info['bucket']}/_tables/klaviyo/{name}/"
        # tracks' columns are the first columns of every table, at the same places.
        assert [c["Name"] for c in table["StorageDescriptor"]["Columns"][:len(TRACKS_COLUMNS)]] == TRACKS_COLUMNS
    tracks = tables["tracks"]
    assert [k["Name"] for k in tracks["PartitionKeys"]] == ["collection", "dt"]
    assert [c["Name"] for c in tracks["StorageDescriptor"]["Columns"]] == TRACKS_COLUMNS
    assert_catalog_matches_manifests(emulator)

    # What a reader of each partition's location finds: the Parquet file (the index is a
    # hidden `_` file readers skip), each event once.
    for collection in SIX:
        location = partition_location(emulator, collection, [manifest(emulator, collection)[0].rsplit("dt=", 1)[1]])
        prefix = location.split("/", 3)[3]
        visible = [k for k in emulator.keys(prefix) if not k.rsplit("/", 1)[1].startswith(("_", "."))]
        assert [k.rsplit("/", 1)[1] for k in visible] == ["part.parquet"]
        copy = emulator.download(prefix, tmp_path / collection)
        assert pq.read_table(copy / prefix / "part.parquet").num_rows == 1

    # Nothing new: no Glue write, no S3 object written.
    before = {k: emulator.s3.head_object(Bucket=emulator.info["bucket"], Key=k)["ETag"]
              for k in emulator.keys("_tables/")}
    writes = emulator.control("/stats")["glue_writes"]
    again = run_compaction(emulator)
    assert again["objects_read"] == 0 and again["versions_written"] == 0
    assert emulator.control("/stats")["glue_writes"] == writes
    assert {k: emulator.s3.head_object(Bucket=emulator.info["bucket"], Key=k)["ETag"]
            for k in emulator.keys("_tables/")} == before

    # 28 more copies of a compacted day: no new version, no Glue write.
    land_six(endpoint, emulator, names=[f"reread-{i:02d}.gz" for i in range(28)])
    copies = run_compaction(emulator)
    assert (copies["versions_written"], copies["duplicates_dropped"]) == (0, 6 * 28)
    assert emulator.control("/stats")["glue_writes"] == writes


def test_a_new_property_grows_the_glue_table_and_the_partition_moves_to_the_new_version(endpoint, emulator):
    emulator.clear()
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    land_six(endpoint, emulator)
    run_compaction(emulator)
    _, first = manifest(emulator, "email_opened")
    land_new_opened(endpoint, emulator, "late.gz", "klaviyo-late-1", {"zz_new_property": 12.50})
    report = run_compaction(emulator)
    assert (report["versions_written"], report["new_ids"]) == (1, 1)
    _, second = manifest(emulator, "email_opened")
    assert second["version"] == first["version"] + 1
    assert [old["dir"] for old in second["superseded"]] == [first["dir"]]
    columns = emulator.glue.get_table(DatabaseName=DATABASE, Name="email_opened")["Table"]["StorageDescriptor"]["Columns"]
    assert columns[-1] == {"Name": "zz_new_property", "Type": "string"}
    assert_catalog_matches_manifests(emulator)


# Each step of a run that commits a new version of email_opened, named by the call the
# emulator holds while the test kills the binary.
KILL_STEPS = [
    ("writing the schema", "s3:put _tables/klaviyo/email_opened/_columns.json"),
    ("writing the data", "s3:put _tables/klaviyo/email_opened/dt="),
    ("after the data, writing the index", "_index.ndjson.gz"),
    ("after the data, marking the catalog pending", "s3:put _tables/.catalog-pending/"),
    ("committing the manifest", "manifest.json"),
    ("after the commit, during the Glue update", "glue:update_partition email_opened"),
    ("after the table's partition, during the tracks partition", "glue:update_partition tracks"),
    ("during clean-up", "s3:delete _tables/.catalog-pending/"),
    ("giving the lease back", "s3:delete _tables/.compaction.lease"),
]


def test_a_run_killed_at_every_step_leaves_each_event_once_and_glue_on_the_manifest(endpoint, emulator, tmp_path):
    """SIGKILL at each step of a run (the emulator holds that step's request so the kill lands
    exactly there); after the lease lapses the next run finishes the work: every event once,
    every Glue partition on its manifest's version, no pending mark, no folder no manifest
    names."""
    for number, (step, call) in enumerate(KILL_STEPS):
        emulator.clear()
        assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
        land_six(endpoint, emulator)
        run_compaction(emulator)
        # A new property too, so the run writes the schema before the data.
        land_new_opened(endpoint, emulator, f"late-{number}.gz", f"klaviyo-late-{number}",
                        {f"zz_step_{number}": "x"})
        emulator.control("/faults", {"hold": {"call": call}})
        process = subprocess.Popen([str(ingest_binary().parent / "compaction")], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=compaction_env(emulator))
        deadline = time.time() + 60
        while not emulator.control("/stats")["held"]:
            assert process.poll() is None, f"{step}: the run ended before the step: {process.communicate()}"
            assert time.time() < deadline, f"{step}: the step was never reached"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        emulator.control("/release", {})
        emulator.control("/faults", {"hold": None})
        # The killed run's lease lapses (16 minutes); the test lapses it at once.
        lapsed = {"holder": "killed", "expires_at": "2001-01-01T00:00:00Z"}
        emulator.s3.put_object(Bucket=emulator.info["bucket"], Key="_tables/.compaction.lease",
                               Body=json.dumps(lapsed).encode())
        run_compaction(emulator)
        assert run_compaction(emulator)["versions_written"] == 0, step

        assert_catalog_matches_manifests(emulator)
        assert emulator.keys("_tables/.catalog-pending/") == [], step
        partition, current = manifest(emulator, "email_opened")
        named = {current["dir"]} | {old["dir"] for old in current["superseded"]}
        folders = {k[len(partition) + 1:].split("/")[0] for k in emulator.keys(partition + "/v=")}
        assert folders <= named, (step, folders, named)
        copy = emulator.download("_tables/", tmp_path / f"step-{number}")
        con = connect_tables(copy)
        assert con.execute("select count(*), count(distinct id) from email_opened").fetchone() == (2, 2), step
        assert con.execute("select count(*), count(distinct id) from tracks").fetchone() == (7, 7), step


def test_in_lambda_each_run_reports_the_figures_the_compaction_alarms_watch(endpoint, emulator):
    """The `compaction` binary as Lambda runs it (the Runtime API stand-in, a scheduler
    event): it answers with its report and prints one EMF line whose metrics include every
    one a compaction alarm of the template watches."""
    import sys
    from conftest import ROOT
    from cfnlint.decode import decode
    sys.path.insert(0, str(ROOT / "tests/lambda_runtime"))
    from runtime_api import RuntimeApi

    emulator.clear()
    assert post_webhook(endpoint.webhook_url, ALL_SIX, WRITE_KEY)[0] == 200
    land_six(endpoint, emulator)
    api = RuntimeApi({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}})
    env = {**compaction_env(emulator), "AWS_LAMBDA_RUNTIME_API": api.address,
           "AWS_LAMBDA_FUNCTION_NAME": "compaction", "AWS_LAMBDA_LOG_STREAM_NAME": "stand-in",
           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}
    process = subprocess.Popen([str(ingest_binary().parent / "compaction")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while api.response is None and api.error is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    stdout, stderr = process.communicate()
    api.shutdown()
    assert api.error is None and api.response is not None, stderr[-3000:]
    assert json.loads(api.response)["versions_written"] == 6
    [document] = [json.loads(line) for line in stdout.splitlines() if line.startswith("{") and "_aws" in line]
    assert document["CompactionRunsCompleted"] == 1 and document["CompactionDuplicatesDropped"] == 6
    emitted = {m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    template, _ = decode(str(ROOT / "template.yaml"))
    watched = {r["Properties"]["MetricName"] for r in template["Resources"].values()
               if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName", "").startswith("Compaction")}
    assert len(watched) == 5 and watched <= emitted, (watched, emitted)
    assert emulator.glue.get_table(DatabaseName=DATABASE, Name="tracks")["Table"]["Name"] == "tracks"
