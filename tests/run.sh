#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs
# formatting and lint checks, the Rust tests and the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

echo "== tools"
if ! command -v jq >/dev/null; then
  apt-get update -qq && apt-get install -y -qq jq >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
# Segment's Node library for the client end-to-end test (versions pinned in package-lock.json).
if ! command -v node >/dev/null; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
(cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)

echo "== format and lint"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== rust tests"
# --include-ignored: the jq 1.6 partition test is ignored by a plain `cargo test` (it needs
# Debian's jq 1.6, installed above).
cargo test --workspace --locked -- --include-ignored

echo "== bounded fuzzing (60 s per target)"
bash fuzz/run.sh 60

echo "== template checks and end-to-end tests (local lake, emulated AWS stack, soak)"
cargo build --locked -p klaviyo-source -p endpoint -p pull -p compaction
export INGEST_BIN="$root/target/debug/klaviyo-source"
export PULL_BIN="$root/target/debug/pull"
.venv/bin/python -m pytest -q tests/layout tests/template tests/e2e
