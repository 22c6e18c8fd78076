"""Segment's official client libraries, unchanged but for their `host` setting, send to the
local endpoint: every event they send is stored, with and without gzip compression.
tests/run.sh installs them (PyPI segment-analytics-python, npm @segment/analytics-node)."""

import json
import shutil
import subprocess

from conftest import ROOT, SEGMENT_KEY
from query_lake import connect

CLIENTS = ROOT / "tests/clients"


def stored_ids(lake, prefix):
    rows = connect(lake).sql(f"select id from email_opened where id like '{prefix}-%' order by id").fetchall()
    return sorted(row[0] for row in rows)


def test_the_python_library_is_stored_in_full_with_and_without_gzip(endpoint):
    from segment.analytics import Client
    for compressed in (False, True):
        errors = []
        client = Client(write_key=SEGMENT_KEY, host=endpoint.base_url, gzip=compressed, sync_mode=True,
                        max_retries=0, on_error=lambda error, batch: errors.append(str(error)))
        prefix = f"py-gzip-{compressed}"
        for i in range(25):
            client.track(user_id=f"py-user-{i}", event="Email Opened", message_id=f"{prefix}-{i:02d}",
                         properties={"email_subject": "Hello from Python"},
                         timestamp=__import__("datetime").datetime(2024, 1, 4, 18, 4))
        client.flush()
        assert errors == [], errors
        assert stored_ids(endpoint.lake, prefix) == [f"{prefix}-{i:02d}" for i in range(25)]


def test_the_node_library_is_stored_in_full(endpoint):
    node = shutil.which("node")
    assert node, "node is needed for Segment's Node library (tests/run.sh checks it)"
    result = subprocess.run([node, str(CLIENTS / "send_with_analytics_node.js"), endpoint.base_url, SEGMENT_KEY,
                             "node", "30"], capture_output=True, text=True, timeout=60, cwd=CLIENTS)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"errors": []}
    assert stored_ids(endpoint.lake, "node") == sorted(f"node-{i}" for i in range(30))
