"""A short run of the fault-injection soak (bench/soak.py): faults, throttling, whole-call
failures and an emulator restart, and still 0 lost and each id once after dedupe."""

import subprocess
import sys

from conftest import ROOT, ingest_binary


def test_short_soak_loses_nothing_and_dedupes_exactly():
    result = subprocess.run([sys.executable, str(ROOT / "bench/soak.py"), "--events", "1500",
                             "--binary", str(ingest_binary()), "--max-seconds", "300"],
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: 0 lost, each id exactly once after dedupe" in result.stdout
    assert "emulator restarted mid-run: True" in result.stdout
