"""Fixtures of the end-to-end tests: the real `bootstrap` binary in local mode."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

WRITE_KEY = "e2e-current-write-key-01"
PREVIOUS_KEY = "e2e-previous-write-key-2"
LISTENING = re.compile(r"Listening on (http://[0-9.:]+)/webhooks/klaviyo")


def ingest_binary() -> Path:
    """The binary under test; tests/run.sh builds it and names it in INGEST_BIN."""
    path = os.environ.get("INGEST_BIN")
    if not path or not Path(path).is_file():
        pytest.fail("INGEST_BIN must name the built bootstrap binary (tests/run.sh sets it)")
    return Path(path)


class LocalEndpoint:
    """A running `bootstrap serve` and its lake."""

    def __init__(self, lake: Path, extra_args=(), env=None):
        self.lake = lake
        args = [str(ingest_binary()), "serve", "--listen", "127.0.0.1:0", "--lake", str(lake), *extra_args]
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
    server = LocalEndpoint(tmp_path / "lake", ["--write-key", WRITE_KEY, "--write-key", PREVIOUS_KEY])
    yield server
    if server.process.poll() is None:
        server.stop()
