#!/usr/bin/env bash
# The long forms of the reliability checks (issue 12), for a nightly job or by hand; CI runs the
# short forms on every test run (fuzz:short, storm:crash_short, storm:race_short). In order, each
# stopping the script on failure:
#   1. the crash storm with 200 kill -9 and the race storm with 32 processes (tests/storm/storm.sh)
#   2. every fuzz target for FUZZ_SECONDS (default 300) (scripts/fuzz.sh)
#   3. the CPU suite under ASan + UBSan, then the concurrency and loader tests under TSan
#      (scripts/sanitize.sh, scripts/sanitize.sh tsan); CI runs their short forms
#      (sanitize:asan_short, sanitize:tsan_short: scripts/sanitize.sh [tsan] --short)
# Every PASS line (with its counts) and each step's time is collected in $KERNELS_NIGHTLY_LOG (default
# build/nightly.log), the numbers docs/RELIABILITY.md records. Usage: scripts/nightly.sh
# (KERNELS_BUILD_DIR: the build holding `kernels` and fake_hub_server, default build).
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(realpath -m "${KERNELS_BUILD_DIR:-build}")"
log="$(realpath -m "${KERNELS_NIGHTLY_LOG:-$build/nightly.log}")"
cmake --build "$build" --target kernels fake_hub_server
mkdir -p "$(dirname "$log")"
echo "nightly $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" > "$log"
step() {  # step NAME COMMAND...: runs it, keeps its PASS lines
  echo "== $1"
  local out start
  out=$(mktemp)
  start=$(date +%s)
  if ! "${@:2}" 2>&1 | tee "$out"; then
    echo "FAIL: $1 after $(($(date +%s) - start)) s" | tee -a "$log"
    rm -f "$out"
    exit 1
  fi
  grep -E "^(PASS|stat::number_of_executed_units|fuzzing |[0-9]+% tests passed)" "$out" |
    sed "s/^/$1: /" >> "$log" || true
  echo "$1: $(($(date +%s) - start)) s" >> "$log"
  rm -f "$out"
}
export KERNELS_SOURCE_DIR="$PWD" KERNELS_BIN="$build/cli/kernels"
export FAKE_HUB_SERVER="$build/tests/cli/support/fake_hub_server"
step crash_storm bash tests/storm/storm.sh crash 200
step race_storm bash tests/storm/storm.sh race 32
step fuzz scripts/fuzz.sh "${FUZZ_SECONDS:-300}"
step asan scripts/sanitize.sh
step tsan scripts/sanitize.sh tsan
echo "PASS: nightly; counts in $log"
cat "$log"
