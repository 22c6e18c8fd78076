"""Fixtures of the end-to-end tests: the real `klaviyo-source` binary in local mode."""

import copy
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

WRITE_KEY = "e2e-current-write-key-01"
PREVIOUS_KEY = "e2e-previous-write-key-2"
SEGMENT_KEY = "e2e-segment-write-key-01"
LISTENING = re.compile(r"Listening on (http://[0-9.:]+)/webhooks/klaviyo")


def ingest_binary() -> Path:
    """The binary under test; tests/run.sh builds it and names it in INGEST_BIN."""
    path = os.environ.get("INGEST_BIN")
    if not path or not Path(path).is_file():
        pytest.fail("INGEST_BIN must name the built klaviyo-source binary (tests/run.sh sets it)")
    return Path(path)


class LocalEndpoint:
    """A running `klaviyo-source serve` and its lake."""

    def __init__(self, lake, extra_args=(), env=None):
        self.lake = lake
        lake_args = ["--lake", str(lake)] if lake is not None else []
        args = [str(ingest_binary()), "serve", "--listen", "127.0.0.1:0", *lake_args, *extra_args]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **(env or {})})
        self.printed = []
        for line in self.process.stdout:
            self.printed.append(line)
            match = LISTENING.search(line)
            if match:
                self.base_url = match.group(1)
                break
        else:
            raise RuntimeError(f"endpoint did not start: {self.process.stderr.read()}")

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/webhooks/klaviyo"

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def logs(self) -> str:
        self.stop()
        return self.process.stderr.read()


@pytest.fixture
def endpoint(tmp_path):
    server = LocalEndpoint(tmp_path / "lake", ["--write-key", WRITE_KEY, "--previous-write-key", PREVIOUS_KEY,
                                               "--segment-write-key", SEGMENT_KEY])
    yield server
    if server.process.poll() is None:
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StackEmulator:
    """tests/emulator/stack_emulator.py in a child process: moto's S3, Firehose and Secrets
    Manager, with the Firehose behaviour template.yaml configures and fault injection."""

    def __init__(self, tmp: Path):
        ready = tmp / "emulator-ready.json"
        # The emulator logs every request; to a file, never to a pipe nobody reads (a full
        # pipe blocks its request threads, and every later call to it hangs).
        self.log = tmp / "emulator.log"
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/emulator/stack_emulator.py"), "--port", str(free_port()),
             "--control-port", str(free_port()), "--write-key", WRITE_KEY, "--write-key", PREVIOUS_KEY,
             "--segment-write-key", SEGMENT_KEY,
             "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"), text=True)
        deadline = time.time() + 60
        while not ready.exists():
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"emulator did not start: {self.log.read_text()[-4000:]}")
            time.sleep(0.1)
        time.sleep(0.1)
        self.info = json.loads(ready.read_text())
        import boto3
        self.s3 = boto3.client("s3", endpoint_url=self.info["endpoint"], region_name=self.info["region"],
                               aws_access_key_id="test", aws_secret_access_key="test")
        self.glue = boto3.client("glue", endpoint_url=self.info["endpoint"], region_name=self.info["region"],
                                 aws_access_key_id="test", aws_secret_access_key="test")

    def env(self, **overrides) -> dict:
        """The environment the function reads, pointed at this emulator."""
        env = {
            "AWS_ENDPOINT_URL": self.info["endpoint"], "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": self.info["region"],
            "DELIVERY_STREAM_NAME": self.info["stream"], "DEAD_LETTER_BUCKET": self.info["bucket"],
            "WRITE_KEY_SECRET_ARN": self.info["secret_arn"], "EMIT_METRICS": "true",
            "WRITE_KEY": "", "WRITE_KEY_PREVIOUS": "", "LAKE_DIR": "",
        }
        env.update(overrides)
        return env

    def control(self, path: str, payload=None):
        data = json.dumps(payload or {}).encode() if payload is not None or path != "/stats" else None
        request = urllib.request.Request(self.info["control"] + path, data=data,
                                         method="GET" if data is None else "POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def keys(self, prefix: str = ""):
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.info["bucket"], Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def download(self, prefix: str, into: Path) -> Path:
        """Copies objects under prefix into a directory with the same keys (DuckDB's S3
        extension cannot be fetched offline)."""
        for key in self.keys(prefix):
            target = into / key
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(self.info["bucket"], key, str(target))
        return into

    def clear(self):
        keys = self.keys()
        for start in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.info["bucket"],
                                   Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
        for database in (self.info["database"], self.info["database"] + "_raw"):
            for table in self.glue.get_tables(DatabaseName=database)["TableList"]:
                self.glue.delete_table(DatabaseName=database, Name=table["Name"])
        self.control("/reset", {})

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    stack = StackEmulator(tmp_path_factory.mktemp("emulator"))
    yield stack
    stack.stop()


def webhook_body(count: int, id_prefix: str) -> bytes:
    """A signed-webhook body with `count` events cycling through the six collections, each
    with a distinct Klaviyo event id."""
    template = json.loads((ROOT / "tests/fixtures/webhooks/all_six_collections.json").read_text())
    events = []
    for i in range(count):
        event = copy.deepcopy(template["data"][i % len(template["data"])])
        event["payload"]["data"]["id"] = f"{id_prefix}{i:06d}"
        events.append(event)
    template["data"] = events
    return json.dumps(template).encode()


class KlaviyoApiDouble:
    """A double of Klaviyo's API (tests/doubles/<script>) in a child process."""

    API_KEY = "pk_test_double_0123"

    def __init__(self, script: str = "klaviyo_api.py"):
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/doubles" / script), "--port", "0", "--api-key", self.API_KEY],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise RuntimeError(f"Klaviyo API double did not start: {self.process.stderr.read()}")

    def post(self, path: str, payload: dict):
        request = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/__stats", timeout=10) as response:
            return json.loads(response.read())

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def klaviyo_api_session():
    double = KlaviyoApiDouble()
    yield double
    double.stop()


@pytest.fixture
def klaviyo_api(klaviyo_api_session):
    klaviyo_api_session.post("/__reset", {})
    yield klaviyo_api_session


@pytest.fixture(scope="session")
def events_api_session():
    double = KlaviyoApiDouble("klaviyo_events_api.py")
    yield double
    double.stop()


@pytest.fixture
def events_api(events_api_session):
    events_api_session.post("/__reset", {})
    yield events_api_session


def webhook_for_profiles(profile_ids, id_prefix: str) -> bytes:
    """A webhook body with one Email Opened event per profile id."""
    template = json.loads((ROOT / "tests/fixtures/webhooks/all_six_collections.json").read_text())
    opened = template["data"][1]
    events = []
    for i, profile_id in enumerate(profile_ids):
        event = copy.deepcopy(opened)
        event["payload"]["data"]["id"] = f"{id_prefix}{i:06d}"
        event["payload"]["data"]["relationships"]["profile"]["data"]["id"] = profile_id
        events.append(event)
    template["data"] = events
    return json.dumps(template).encode()


def post_segment(base_url: str, path: str, payload: dict, write_key: str):
    """POSTs a Segment HTTP Tracking API call with Basic auth (write key, empty password)."""
    import base64
    from send_sample_webhook import post
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return post(f"{base_url}{path}", json.dumps(payload).encode(),
                {"Content-Type": "application/json", "Authorization": f"Basic {token}"})


SEGMENT_BATCH = {
    "batch": [
        {"type": "track", "event": "Email Opened", "userId": "crm-10045", "messageId": "seg-e2e-1",
         "properties": {"email_id": "M1", "email_subject": "Hello", "campaign_name": "Spring"},
         "originalTimestamp": "2024-01-04T18:04:00Z"},
        {"type": "track", "event": "Unsubscribed", "anonymousId": "li.wei@example.com", "messageId": "seg-e2e-2",
         "properties": {"list_name": "Newsletter"}, "originalTimestamp": "2024-01-04T18:04:30Z"},
        {"type": "identify", "userId": "crm-10045", "traits": {"plan": "pro"}},
    ],
    "context": {"library": {"name": "analytics-python", "version": "2.3.1"}},
}
