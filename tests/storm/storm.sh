#!/usr/bin/env bash
# Crash and race storms (issue 12): real `kernels` processes against the fake Hub over HTTP.
#
#   storm.sh crash KILLS     KILLS times: start `download`, `unpack` or `lock` (in turn) into one
#                            cache and kill -9 it at a random moment of its run (0 to 1.2 times
#                            how long an uninterrupted one takes here); half the download and
#                            unpack rounds start cold. After every kill `verify` runs:
#                            whenever it exits 0, every file of the cache is compared with the
#                            published bytes (verify must never accept a bad file). At the end a
#                            re-run of download completes and verifies, and `cache prune` leaves
#                            no temp file and no unpack staging directory behind.
#   storm.sh race PROCESSES  PROCESSES `kernels download` processes into one empty cache while
#                            `cache prune` runs in a loop, twice: with working locks and with
#                            KERNELS_DISABLE_FLOCK=1. Every download exits 0, the cache verifies
#                            and holds the published bytes, no temp file is left.
#
# The last line is "PASS: ..." with the counts (docs/RELIABILITY.md records them), or "FAIL: ...".
# CTest runs the short forms (storm:crash_short, storm:race_short); scripts/nightly.sh the long.
# Needs: KERNELS_BIN (the CLI), FAKE_HUB_SERVER, KERNELS_SOURCE_DIR; STORM_SEED picks the kill
# times (default: the time), printed so a failing run can be repeated.
set -euo pipefail
: "${KERNELS_BIN:?}" "${FAKE_HUB_SERVER:?}" "${KERNELS_SOURCE_DIR:?}"
mode=${1:?usage: storm.sh crash KILLS | race PROCESSES}
count=${2:?usage: storm.sh crash KILLS | race PROCESSES}
seed=${STORM_SEED:-$(date +%s)}
RANDOM=$seed
echo "storm: $mode $count (STORM_SEED=$seed)"

scratch=$(mktemp -d /tmp/kernels-storm.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  chmod -R u+w "$scratch" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() { echo "FAIL: $* (STORM_SEED=$seed)" >&2; exit 1; }
kernels() { "$KERNELS_BIN" -q "$@"; }
export KERNELS_RETRIES=1 KERNELS_LOCK_TIMEOUT=60
unset HF_TOKEN HF_HUB_OFFLINE KERNELS_DISABLE_FLOCK

# Two variants of a few MiB each (so a kill lands mid-transfer), with one file whose content both
# share (one blob, two snapshot links), published into a static hub and served over HTTP.
python3 - "$scratch/src" <<'PY'
import os, random, sys
rng = random.Random(12)
for variant, size in (("cubin-cu130-sm90a", 6 << 20), ("cubin-cu130-sm80", 3 << 20)):
    d = os.path.join(sys.argv[1], variant)
    os.makedirs(d)
    open(os.path.join(d, "attention.cubin"), "wb").write(rng.randbytes(size))
    open(os.path.join(d, "manifest.json"), "w").write('{"format_version": 1, "arch": "%s"}' % variant)
    open(os.path.join(d, "__init__.py"), "w").write("# shared by both variants\n")
PY
python3 "$KERNELS_SOURCE_DIR/scripts/publish_local_hub.py" --hub "$scratch/hub" \
  --repo storm-org/attention --version 1 "$scratch/src"/* > /dev/null
"$FAKE_HUB_SERVER" --mirror "$scratch/hub" --print-port --max-seconds 3600 > "$scratch/port" &
server_pid=$!
for _ in $(seq 100); do [ -s "$scratch/port" ] && break; sleep 0.05; done
[ -s "$scratch/port" ] || fail "fake_hub_server did not start"
export HF_ENDPOINT="http://127.0.0.1:$(head -1 "$scratch/port")"

project="$scratch/project"
mkdir -p "$project"
printf '[tool.kernels.dependencies]\n"storm-org/attention" = 1\n' > "$project/pyproject.toml"
kernels lock "$project"
cp "$project/kernels.lock" "$scratch/lock.golden"

# Every snapshot file equals the published file of the same path: the ground truth, independent
# of anything `kernels` computes. A `NAME.<8 hex>.incomplete` beside one is a write a kill cut
# short before its rename: no reader opens that name (prune removes it after an hour), so it is
# not compared.
cache_matches_source() {
  local cache=$1 f rel ok=0
  while IFS= read -r -d '' f; do
    rel=${f#*/snapshots/*/build/}
    cmp -s "$f" "$scratch/src/$rel" || { echo "  differs: $f" >&2; ok=1; }
  done < <(find "$cache/kernels--storm-org--attention/snapshots" \( -type f -o -type l \) \
             -not -name '*.incomplete' -print0 2>/dev/null)
  return $ok
}
ms_of() {  # ms_of COMMAND...: runs it, prints how long it took in milliseconds
  local start end
  start=$(date +%s%N)
  "$@" > /dev/null || fail "$* failed"
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
}
leftovers() {  # temp files and unpack staging directories under a cache
  find "$1" \( -name '*.incomplete' -o -name '.kernels-unpack.*' \) 2>/dev/null
}

run_crash() {
  local kills=$1 cache="$scratch/cache" i op pid delay accepted=0 refused=0 cold=0
  local -A by_op=([download]=0 [unpack]=0 [lock]=0)
  # The archive unpack is killed in: a full cache, packed once. Each operation is timed once
  # uninterrupted, so the kills fall inside its run on any machine.
  local -A span
  span[download]=$(ms_of env KERNELS_CACHE="$scratch/full" "$KERNELS_BIN" -q download --all-variants "$project")
  KERNELS_CACHE="$scratch/full" kernels pack "$project" --out "$scratch/full.tar.zst"
  span[unpack]=$(ms_of env KERNELS_CACHE="$scratch/unpacked" "$KERNELS_BIN" -q unpack "$scratch/full.tar.zst" "$project")
  span[lock]=$(ms_of env KERNELS_CACHE="$scratch/full" "$KERNELS_BIN" -q lock "$project")
  echo "storm: uninterrupted runs take ${span[download]} ms (download), ${span[unpack]} ms (unpack), ${span[lock]} ms (lock)"
  local names=(download unpack lock)
  for ((i = 0; i < kills; i++)); do
    op=${names[$(( i % 3 ))]}
    delay=$(( (RANDOM * 32768 + RANDOM) % (span[$op] * 12 / 10 + 1) ))
    # Half the download and unpack rounds start cold (the repo's blobs and snapshots gone), so
    # their kills land in transfers and renames, not in a warm no-op.
    if [ "$op" != lock ] && (( RANDOM % 2 )); then
      rm -rf "$cache/kernels--storm-org--attention/blobs" "$cache/kernels--storm-org--attention/snapshots"
      cold=$(( cold + 1 ))
    fi
    case $op in
      download) KERNELS_CACHE=$cache "$KERNELS_BIN" -q download --all-variants "$project" \
           > /dev/null 2>&1 & ;;
      unpack) KERNELS_CACHE=$cache "$KERNELS_BIN" -q unpack "$scratch/full.tar.zst" "$project" \
           > /dev/null 2>&1 & ;;
      lock) KERNELS_CACHE=$cache "$KERNELS_BIN" -q lock "$project" > /dev/null 2>&1 & ;;
    esac
    pid=$!
    sleep "$(printf '%d.%03d' $(( delay / 1000 )) $(( delay % 1000 )))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    by_op[$op]=$(( by_op[$op] + 1 ))
    # A killed lock leaves the old lock or the new one, never a torn file.
    cmp -s "$project/kernels.lock" "$scratch/lock.golden" || fail "kill $i ($op after ${delay} ms): kernels.lock changed"
    if KERNELS_CACHE=$cache "$KERNELS_BIN" -q --offline verify "$project" > /dev/null 2>&1; then
      accepted=$(( accepted + 1 ))
      cache_matches_source "$cache" || fail "kill $i ($op after ${delay} ms): verify accepted a bad file"
    else
      refused=$(( refused + 1 ))
    fi
  done
  KERNELS_CACHE=$cache kernels download --all-variants "$project" || fail "the re-run of download failed"
  KERNELS_CACHE=$cache kernels verify "$project" || fail "the cache does not verify after the re-run"
  cache_matches_source "$cache" || fail "the re-run left a bad file"
  # prune removes at once the download temp files in blobs/ whose blob lock is free (so those are
  # left as they are); unpack staging directories and the temp files of atomic writes (refs,
  # trees, links, kept locks) after an hour untouched: age those as an hour would.
  find "$cache" \( -path '*/.kernels-unpack.*' -o \( -name '*.incomplete' -not -path '*/blobs/*' \) \) \
    -exec touch -h -d '2 hours ago' {} +
  local before; before=$(leftovers "$cache" | wc -l)
  KERNELS_CACHE=$cache kernels cache prune || fail "cache prune failed"
  [ -z "$(leftovers "$cache")" ] || { leftovers "$cache" >&2; fail "cache prune left these behind"; }
  KERNELS_CACHE=$cache kernels verify "$project" || fail "prune broke the cache"
  echo "PASS: crash storm: $kills kill -9 (download ${by_op[download]}, unpack ${by_op[unpack]}, lock ${by_op[lock]}; $cold rounds started cold); verify accepted $accepted times, each time every file was right, refused $refused; re-run completed; prune removed $before leftovers, none remain"
}

run_race() {
  local processes=$1 flavour cache i failures
  for flavour in locks no-flock; do
    cache="$scratch/race-$flavour"
    local env=()
    [ "$flavour" = no-flock ] && env=(KERNELS_DISABLE_FLOCK=1)
    local pids=()
    for ((i = 0; i < processes; i++)); do
      env "${env[@]}" KERNELS_CACHE="$cache" "$KERNELS_BIN" -q download --all-variants "$project" \
        > "$scratch/race-$flavour-$i.log" 2>&1 &
      pids+=($!)
    done
    (while :; do env "${env[@]}" KERNELS_CACHE="$cache" "$KERNELS_BIN" -q cache prune > /dev/null 2>&1 || true
       echo >> "$scratch/prunes"; sleep 0.05; done) &
    local pruner=$!
    failures=0
    for ((i = 0; i < processes; i++)); do
      wait "${pids[$i]}" || { failures=$(( failures + 1 )); tail -3 "$scratch/race-$flavour-$i.log" >&2; }
    done
    kill "$pruner" 2>/dev/null; wait "$pruner" 2>/dev/null || true
    # The pruner's last run may still be going: it ends before the checks below look.
    sleep 0.5
    [ "$failures" -eq 0 ] || fail "race ($flavour): $failures of $processes downloads failed"
    KERNELS_CACHE=$cache kernels verify "$project" || fail "race ($flavour): the cache does not verify"
    cache_matches_source "$cache" || fail "race ($flavour): a file differs from the published one"
    [ -z "$(leftovers "$cache")" ] || fail "race ($flavour): temp files left: $(leftovers "$cache")"
  done
  echo "PASS: race storm: $processes downloads into one cache while cache prune ran in a loop, with working locks and with KERNELS_DISABLE_FLOCK=1: all $(( 2 * processes )) exited 0 ($(wc -l < "$scratch/prunes") prune runs meanwhile), both caches verify and hold the published bytes, no temp file left"
}

case $mode in
  crash) run_crash "$count" ;;
  race) run_race "$count" ;;
  *) fail "unknown mode $mode (crash or race)" ;;
esac
