"""template.yaml checked offline: cfn-lint, the SAM transform, checkov, and the project's
own rules that no linter knows."""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "scripts"))
import render_glue_tables  # noqa: E402


@pytest.fixture(scope="module")
def template():
    parsed, problems = decode(str(TEMPLATE))
    assert not problems, problems
    return parsed


def resources(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def stream_config(template):
    return template["Resources"]["DeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]


def sub_text(value):
    return value["Fn::Sub"] if isinstance(value, dict) else value


def test_cfn_lint_reports_nothing():
    result = subprocess.run([str(VENV_BIN / "cfn-lint"), str(TEMPLATE)], capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_sam_transform_succeeds_offline(template, monkeypatch):
    output = translated(template, monkeypatch)
    kinds = {r["Type"] for r in output["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::ApiGatewayV2::Api", "AWS::IAM::Role"} <= kinds
    function = next(r for r in output["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    assert function["Properties"]["Runtime"] == "provided.al2023"
    assert function["Properties"]["Architectures"] == ["arm64"]
    assert function["Properties"]["LoggingConfig"]["LogFormat"] == "JSON"
    for role_name in ["IngestFunctionRole", "PullFunctionRole", "CompactionFunctionRole"]:
        role = output["Resources"][role_name]
        policies = []
        for policy in role["Properties"]["Policies"]:
            # A conditional policy is {"Fn::If": [condition, policy, AWS::NoValue]}.
            policies.extend(b for b in policy.get("Fn::If", [])[1:] if isinstance(b, dict) and "PolicyDocument" in b)
            if "PolicyDocument" in policy:
                policies.append(policy)
        statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
        if role_name != "CompactionFunctionRole":  # it reads no secret
            assert any("kms:Decrypt" in str(s["Action"]) for s in statements), "the customer-key branch is checked too"
        for statement in statements:
            assert statement["Resource"] != "*", f"unscoped permission in {role_name}: {statement}"
    schedules = [r for r in output["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert len(schedules) == 2  # the pull's and the compaction's


def test_checkov_passes_with_every_skip_justified(template):
    result = subprocess.run([str(VENV_BIN / "checkov"), "-f", str(TEMPLATE), "--framework", "cloudformation",
                             "--skip-download", "--quiet", "--compact"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 40, f"{name}: skip {skip['id']} lacks a justification"


def test_dynamic_partitioning_buffers_at_least_64_mib_and_has_an_error_prefix(template):
    config = stream_config(template)
    assert config["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert config["BufferingHints"]["SizeInMBs"] >= 64
    assert "!{firehose:error-output-type}" in sub_text(config["ErrorOutputPrefix"])
    assert config["CompressionFormat"] == "GZIP"
    types = [p["Type"] for p in config["ProcessingConfiguration"]["Processors"]]
    assert types == ["RecordDeAggregation", "MetadataExtraction", "AppendDelimiterToRecord"]


def test_glue_tables_read_where_firehose_writes(template):
    prefix = sub_text(stream_config(template)["Prefix"])
    assert prefix == "${SchemaName}/collection=!{partitionKeyFromQuery:collection}/dt=!{partitionKeyFromQuery:dt}/"
    firehose_layout = "s3://${DataBucket}/" + prefix.replace("!{partitionKeyFromQuery:collection}", "{collection}") \
        .replace("!{partitionKeyFromQuery:dt}", "{dt}")
    tables = resources(template, "AWS::Glue::Table")
    assert tables, "no Glue tables"
    for name, table in tables.items():
        table_input = table["Properties"]["TableInput"]
        params = table_input["Parameters"]
        location = sub_text(table_input["StorageDescriptor"]["Location"])
        projected = sub_text(params["storage.location.template"]).replace("${!", "{")
        assert params["projection.enabled"] == "true", name
        keys = [k["Name"] for k in table_input["PartitionKeys"]]
        if keys == ["dt"]:
            collection = table_input["Name"]
            assert location == firehose_layout.split("{dt}")[0].replace("{collection}", collection).rsplit("dt=", 1)[0]
            assert projected == firehose_layout.replace("{collection}", collection), name
        else:
            assert keys == ["collection", "dt"], name
            assert projected == firehose_layout, name
            assert location == "s3://${DataBucket}/${SchemaName}/", name


def test_every_collection_the_code_emits_has_a_table_or_is_covered_by_tracks(template):
    tables = {t["Properties"]["TableInput"]["Name"] for t in resources(template, "AWS::Glue::Table").values()}
    tracks = template["Resources"]["TracksTable"]["Properties"]["TableInput"]["Parameters"]
    covered = set(tracks["projection.collection.values"]["Fn::If"][2].split(","))
    # The six of the seed and rejected_events have tables; every documented Klaviyo email
    # topic's collection is in tracks' projection.
    emitted = set(render_glue_tables.COLLECTIONS) | {"rejected_events"}
    assert emitted <= tables
    documented_topics = ["received_email", "opened_email", "clicked_email", "bounced_email", "dropped_email",
                         "marked_email_as_spam", "unsubscribed_from_email_marketing", "unsubscribed",
                         "subscribed_to_email_marketing", "updated_email_preferences",
                         "manually_suppressed_from_email_marketing", "clicked_email_to_unsubscribe"]
    slugs = rust_collection_slugs(documented_topics)
    assert set(slugs) - {"rejected_events"} <= covered, set(slugs) - covered


def rust_collection_slugs(topics):
    """The slugs the Rust mapper gives these topics (asked of the real binary)."""
    binary = os.environ.get("INGEST_BIN")
    assert binary, "INGEST_BIN must name the built binary (tests/run.sh sets it)"
    result = subprocess.run([binary, "collection-for-topic", *[f"event:klaviyo.{t}" for t in topics]],
                            capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_rendered_glue_section_is_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "scripts/render_glue_tables.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_function_fits_inside_api_gateways_timeout(template):
    function = template["Resources"]["IngestFunction"]["Properties"]
    # The stack leaves DELIVERY_TIMEOUT_SECS at its one declared default (settings.rs).
    assert "DELIVERY_TIMEOUT_SECS" not in function["Environment"]["Variables"]
    settings = (ROOT / "shared/io/src/settings.rs").read_text()
    delivery = int(re.search(r'"DELIVERY_TIMEOUT_SECS",\s*Flag::None,(?:\s*//[^\n]*)*\s*Value\("(\d+)"\)', settings).group(1))
    spill_operation_timeout = 8  # aws_clients.rs OPERATION_TIMEOUT
    assert delivery + spill_operation_timeout <= function["Timeout"] < 30
    source = (ROOT / "shared/io/src/aws_clients.rs").read_text()
    assert re.search(r"OPERATION_TIMEOUT: Duration = Duration::from_secs\(8\)", source)


def test_the_stack_repeats_no_default_of_the_functions(template):
    """A variable the stack sets is a parameter, a resource, or a value IAM names too (the
    dead-letter prefix, the pull's state key): never a copy of a default in settings.rs."""
    settings = (ROOT / "shared/io/src/settings.rs").read_text()
    defaults = {}
    for declaration in settings.split("= setting(")[1:]:
        declaration = declaration.split(");")[0]
        var = re.match(r'\s*"([A-Z_]+)"', declaration).group(1)
        value = re.search(r'Value\("([^"]*)"\)', declaration)
        if value:
            defaults[var] = value.group(1)
    assert defaults["SCHEMA_NAME"] == "klaviyo" and defaults["PULL_REQUESTS_PER_MINUTE"] == "700"
    named_by_iam = {"DEAD_LETTER_PREFIX", "PULL_STATE_KEY"}
    for name in ["IngestFunction", "PullFunction", "CompactionFunction"]:
        for var, value in template["Resources"][name]["Properties"]["Environment"]["Variables"].items():
            if isinstance(value, str) and var not in named_by_iam:
                assert defaults.get(var) != value, (name, var, value)


def translated(template, monkeypatch):
    """The template through the SAM transform, offline. The translator runs on packaged
    templates: `sam build`/`sam package` replace CodeUri with the uploaded artifact, as here."""
    from samtranslator.translator.transform import transform

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    class NoManagedPolicies:
        def load(self):
            return {}

    packaged = copy.deepcopy(template)
    for name, function in resources(packaged, "AWS::Serverless::Function").items():
        function["Properties"]["CodeUri"] = f"s3://artifacts/{name}.zip"
    return transform(packaged, {}, NoManagedPolicies())


def test_every_request_reaches_the_function_through_the_default_route(template, monkeypatch):
    output = translated(template, monkeypatch)
    api = output["Resources"]["HttpApi"]["Properties"]["Body"]
    default = api["paths"]["$default"]["x-amazon-apigateway-any-method"]
    uri = default["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
    assert "${IngestFunction.Arn}" in uri, uri
    # The documented routes are there as well; GET /health has no route of its own, so only
    # $default can carry it to the function.
    assert {"/webhooks/klaviyo", "/v1/track", "/v1/batch", "/v1/{callType}"} <= set(api["paths"])


def test_alarms_watch_spills_of_every_route_and_firehose_errors(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    spill = alarms["DeadLetterAlarm"]["Properties"]
    assert (spill["Namespace"], spill["MetricName"]) == ("KlaviyoSource", "RowsSpilled")
    assert "Dimensions" not in spill, "a Route dimension would watch one route only"
    errors = alarms["FirehoseErrorOutputAlarm"]["Properties"]
    metric_filter = template["Resources"]["FirehoseErrorLogMetricFilter"]["Properties"]
    assert metric_filter["LogGroupName"] == {"Ref": "DeliveryStreamLogGroup"}
    assert metric_filter["MetricTransformations"][0]["MetricName"] == errors["MetricName"]
    assert stream_config(template)["CloudWatchLoggingOptions"]["LogGroupName"] == {"Ref": "DeliveryStreamLogGroup"}
    assert alarms["PartitionCountExceededAlarm"]["Properties"]["MetricName"] == "PartitionCountExceeded"


def test_the_dashboard_is_valid_json_and_linked_from_the_outputs(template):
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(re.sub(r"\$\{[A-Za-z:]+\}", "x", body))
    titles = " | ".join(w["properties"]["title"] for w in dashboard["widgets"])
    for needed in ["per route", "per collection", "Spilled", "latency", "freshness", "Firehose errors",
                   "Function errors and duration"]:
        assert needed in titles, needed
    assert "OperationsDashboard" in template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]


def test_an_existing_secret_must_be_named_by_its_full_arn(template):
    pattern = re.compile(template["Parameters"]["ExistingWriteKeySecretArn"]["AllowedPattern"])
    full = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:klaviyo/source-keys-AbC12d"
    assert pattern.fullmatch(full)
    assert pattern.fullmatch("")
    # A partial ARN (the name alone) would not match the function's IAM resource.
    assert not pattern.fullmatch("arn:aws:secretsmanager:eu-west-1:123456789012:secret:klaviyo/source-keys")
    kms = re.compile(template["Parameters"]["ExistingSecretKmsKeyArn"]["AllowedPattern"])
    assert kms.fullmatch("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")


def test_raw_rows_reads_whole_lines_without_a_misplaced_delimiter(template):
    table = template["Resources"]["RawRowsTable"]["Properties"]["TableInput"]
    serde = table["StorageDescriptor"]["SerdeInfo"]
    assert serde == {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"}
    assert "field.delim" not in str(table)


def test_the_redshift_sql_parses_and_its_schemas_do_not_collide():
    import sqlglot
    copy_sql = (ROOT / "sql/redshift/copy_native.sql").read_text()
    spectrum_sql = (ROOT / "sql/redshift/spectrum.sql").read_text()
    statements = [s for s in sqlglot.parse(copy_sql, read="redshift") if s is not None]
    view = next(s for s in statements if s.key == "create" and "deduped" in s.sql())
    subquery = view.find(sqlglot.exp.Subquery)
    assert subquery is not None and subquery.alias, "Redshift needs an alias on a FROM subquery"
    native = set(re.findall(r"create schema if not exists (\w+)", copy_sql))
    external = set(re.findall(r"create external schema if not exists (\w+)", spectrum_sql))
    assert native and external and not native & external, (native, external)


def test_sam_build_opts_in_to_the_cargo_lambda_beta():
    import tomllib
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["build"]["parameters"]["beta_features"] is True


def test_each_function_deploys_a_binary_its_crate_builds(template):
    for name, crate in [("IngestFunction", "functions/endpoint"), ("PullFunction", "functions/pull"),
                        ("CompactionFunction", "functions/compaction")]:
        binary = template["Resources"][name]["Metadata"]["BuildProperties"]["Binary"]
        assert f'name = "{binary}"' in (ROOT / crate / "Cargo.toml").read_text(), (name, binary)


def test_the_pull_runs_alone_on_a_schedule_with_exactly_the_access_it_needs(template):
    pull = template["Resources"]["PullFunction"]
    props = pull["Properties"]
    assert pull["Condition"] == "PullOn"
    assert template["Conditions"]["PullOn"] == {"Fn::Equals": [{"Ref": "EnablePull"}, "true"]}
    assert template["Parameters"]["EnablePull"]["AllowedValues"] == ["true", "false"]
    # Reserved concurrency is a choice: an account at the minimum quota cannot reserve any.
    assert props["ReservedConcurrentExecutions"] == {"Fn::If": ["ReservePullConcurrency", 1, {"Ref": "AWS::NoValue"}]}
    assert template["Parameters"]["PullReservedConcurrency"]["AllowedValues"] == [0, 1]
    # No Lambda retry of an asynchronous invocation, and no late run queued beside the next.
    assert props["EventInvokeConfig"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    assert "Events" not in props, "the schedule is a resource of its own, without a fixed name"
    # Every variable it is given is one the code reads (the README's table lists exactly those).
    readme = (ROOT / "README.md").read_text()
    for name in props["Environment"]["Variables"]:
        assert f"| `{name}` |" in readme, name
    assert "DELIVERY_STREAM_NAME" not in props["Environment"]["Variables"], "the pull writes straight to S3"
    statements = [s for policy in props["Policies"] if isinstance(policy, dict) and "Statement" in policy
                  for s in policy["Statement"]]
    by_sid = {s["Sid"]: s for s in statements}
    assert sub_text(by_sid["ReadAndWriteTheStateAndIdLedgers"]["Resource"]) == "${DataBucket.Arn}/pull-state/*"
    assert props["Environment"]["Variables"]["PULL_STATE_KEY"].startswith("pull-state/")
    assert sorted(by_sid["ReadAndWriteTheStateAndIdLedgers"]["Action"]) == ["s3:GetObject", "s3:PutObject"]
    assert sub_text(by_sid["WriteRawObjectsToTheLake"]["Resource"]) == "${DataBucket.Arn}/${SchemaName}/*"
    # A GetObject carries no s3:prefix: a condition on it would leave a missing object a 403.
    assert by_sid["TellAMissingStateFromADeniedOne"]["Action"] == "s3:ListBucket"
    assert "Condition" not in by_sid["TellAMissingStateFromADeniedOne"]
    assert not any("firehose" in str(policy).lower() for policy in props["Policies"])

    # The alarms read the metric names the function writes.
    code = (ROOT / "shared/io/src/metrics.rs").read_text()
    refused = template["Resources"]["PullKeyRefusedAlarm"]["Properties"]
    assert refused["MetricName"] == "PullKeyRefused" and '"PullKeyRefused"' in code
    lag = template["Resources"]["PullCursorLagAlarm"]["Properties"]
    by_id = {m["Id"]: m for m in lag["Metrics"]}
    assert by_id["lag"]["MetricStat"]["Metric"]["MetricName"] == "PullCursorLagSeconds" and '"PullCursorLagSeconds"' in code
    assert by_id["refused"]["MetricStat"]["Metric"]["MetricName"] == "PullKeyRefused"
    # While the key is refused the lag alarm stays quiet (one alarm for one problem); a
    # period with no lag at all (no run finished) breaches.
    assert by_id["lagUnlessRefused"]["Expression"] == "IF(FILL(refused, 0) > 0, 0, FILL(lag, 86400))"
    assert lag["Threshold"] == 3600 and lag["TreatMissingData"] == "breaching"


def test_schedules_have_no_fixed_name_so_two_stacks_deploy_in_one_region(template, monkeypatch):
    output = translated(template, monkeypatch)
    schedules = {n: r for n, r in output["Resources"].items() if r["Type"] == "AWS::Scheduler::Schedule"}
    assert set(schedules) == {"PullFunctionSchedule", "CompactionFunctionSchedule"}
    for name, schedule in schedules.items():
        props = schedule["Properties"]
        assert "Name" not in props, f"{name} has a fixed name"
        assert props["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 0}
        function = name.removesuffix("Schedule")
        assert props["Target"]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
        role = output["Resources"][props["Target"]["RoleArn"]["Fn::GetAtt"][0]]
        [statement] = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        assert statement == {"Effect": "Allow", "Action": "lambda:InvokeFunction",
                             "Resource": {"Fn::GetAtt": [function, "Arn"]}}
    assert schedules["PullFunctionSchedule"]["Condition"] == "PullOn"


def test_the_compaction_reads_the_error_prefix_the_stream_writes_and_may_empty_it(template):
    """The compaction reads Firehose's error records under FIREHOSE_ERRORS_PREFIX + schema:
    the stream's ErrorOutputPrefix must start there, and the function may read and delete
    exactly there."""
    source = (ROOT / "shared/io/src/tables/compaction_run.rs").read_text()
    [prefix] = re.findall(r'pub const FIREHOSE_ERRORS_PREFIX: &str = "([^"]+)";', source)
    stream = template["Resources"]["DeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert stream["ErrorOutputPrefix"]["Fn::Sub"].startswith(prefix + "${SchemaName}/")
    statements = template["Resources"]["CompactionFunction"]["Properties"]["Policies"][0]["Statement"]
    [spilled] = [s for s in statements if s["Sid"] == "CompactTheSpilledRows"]
    assert {"Fn::Sub": "${DataBucket.Arn}/" + prefix + "${SchemaName}/*"} in spilled["Resource"]
    assert sorted(spilled["Action"]) == ["s3:DeleteObject", "s3:GetObject"]


def test_replaced_table_versions_leave_the_bucket_within_a_day(template):
    """The compaction deletes superseded versions after an hour; the versioned bucket keeps a
    noncurrent copy of each, which must go within a day, not after the bucket-wide 30."""
    rules = template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [tables] = [r for r in rules if r.get("Prefix") == "_tables/"]
    assert tables["Status"] == "Enabled" and tables["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 1


def test_the_compaction_registers_the_tables_in_the_schemas_database_and_the_raw_ones_live_apart(template):
    resources = template["Resources"]
    env = resources["CompactionFunction"]["Properties"]["Environment"]["Variables"]
    assert env["GLUE_DATABASE"] == {"Ref": "GlueDatabase"}
    assert resources["GlueDatabase"]["Properties"]["DatabaseInput"]["Name"] == {"Ref": "SchemaName"}
    assert resources["RawGlueDatabase"]["Properties"]["DatabaseInput"]["Name"] == {"Fn::Sub": "${SchemaName}_raw"}
    raw_tables = [r for r in resources.values() if r["Type"] == "AWS::Glue::Table"]
    assert raw_tables and all(r["Properties"]["DatabaseName"] == {"Ref": "RawGlueDatabase"} for r in raw_tables)
    statements = resources["CompactionFunction"]["Properties"]["Policies"][0]["Statement"]
    [glue] = [s for s in statements if s["Sid"] == "RegisterTheTables"]
    assert sorted(glue["Action"]) == sorted(["glue:GetTable", "glue:CreateTable", "glue:UpdateTable",
                                             "glue:GetPartition", "glue:CreatePartition", "glue:UpdatePartition"])


def test_a_multi_region_kms_key_is_accepted_for_an_existing_secret(template):
    """AWS's own example of a multi-Region key ARN ("Multi-Region keys in AWS KMS", key
    identifiers: `mrk-` then 32 hex digits) must pass the parameter's pattern."""
    pattern = template["Parameters"]["ExistingSecretKmsKeyArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab")
    assert re.fullmatch(pattern, "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert not re.fullmatch(pattern, "arn:aws:kms:us-east-1:111122223333:alias/my-key")


def test_the_stream_has_the_alarms_aws_recommends_for_firehose(template):
    """"Implement best practices with CloudWatch Alarms" (Firehose developer guide) names
    DeliveryToS3.DataFreshness, ThrottledRecords and IncomingBytes against BytesPerSecondLimit."""
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = {a.get("MetricName") for a in alarms if a.get("Namespace") == "AWS/Firehose"}
    assert {"DeliveryToS3.DataFreshness", "ThrottledRecords"} <= watched
    math = [a for a in alarms if "Metrics" in a]
    names = [{m["MetricStat"]["Metric"]["MetricName"] for m in a["Metrics"] if "MetricStat" in m} for a in math]
    assert {"IncomingBytes", "BytesPerSecondLimit"} in names


def test_old_data_moves_to_intelligent_tiering_and_rewritten_prefixes_keep_old_versions_a_day(template):
    rules = {r["Id"]: r for r in template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    tiered = {json.dumps(r.get("Prefix"), sort_keys=True) for r in rules.values()
              if any(t["StorageClass"] == "INTELLIGENT_TIERING" for t in r.get("Transitions", []))}
    assert tiered == {json.dumps({"Fn::Sub": "${SchemaName}/"}), json.dumps("_tables/")}
    for rule in rules.values():
        for transition in rule.get("Transitions", []):
            assert transition["TransitionInDays"] == {"Ref": "IntelligentTieringAfterDays"}
    for prefix in ("_tables/", "pull-state/"):
        [rule] = [r for r in rules.values() if r.get("Prefix") == prefix]
        assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 1, prefix


def test_the_workgroup_cancels_a_query_past_the_scan_cutoff(template):
    config = template["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    # "The minimum value is 10 MB" (Athena WorkGroupConfiguration).
    assert template["Parameters"]["AthenaBytesScannedCutoff"]["MinValue"] >= 10_000_000


def test_every_documented_query_on_an_injected_projection_names_its_collection():
    """Athena refuses a query on a table whose `collection` is an injected projection unless
    the query names it with = or IN ("Use dynamic ID partitioning", Athena user guide)."""
    texts = [(ROOT / "README.md").read_text()] + [p.read_text() for p in (ROOT / "docs").glob("*.md")]
    texts += [p.read_text() for p in (ROOT / "sql").rglob("*.sql")]
    queries = [q for text in texts for q in re.findall(r"(?is)\bselect\b.*?(?:;|```|$)", text)]
    injected = [q for q in queries if re.search(r"\b(all_tracks|raw_rows)\b", q)]
    assert injected, "the querying guide shows a query on raw_rows"
    for query in injected:
        assert re.search(r"collection\s*(=|in\s*\()", query, re.I), query


def test_free_text_survives_a_native_copy():
    copy_sql = (ROOT / "sql/redshift/copy_native.sql").read_text()
    for column in ("email_subject", "campaign_name"):
        assert re.search(rf"\b{column} varchar\(65535\)", copy_sql), column


def test_the_compaction_may_delete_raw_objects_only_when_a_retention_is_set(template):
    statements = template["Resources"]["CompactionFunction"]["Properties"]["Policies"][0]["Statement"]
    [raw] = [s for s in statements if s["Sid"] == "ReadTheRawLanding"]
    assert raw["Action"] == {"Fn::If": ["HasRawRetention", ["s3:GetObject", "s3:DeleteObject"], "s3:GetObject"]}
    assert template["Resources"]["CompactionFunction"]["Properties"]["Environment"]["Variables"][
        "RAW_RETENTION_DAYS"] == {"Ref": "RawRetentionDays"}
    assert template["Parameters"]["RawRetentionDays"]["Default"] == 0


def test_every_stack_parameter_has_a_row_in_the_parameter_table(template):
    """docs/operations.md's table (linked from the README's Deploy section) lists every
    parameter `sam deploy --guided` asks for, the pull's included."""
    table = (ROOT / "docs/operations.md").read_text()
    missing = [name for name in template["Parameters"]
               if f"| `{name}` |" not in table and f"`{name}` /" not in table and f"/ `{name}` |" not in table]
    assert missing == [], f"parameters without a row in docs/operations.md: {missing}"
