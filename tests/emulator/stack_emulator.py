#!/usr/bin/env python3
"""The deployed stack's AWS services, on this machine: moto's S3, Firehose, Secrets Manager
and Glue Data Catalog, with Firehose extended to do what template.yaml configures.

moto's own Firehose writes one object per call and ignores dynamic partitioning. This
emulator replaces its PutRecordBatch with the behaviour the template asks for, read from
template.yaml itself (never a second hand-written copy):

- the API limits (500 records, 4 MiB per call, 1,000 KiB per record) as InvalidArgument;
- RecordDeAggregation (JSON): each record split into its JSON objects;
- MetadataExtraction with Debian's jq 1.6 (the engine Firehose names JQ-1.6), run on every
  sub-record with the template's query;
- the Prefix with !{partitionKeyFromQuery:...} and !{timestamp:...} evaluated, records
  whose keys are missing going to ErrorOutputPrefix;
- AppendDelimiterToRecord and GZIP.

Objects are written at once (real Firehose buffers up to 64 MiB / 60 s; tests need not wait).

With --persist-dir, every S3 object is also kept on disk and loaded again at start, so the
emulator can be restarted mid-test the way a Firehose endpoint can fail while S3 keeps what
it has: S3 is durable, the emulator's memory is not.

Faults are injected through a control port: POST /faults with JSON
{"throttle_calls": n, "fail_calls": n, "record_failure_rate": p, "fail_records_for_calls": n}
(counts are consumed call by call), GET /stats, POST /reset.

    python tests/emulator/stack_emulator.py --port 4566 --control-port 4567
"""

import argparse
import base64
import gzip
import json
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from cfnlint.decode import decode
from moto.firehose import models as firehose_models
from moto.core.exceptions import JsonRESTError
from moto.firehose.exceptions import InvalidArgumentException
from moto.glue.models import GlueBackend
from moto.s3.models import S3Backend, s3_backends
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
STREAM = "klaviyo-source-test"
BUCKET = "klaviyo-source-lake-test"

# AWS's numbers, stated here from AWS's pages (never imported from the project's code, so a
# misreading there cannot be mirrored here). Sources and tests: tests/emulator/README.md.
# PutRecordBatch limits: https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
# "Record deaggregation by JSON or by delimiter is capped at 500 per record."
# https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-multirecord-deaggergation.html
MAX_DEAGGREGATED_OBJECTS_PER_RECORD = 500
# "Once the active partitions count reaches the limit of 500 per Firehose stream, the rest of
# the records in the Firehose stream are delivered to the specified S3 error bucket prefix
# (activePartitionExceeded)." https://docs.aws.amazon.com/firehose/latest/dev/buffering.html
MAX_ACTIVE_PARTITIONS = 500
# "Amazon Data Firehose Quota": with Direct PUT, 5 MiB/s per stream in US East (N. Virginia),
# US West (Oregon) and Europe (Ireland), 1 MiB/s in the other Regions, combined over
# PutRecord and PutRecordBatch; raised only by a quota increase request.
DIRECT_PUT_BYTES_PER_SECOND = {"us-east-1": 5 * 1024 * 1024, "us-west-2": 5 * 1024 * 1024,
                               "eu-west-1": 5 * 1024 * 1024}
OTHER_REGIONS_BYTES_PER_SECOND = 1024 * 1024


def load_template(path: Path) -> dict:
    template, problems = decode(str(path))
    if problems:
        raise SystemExit(f"template does not parse: {problems}")
    return template


def parameter_defaults(template: dict) -> dict:
    return {name: spec.get("Default", "") for name, spec in template.get("Parameters", {}).items()}


def resolve_sub(value, parameters: dict) -> str:
    """Resolves a Fn::Sub string against parameters; Firehose's own !{...} stay."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: str(parameters[m.group(1)]), text)


class StreamSpec:
    """What template.yaml configures for the delivery stream."""

    def __init__(self, template: dict, parameters: dict):
        config = template["Resources"]["DeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
        self.raw = config
        self.prefix = resolve_sub(config["Prefix"], parameters)
        self.error_prefix = resolve_sub(config["ErrorOutputPrefix"], parameters)
        self.compression = config.get("CompressionFormat", "UNCOMPRESSED")
        self.buffer_mb = config["BufferingHints"]["SizeInMBs"]
        processors = {p["Type"]: {q["ParameterName"]: q["ParameterValue"] for q in p.get("Parameters", [])}
                      for p in config["ProcessingConfiguration"]["Processors"]}
        self.deaggregate = processors.get("RecordDeAggregation", {}).get("SubRecordType")
        self.query = processors["MetadataExtraction"]["MetadataExtractionQuery"]
        self.engine = processors["MetadataExtraction"]["JsonParsingEngine"]
        delimiter = processors.get("AppendDelimiterToRecord", {}).get("Delimiter")
        self.delimiter = None if delimiter is None else delimiter.encode().decode("unicode_escape").encode()


def split_json_objects(data: bytes):
    """RecordDeAggregation with SubRecordType JSON: the JSON objects in a record, in order."""
    text = data.decode("utf-8")
    decoder = json.JSONDecoder()
    position, objects = 0, []
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return objects
        value, end = decoder.raw_decode(text, position)
        objects.append(text[position:end])
        position = end


def run_jq(query: str, documents):
    """Evaluates the query on each document with jq 1.6; one result per document."""
    if not documents:
        return []
    result = subprocess.run(["jq", "-c", query], input="\n".join(documents).encode(),
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"jq failed: {result.stderr.decode()}")
    outputs = [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]
    if len(outputs) != len(documents):
        raise RuntimeError(f"jq gave {len(outputs)} results for {len(documents)} documents")
    return outputs


def run_jq_each(query: str, documents):
    """One result per document; None where jq fails on that document (Firehose sends such a
    record to the error output). Runs all documents at once, one by one only after a failure."""
    try:
        return run_jq(query, documents)
    except RuntimeError:
        results = []
        for document in documents:
            try:
                results.extend(run_jq(query, [document]))
            except RuntimeError:
                results.append(None)
        return results


class Faults:
    """Injected failures, consumed call by call, and what happened."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        if hasattr(self, "released"):
            self.released.set()  # a call still held goes on (and fails) before the reset
        with self.lock:
            self.plan = {"throttle_calls": 0, "fail_calls": 0, "record_failure_rate": 0.0,
                         "fail_records_for_calls": 0}
            self.stats = {"calls": 0, "records": 0, "failed_records": 0, "throttled_calls": 0,
                          "failed_calls": 0, "rows_written": 0, "objects_written": 0,
                          "error_records": 0, "max_objects_per_record": 0, "glue_writes": 0,
                          "throughput_throttled_calls": 0}
            self.random = random.Random(7)
            # A call to hold (see `Faults.hold_if`): {"call": "<substring of its description>"}.
            self.plan["hold"] = None
            # A write to commit and then answer 500, once ({"call": "<text>"}): a request
            # that reached S3 and whose answer the client never got.
            self.plan["lose_answer"] = None
            # The Direct PUT quota, bytes per second; None: the Region's (a test may lower it
            # to reach it with a small burst).
            self.plan["bytes_per_second"] = None
            self.window = [0, 0]
            self.held = threading.Event()
            self.released = threading.Event()

    def configure(self, plan: dict):
        with self.lock:
            self.plan.update(plan)
            if "seed" in plan:
                self.random = random.Random(plan["seed"])

    def next_call(self):
        """Decides this call's fate: 'throttle', 'fail', or the per-record failure rate."""
        with self.lock:
            self.stats["calls"] += 1
            if self.plan["throttle_calls"] > 0:
                self.plan["throttle_calls"] -= 1
                self.stats["throttled_calls"] += 1
                return "throttle", 0.0
            if self.plan["fail_calls"] > 0:
                self.plan["fail_calls"] -= 1
                self.stats["failed_calls"] += 1
                return "fail", 0.0
            rate = 0.0
            if self.plan["fail_records_for_calls"] != 0:
                self.plan["fail_records_for_calls"] -= 1
                rate = self.plan["record_failure_rate"]
            return "ok", rate

    def within_throughput(self, size: int) -> bool:
        """Counts `size` bytes against the stream's Direct PUT quota in the current second;
        False (the call is throttled, nothing taken) when they would pass it."""
        with self.lock:
            limit = self.plan.get("bytes_per_second") or DIRECT_PUT_BYTES_PER_SECOND.get(
                REGION, OTHER_REGIONS_BYTES_PER_SECOND)
            second = int(time.monotonic())
            if second != self.window[0]:
                self.window = [second, 0]
            if self.window[1] + size > limit:
                self.stats["throughput_throttled_calls"] += 1
                return False
            self.window[1] += size
            return True

    def hold_if(self, description: str):
        """Holds the first call whose description ("s3:put <key>", "s3:delete <key> ...",
        "glue:<operation> <table>") contains the planned text, so a test can kill its caller
        at exactly that step; once released the call fails and writes nothing, as a request
        whose client died before it reached the service."""
        with self.lock:
            hold = self.plan.get("hold")
            if not hold or hold["call"] not in description or self.held.is_set():
                return
            self.held.set()
            self.stats["held_call"] = description
        self.released.wait(timeout=300)
        raise JsonRESTError("InternalError", "held and dropped by the emulator", )

    def lose_answer_if(self, description: str) -> bool:
        """Whether this call (already applied) must answer 500 instead of its result: the
        first one whose description contains the planned text."""
        with self.lock:
            lose = self.plan.get("lose_answer")
            if not lose or lose["call"] not in description:
                return False
            self.plan["lose_answer"] = None
            self.stats["lost_answer"] = description
            return True

    def record_fails(self, rate: float) -> bool:
        with self.lock:
            return rate > 0 and self.random.random() < rate


def service_unavailable(message: str) -> JsonRESTError:
    """Firehose's throttling answer: ServiceUnavailableException with HTTP 503, as AWS sends
    it (moto's model-driven errors would say 400, which no SDK retries)."""
    error = JsonRESTError("ServiceUnavailableException", message)
    error.code = 503
    return error


class ExtendedFirehose:
    """The replacement of moto's put_record_batch."""

    def __init__(self, spec: StreamSpec, faults: Faults):
        self.spec = spec
        self.faults = faults

    def put_record_batch(self, backend, delivery_stream_name, records):
        stream = backend.delivery_streams.get(delivery_stream_name)
        if stream is None:
            raise firehose_models.ResourceNotFoundException(f"Firehose {delivery_stream_name} not found.")
        datas = [record["Data"] if isinstance(record["Data"], bytes) else record["Data"].encode()
                 for record in records]
        if len(datas) > MAX_RECORDS_PER_CALL:
            raise InvalidArgumentException(f"{len(datas)} records exceed {MAX_RECORDS_PER_CALL} per call")
        if sum(map(len, datas)) > MAX_BYTES_PER_CALL:
            raise InvalidArgumentException("records exceed 4 MiB per call")
        for data in datas:
            if len(data) > MAX_RECORD_BYTES:
                raise InvalidArgumentException(f"a record of {len(data)} bytes exceeds 1,000 KiB")
        if not self.faults.within_throughput(sum(map(len, datas))):
            raise service_unavailable("Slow down.")
        fate, rate = self.faults.next_call()
        if fate == "throttle":
            raise service_unavailable("Slow down.")
        if fate == "fail":
            raise service_unavailable("Injected whole-call failure.")
        responses, accepted = [], []
        for data in datas:
            if self.faults.record_fails(rate):
                responses.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
            else:
                responses.append({"RecordId": uuid.uuid4().hex})
                accepted.append(data)
        self.deliver(backend, delivery_stream_name, stream.version_id, accepted)
        failed = sum(1 for r in responses if "ErrorCode" in r)
        with self.faults.lock:
            self.faults.stats["records"] += len(datas)
            self.faults.stats["failed_records"] += failed
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": responses}

    def deliver(self, backend, stream_name, version_id, datas):
        """What Firehose does with accepted records: de-aggregate, extract the partition keys,
        group by prefix, and write; whatever fails goes to the error prefix as error records
        (the call itself has already succeeded). One call is one buffer here: real Firehose
        buffers up to 60 s across calls, so its partition count can only be higher."""
        arrival = int(time.time() * 1000)
        now = time.gmtime()
        documents, failures = [], []
        for data in datas:
            if self.spec.deaggregate != "JSON":
                documents.append(data.decode("utf-8", "replace"))
                continue
            try:
                objects = split_json_objects(data)
            except (UnicodeDecodeError, ValueError) as error:
                failures.append(("DynamicPartitioning.DeAggregationFailed", str(error), data))
                continue
            with self.faults.lock:
                stats = self.faults.stats
                stats["max_objects_per_record"] = max(stats["max_objects_per_record"], len(objects))
            documents.extend(objects[:MAX_DEAGGREGATED_OBJECTS_PER_RECORD])
            for extra in objects[MAX_DEAGGREGATED_OBJECTS_PER_RECORD:]:
                failures.append(("DynamicPartitioning.DeAggregationRecordCountLimitExceeded",
                                 f"more than {MAX_DEAGGREGATED_OBJECTS_PER_RECORD} JSON objects in one record",
                                 extra.encode()))
        groups = {}
        for document, partition in zip(documents, run_jq_each(self.spec.query, documents)):
            prefix = None if partition is None else self.partition_prefix(partition)
            if prefix is None:
                failures.append(("DynamicPartitioning.MetadataExtractionFailed",
                                 "the partition keys could not be extracted", document.encode()))
            elif prefix not in groups and len(groups) >= MAX_ACTIVE_PARTITIONS:
                failures.append(("DynamicPartitioning.ActivePartitionsLimitExceeded",
                                 f"more than {MAX_ACTIVE_PARTITIONS} active partitions", document.encode()))
            else:
                groups.setdefault(prefix, []).append(document)
        for prefix, group in groups.items():
            self.write_object(backend, stream_name, version_id, prefix,
                              b"".join(d.encode() + (self.spec.delimiter or b"") for d in group), now)
            with self.faults.lock:
                self.faults.stats["rows_written"] += len(group)
        by_type = {}
        for code, message, raw in failures:
            error_type = "activePartitionExceeded" if code.endswith("ActivePartitionsLimitExceeded") \
                else "partitioning-failed"
            by_type.setdefault(error_type, []).append(json.dumps({
                "attemptsMade": 1, "arrivalTimestamp": arrival, "errorCode": code, "errorMessage": message,
                "attemptEndingTimestamp": int(time.time() * 1000),
                "rawData": base64.b64encode(raw).decode()}).encode() + b"\n")
        for error_type, lines in by_type.items():
            prefix = self.spec.error_prefix.replace("!{firehose:error-output-type}", error_type)
            prefix = re.sub(r"!\{timestamp:([^}]+)\}", lambda m: java_time(m.group(1), now), prefix)
            self.write_object(backend, stream_name, version_id, prefix, b"".join(lines), now)
            with self.faults.lock:
                self.faults.stats["error_records"] += len(lines)

    def write_object(self, backend, stream_name, version_id, prefix, body, now):
        if self.spec.compression == "GZIP":
            body = gzip.compress(body)
        stamp = time.strftime("%Y-%m-%d-%H-%M-%S", now)
        suffix = ".gz" if self.spec.compression == "GZIP" else ""
        key = f"{prefix}{stream_name}-{version_id}-{stamp}-{uuid.uuid4()}{suffix}"
        s3_backends[backend.account_id][backend.partition].put_object(BUCKET, key, body)
        with self.faults.lock:
            self.faults.stats["objects_written"] += 1

    def partition_prefix(self, partition):
        """The evaluated Prefix, or None when a key is missing, empty or not a string."""
        def key(match):
            value = partition.get(match.group(1)) if isinstance(partition, dict) else None
            if not isinstance(value, str) or not value:
                raise KeyError(match.group(1))
            return value

        try:
            return re.sub(r"!\{partitionKeyFromQuery:([A-Za-z0-9_]+)\}", key, self.spec.prefix)
        except KeyError:
            return None


def java_time(pattern: str, now) -> str:
    """A Java DateTimeFormatter pattern of the kinds the template uses, evaluated."""
    python = pattern.replace("yyyy", "%Y").replace("MM", "%m").replace("dd", "%d").replace("HH", "%H")
    return time.strftime(python, now)


class ControlHandler(BaseHTTPRequestHandler):
    faults: Faults = None

    def _answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            with self.faults.lock:
                self._answer(200, {**self.faults.stats, "held": self.faults.held.is_set()})
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        payload = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/faults":
            self.faults.configure(payload)
            self._answer(200, self.faults.plan)
        elif self.path == "/release":
            self.faults.released.set()
            self._answer(200, {})
        elif self.path == "/reset":
            self.faults.reset()
            self._answer(200, {})
        else:
            self._answer(404, {"error": "not_found"})

    def log_message(self, *args):
        pass


GLUE_WRITES = ["create_table", "update_table", "delete_table", "create_partition", "update_partition",
               "delete_partition", "batch_create_partition", "batch_update_partition",
               "batch_delete_partition"]


def emulate_glue(faults: Faults):
    """moto's Glue Data Catalog, with what moto leaves out: every write is counted (the
    `glue_writes` statistic), and a partition must name a value for each of its table's
    partition keys, in their order."""

    def counted(name):
        original = getattr(GlueBackend, name)

        def call(self, *args, **kwargs):
            faults.hold_if(f"glue:{name} {args[1] if len(args) > 1 else ''}")
            with faults.lock:
                faults.stats["glue_writes"] += 1
            return original(self, *args, **kwargs)
        return call

    for name in GLUE_WRITES:
        setattr(GlueBackend, name, counted(name))

    def checked(name, input_position):
        original = getattr(GlueBackend, name)

        def call(self, database_name, table_name, *args, **kwargs):
            partition_input = args[input_position]
            keys = self.get_table(database_name, table_name).as_dict().get("PartitionKeys", [])
            if len(partition_input.get("Values", [])) != len(keys):
                raise JsonRESTError("InvalidInputException",
                                    f"{len(keys)} partition keys, {len(partition_input.get('Values', []))} values")
            return original(self, database_name, table_name, *args, **kwargs)
        return call

    GlueBackend.create_partition = checked("create_partition", 0)
    GlueBackend.update_partition = checked("update_partition", 0)


def holdable_s3(faults: Faults):
    """S3 writes and deletes a test can hold (`Faults.hold_if`)."""
    original_put = S3Backend.put_object
    original_delete = S3Backend.delete_object
    original_delete_many = S3Backend.delete_objects

    def put_object(self, bucket_name, key_name, *args, **kwargs):
        faults.hold_if(f"s3:put {key_name}")
        result = original_put(self, bucket_name, key_name, *args, **kwargs)
        if faults.lose_answer_if(f"s3:put {key_name}"):
            error = JsonRESTError("InternalError", "applied, and the answer lost by the emulator")
            error.code = 500
            raise error
        return result

    def delete_object(self, bucket_name, key_name, *args, **kwargs):
        faults.hold_if(f"s3:delete {key_name}")
        return original_delete(self, bucket_name, key_name, *args, **kwargs)

    def delete_objects(self, bucket_name, objects, *args, **kwargs):
        faults.hold_if("s3:delete " + " ".join(o["Key"] for o in objects))
        return original_delete_many(self, bucket_name, objects, *args, **kwargs)

    S3Backend.put_object = put_object
    S3Backend.delete_object = delete_object
    S3Backend.delete_objects = delete_objects


def persist_s3(directory: Path):
    """Mirrors every S3 object write and delete into `directory`/<bucket>/<key>."""
    original_put, original_delete = S3Backend.put_object, S3Backend.delete_object

    def put_object(self, bucket_name, key_name, value, *args, **kwargs):
        result = original_put(self, bucket_name, key_name, value, *args, **kwargs)
        target = directory / bucket_name / key_name
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_bytes(bytes(value))
        temporary.replace(target)
        return result

    def delete_object(self, bucket_name, key_name, *args, **kwargs):
        result = original_delete(self, bucket_name, key_name, *args, **kwargs)
        (directory / bucket_name / key_name).unlink(missing_ok=True)
        return result

    S3Backend.put_object = put_object
    S3Backend.delete_object = delete_object


def restore_s3(directory: Path):
    """Loads the persisted objects back into the (new, empty) bucket, straight into moto's
    backend (fast: a restart should take seconds, not minutes)."""
    root = directory / BUCKET
    if not root.is_dir():
        return
    backend = s3_backends[ACCOUNT]["aws"]
    for path in root.rglob("*"):
        if path.is_file() and not path.name.endswith(".tmp"):
            backend.put_object(BUCKET, path.relative_to(root).as_posix(), path.read_bytes())


def create_stack(endpoint: str, template: dict, parameters: dict, spec: StreamSpec, write_keys,
                 persist_dir: Path | None = None, segment_key: str = ""):
    """Creates the bucket, stream and secret the template describes. With `persist_dir`, the
    persisted objects are restored and mirroring starts before the stream exists, so no
    write can slip past the mirror."""
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    s3 = session.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    if persist_dir:
        restore_s3(persist_dir)
        persist_s3(persist_dir)
    destination = {
        "BucketARN": f"arn:aws:s3:::{BUCKET}",
        "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
        "Prefix": spec.prefix,
        "ErrorOutputPrefix": spec.error_prefix,
        "CompressionFormat": spec.compression,
        "BufferingHints": spec.raw["BufferingHints"],
        "DynamicPartitioningConfiguration": spec.raw["DynamicPartitioningConfiguration"],
        "ProcessingConfiguration": spec.raw["ProcessingConfiguration"],
    }
    session.client("firehose", endpoint_url=endpoint).create_delivery_stream(
        DeliveryStreamName=STREAM, DeliveryStreamType="DirectPut", ExtendedS3DestinationConfiguration=destination)
    secret_template = template["Resources"]["WriteKeySecret"]["Properties"]["SecretString"]
    secret_string = resolve_sub(secret_template, {**parameters, "WriteKey": write_keys[0],
                                                  "WriteKeyPrevious": write_keys[1] if len(write_keys) > 1 else "",
                                                  "SegmentWriteKey": segment_key})
    # The stack's two Glue databases: the tables the compaction registers, and the raw ones.
    glue = session.client("glue", endpoint_url=endpoint)
    for resource in ("GlueDatabase", "RawGlueDatabase"):
        name = template["Resources"][resource]["Properties"]["DatabaseInput"]["Name"]
        name = parameters[name["Ref"]] if isinstance(name, dict) and "Ref" in name else resolve_sub(name, parameters)
        glue.create_database(DatabaseInput={"Name": name})
    secret = session.client("secretsmanager", endpoint_url=endpoint).create_secret(
        Name="klaviyo-source-write-keys", SecretString=secret_string)
    return secret["ARN"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--control-port", type=int, default=4567)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--write-key", action="append", default=[])
    parser.add_argument("--segment-write-key", default="")
    parser.add_argument("--ready-file", type=Path, help="written with the endpoint and secret ARN once ready")
    parser.add_argument("--persist-dir", type=Path, help="keep S3 objects on disk across restarts")
    args = parser.parse_args()

    template = load_template(args.template)
    parameters = parameter_defaults(template)
    spec = StreamSpec(template, parameters)
    faults = Faults()
    extended = ExtendedFirehose(spec, faults)
    emulate_glue(faults)
    holdable_s3(faults)
    firehose_models.FirehoseBackend.put_record_batch = (
        lambda backend, name, records: extended.put_record_batch(backend, name, records))

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{args.port}"
    secret_arn = create_stack(endpoint, template, parameters, spec, args.write_key or ["emulator-write-key-0001"],
                              args.persist_dir, args.segment_write_key)

    ControlHandler.faults = faults
    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), ControlHandler)
    ready = {"endpoint": endpoint, "control": f"http://127.0.0.1:{args.control_port}", "bucket": BUCKET,
             "stream": STREAM, "secret_arn": secret_arn, "region": REGION,
             "database": parameters["SchemaName"]}
    if args.ready_file:
        args.ready_file.write_text(json.dumps(ready))
    print(json.dumps(ready), flush=True)
    try:
        control.serve_forever()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
