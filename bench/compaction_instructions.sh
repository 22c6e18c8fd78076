#!/usr/bin/env bash
# Instructions per new row and per dropped duplicate of `klaviyo-source compact`, counted by
# valgrind's callgrind: exact on a shared machine where bench/compaction.py's CPU seconds vary
# by ±20 %, so an optimisation of the compaction can show what it moved. The rows are
# bench/compaction.py's (the webhook fixture's real rows, 12 collections, objects of 5,000).
# The copies are exact (dropped by their hash), then retimed (received later: each is parsed
# and ranked). Each step's count has the count of a run that finds nothing to do taken off (start-up,
# listing, reading manifests). Valgrind runs SHA-256 (the local lake's tag of each object it
# reads, where S3 gives an ETag) without the CPU's SHA instructions, so it counts more here
# than it costs on the hardware.
# `bash bench/compaction_instructions.sh [BINARY, default target/release/klaviyo-source] [DISTINCT rows, default 24000]`
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/release/klaviyo-source}
distinct=${2:-24000}
python=${PYTHON:-.venv/bin/python}
if ! command -v valgrind >/dev/null; then apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; fi
lake=$(mktemp -d)
trap 'rm -rf "$lake"' EXIT
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" compact --lake "$lake" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
land() {
  "$python" -c 'import sys; sys.path.insert(0, "bench"); import compaction; from pathlib import Path; compaction.land(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "retimed")' \
    "$lake" "$distinct" "$1" "${2:-exact}"
}
mkdir -p "$lake/klaviyo"
idle_empty=$(count)
land 0
new_rows=$(count)
idle_compacted=$(count)
land 1
duplicates=$(count)
idle_again=$(count)
land 2 retimed
retimed=$(count)
echo "new rows: $(( (new_rows - idle_empty) / distinct )) instructions per row ($distinct rows)"
echo "duplicates: $(( (duplicates - idle_compacted) / distinct )) instructions per dropped copy ($distinct copies)"
echo "retimed duplicates: $(( (retimed - idle_again) / distinct )) instructions per dropped copy received later ($distinct copies)"
