#!/usr/bin/env bash
# Every benchmark, one command: mapping throughput (criterion), instructions per event
# (valgrind), the endpoint under load (wrk), cold-start proxy, init time through a Lambda
# Runtime API stand-in and binary sizes, the pull's backfill throughput and memory, the
# compaction's throughput, memory and instructions per row, the
# Firehose billing measurement, the cost model and the fault-injection soak. Writes
# bench/results/<date>-<host>.md with the machine's description. Loopback only; every run is
# bounded in time. Takes about 18 minutes on 2 cores (the compaction steps took 2 min 17 s and
# 28 s of it here).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if ! command -v wrk >/dev/null; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; fi
if ! command -v jq >/dev/null; then apt-get update -qq && apt-get install -y -qq jq >/dev/null; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt

cargo build --release --locked -p klaviyo-source -p endpoint -p pull
mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d)-$(hostname).md"
work=$(mktemp -d)

{
  echo "# Benchmark results"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "- toolchain: $(rustc --version)"
  echo "- commit: $(git rev-parse --short HEAD)"
  echo "- command: bash bench/run.sh"
  echo
  echo "## Mapping throughput (criterion, one core)"
  echo
  cargo bench --locked -p source-core --bench pipeline -- --warm-up-time 1 --measurement-time 4 >"$work/criterion.log" 2>&1
  .venv/bin/python bench/report_criterion.py
  echo
  echo "## Instructions per event (valgrind callgrind, bench/instructions.sh)"
  echo
  echo '```'
  bash bench/instructions.sh 100 10
  echo '```'
  echo
  echo "## Endpoint under load (release binary, wrk on loopback, 10 s per run)"
  echo
  .venv/bin/python bench/load.py --json "$work/load.json"
  echo
  echo "## Memory per request (bench/memory.py, release binary)"
  echo
  INGEST_BIN=target/release/klaviyo-source .venv/bin/python bench/memory.py
  echo
  echo "## Cold start through a Lambda Runtime API stand-in (bench/init_time.py, 10 runs each)"
  echo
  .venv/bin/python bench/init_time.py --binary target/release/endpoint --runs 10
  .venv/bin/python bench/init_time.py --binary target/release/pull --runs 10 --pull
  echo
  echo "## Pull backfill from the Events API double (bench/pull.py, 0.3 s per page, budget 700/min)"
  echo
  .venv/bin/python bench/pull.py --binary target/release/klaviyo-source
  echo
  echo "## Compaction of a 1,000,000-row day (bench/compaction.py, release command line, glibc)"
  echo
  echo '```'
  .venv/bin/python bench/compaction.py --binary target/release/klaviyo-source
  echo '```'
  echo
  echo "## Compaction instructions per new row and per duplicate (bench/compaction_instructions.sh)"
  echo
  echo '```'
  bash bench/compaction_instructions.sh target/release/klaviyo-source
  echo '```'
  echo
  echo "## Firehose billing (cargo run --release -p source-core --example firehose_billing)"
  echo
  echo '```'
  cargo run --release --locked -q -p source-core --example firehose_billing | tee "$work/billing.txt"
  echo '```'
  echo
  echo "## Cost model"
  echo
  billed=$(grep '^packed' "$work/billing.txt" | sed -E 's/.*billed bytes\/event: +([0-9]+).*/\1/')
  rowbytes=$(grep '^packed' "$work/billing.txt" | sed -E 's/.*row bytes\/event: +([0-9]+).*/\1/')
  .venv/bin/python bench/cost_model.py --load-json "$work/load.json" --billed-bytes-per-event "$billed" \
    --row-bytes-per-event "$rowbytes"
  echo
  echo "## Fault-injection soak (bench/soak.py, 10,000 events)"
  echo
  echo '```'
  .venv/bin/python bench/soak.py --events 10000 --binary target/release/klaviyo-source
  echo '```'
} | tee "$out"
echo "written: $out"
