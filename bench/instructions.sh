#!/usr/bin/env bash
# Instructions per event of the full path and of the parse+serialize baseline (the criterion
# benchmark's work, shared/core/benches/common/work.rs), counted by valgrind's callgrind: exact on a
# shared machine where timings vary by ±20 %. Valgrind runs SHA-256 without the CPU's SHA
# instructions, so the HMAC counts more here than it costs on the hardware.
# `bash bench/instructions.sh [EVENTS per body, default 100] [REPETITIONS, default 10]`
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-100}
repetitions=${2:-10}
if ! command -v valgrind >/dev/null; then apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; fi
cargo build --release --locked -p source-core --example pipeline_count 2>/dev/null
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/pipeline_count "$@" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for mode in full baseline; do
  # The set-up (building and signing the body) is counted once with no repetition and taken off.
  setup=$(count "$mode" "$events" 0)
  total=$(count "$mode" "$events" "$repetitions")
  echo "$mode: $(( (total - setup) / (events * repetitions) )) instructions per event ($events-event bodies, $repetitions repetitions)"
done
