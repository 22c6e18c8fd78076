#!/usr/bin/env bash
# What reading one raw row costs, step by step (bench/json_floor/src/main.rs): inflating,
# hashing, and reading its members with serde_json, with sonic-rs and with the project's own
# rank read, on one object of bench/compaction.py's rows. A standalone crate (sonic-rs is
# measured, not shipped). Pass --features zlib-rs to inflate with zlib-rs.
# `bash bench/json_floor.sh [--features zlib-rs]`
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
lake=$(mktemp -d)
trap 'rm -rf "$lake"' EXIT
mkdir -p "$lake/klaviyo"
"$python" -c 'import sys; sys.path.insert(0, "bench"); import compaction; from pathlib import Path; compaction.land(Path(sys.argv[1]), 60000, 0)' "$lake"
object=$(find "$lake" -name 'copy0-00000000.gz' | sort | head -1)
cargo run --quiet --release --manifest-path bench/json_floor/Cargo.toml "$@" -- "$object"
