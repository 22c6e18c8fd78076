#!/usr/bin/env bash
# Bounded fuzzing of both targets: `bash fuzz/run.sh [SECONDS per target, default 60]`.
# Installs cargo-fuzz if missing. The seed corpus is the project's fixtures. Uses
# RUSTC_BOOTSTRAP=1 because the machine has only the stable toolchain and cargo fuzz needs
# the sanitizer flags. Fails (exit 1) on any crash; prints executions per target.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1

mkdir -p corpus/webhook corpus/segment
cp ../tests/fixtures/webhooks/*.json corpus/webhook/
i=0
for body in \
  '{"event":"Email Opened","userId":"u1","properties":{"email_subject":"Hi"},"originalTimestamp":"2024-01-04T18:05:00Z","sentAt":"2024-01-04T18:05:10Z"}' \
  '{"batch":[{"type":"track","event":"Email Bounced","anonymousId":"a@example.com"},{"type":"identify","userId":"u"}],"context":{"ip":"1.2.3.4"},"integrations":{"All":true}}'; do
  printf '%s%s' "$((i % 2))" "$body" > "corpus/segment/seed-$i.json"
  i=$((i + 1))
done

for target in webhook segment; do
  echo "== fuzzing $target for ${seconds}s"
  log=$(mktemp)
  if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target FAILED: see the crash above (artifacts/$target/)"
    exit 1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs" "$log" || tail -5 "$log"
  echo "$target: no crash in ${seconds}s"
done
