"""Every object the emulated stack writes under the schema prefix is read by some Glue
table: its key matches a table's storage.location.template, and the table's partition
projection (as Athena evaluates it: enum lists, injected values, date ranges relative to
NOW) includes its partition values. Rows no table covers would be written but invisible."""

import copy
import datetime as dt
import json
import re

import pytest
from cfnlint.decode import decode
from conftest import ROOT, SEGMENT_KEY, WRITE_KEY, LocalEndpoint, post_segment
from send_sample_webhook import post_webhook

SCHEMA = "klaviyo"
# Not lake data: Firehose's error output and the dead-letter store are for operators (the
# alarms watch them), not tables.
OPERATOR_PREFIXES = ("firehose-errors/", "dead-letter/", "athena-results/")


def resolve(value, bucket):
    """Resolves the template's Fn::Sub and Fn::If (conditions false: default parameters)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        # ${!name} is Fn::Sub's escape for a literal ${name}: the projection placeholder.
        return text.replace("${DataBucket}", bucket).replace("${SchemaName}", SCHEMA).replace("${!", "${")
    if isinstance(value, dict) and "Fn::If" in value:
        return resolve(value["Fn::If"][2], bucket)
    return value


def projected_date_range(spec: str, today: dt.date):
    def bound(text):
        match = re.fullmatch(r"NOW(?:([+-])(\d+)(YEARS|MONTHS|DAYS))?", text)
        if not match:
            return dt.date.fromisoformat(text)
        sign, amount, unit = match.groups()
        if not sign:
            return today
        amount = int(amount) * (1 if sign == "+" else -1)
        if unit == "YEARS":
            return today.replace(year=today.year + amount)
        if unit == "MONTHS":
            month = today.month - 1 + amount
            return today.replace(year=today.year + month // 12, month=month % 12 + 1)
        return today + dt.timedelta(days=amount)

    start, end = spec.split(",")
    return bound(start), bound(end)


class Table:
    def __init__(self, table_input, bucket):
        self.name = table_input["Name"]
        params = table_input["Parameters"]
        self.params = {k: resolve(v, bucket) for k, v in params.items()}
        template = self.params["storage.location.template"]
        pattern = re.escape(template)
        for key in [k["Name"] for k in table_input["PartitionKeys"]]:
            pattern = pattern.replace(re.escape("${" + key + "}"), f"(?P<{key}>[^/]+)")
        self.pattern = re.compile(pattern)

    def covers(self, location: str, today: dt.date) -> bool:
        match = self.pattern.fullmatch(location)
        if not match:
            return False
        for key, value in match.groupdict().items():
            kind = self.params[f"projection.{key}.type"]
            if kind == "injected":
                continue
            if kind == "enum" and value not in self.params[f"projection.{key}.values"].split(","):
                return False
            if kind == "date":
                assert self.params[f"projection.{key}.format"] == "yyyy-MM-dd"
                try:
                    day = dt.date.fromisoformat(value)
                except ValueError:
                    return False
                start, end = projected_date_range(self.params[f"projection.{key}.range"], today)
                if not start <= day <= end:
                    return False
        return True


@pytest.fixture
def stack(emulator):
    emulator.clear()
    yield emulator
    emulator.clear()


def dated_webhook(datetimes):
    template = json.loads((ROOT / "tests/fixtures/webhooks/all_six_collections.json").read_text())
    events = []
    for i, when in enumerate(datetimes):
        event = copy.deepcopy(template["data"][i % len(template["data"])])
        event["payload"]["data"]["id"] = f"cover{i:04d}"
        event["payload"]["data"]["attributes"]["datetime"] = when
        events.append(event)
    events[-1]["topic"] = "event:klaviyo.received_sms"
    template["data"] = events
    return json.dumps(template).encode()


def test_every_key_the_stack_writes_is_covered_by_a_table_projection(stack):
    today = dt.datetime.now(dt.timezone.utc).date()
    ahead = (today + dt.timedelta(days=200)).isoformat() + "T10:00:00+00:00"
    too_far = (today + dt.timedelta(days=800)).isoformat() + "T10:00:00+00:00"
    endpoint = LocalEndpoint(None, env=stack.env())
    body = dated_webhook(["2024-01-04T18:05:01+00:00", ahead, "2001-03-04T05:06:07+00:00", too_far,
                          "1970-01-02T00:00:00+00:00", "2024-05-06T07:08:09+00:00"])
    status, answer = post_webhook(endpoint.webhook_url, body, WRITE_KEY)
    assert (status, answer["accepted"], answer["rejected"]) == (200, 4, 2), answer
    calls = {"batch": [
        {"type": "track", "event": "Order Completed", "userId": "u1", "originalTimestamp": "2024-01-04T18:04:00Z"},
        {"type": "track", "event": "9 Lives", "userId": "u1", "originalTimestamp": "2024-01-04T18:04:00Z"},
        {"type": "track", "event": "Email Opened", "userId": "u1", "sentAt": "9999-01-01T00:00:00Z",
         "originalTimestamp": "2024-01-04T18:04:00Z"},
    ]}
    status, answer = post_segment(endpoint.base_url, "/v1/batch", calls, SEGMENT_KEY)
    endpoint.stop()
    assert (status, answer["accepted"], answer["rejected"]) == (200, 2, 1), answer

    parsed, problems = decode(str(ROOT / "template.yaml"))
    assert not problems
    bucket = stack.info["bucket"]
    tables = [Table(r["Properties"]["TableInput"], bucket) for r in parsed["Resources"].values()
              if r["Type"] == "AWS::Glue::Table"]
    keys = [k for k in stack.keys() if not k.startswith(OPERATOR_PREFIXES)]
    collections = {re.search(r"collection=([^/]+)", k).group(1) for k in keys}
    assert {"order_completed", "received_sms", "rejected_events", "email_delivered"} <= collections, collections
    uncovered = []
    for key in keys:
        location = f"s3://{bucket}/{key.rsplit('/', 1)[0]}/"
        readers = [t.name for t in tables if t.covers(location, today)]
        if not readers:
            uncovered.append(key)
    assert uncovered == [], f"written but no table reads them: {uncovered}"
    # The dates outside the range were not written where no table looks: they are rejected.
    assert not [k for k in keys if "dt=1970" in k or f"dt={too_far[:10]}" in k]
