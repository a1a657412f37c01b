#!/usr/bin/env bash
# Benchmark: our `kernels` CLI against the Python `kernels` CLI on the same local server.
#
#   scripts/bench_cli.sh [BUILD_DIR]      (default: build; needs kernels and fake_hub_server built)
#
# Repo: 300 files / 1 GiB (scripts/bench_cli_mirror.py), served by the fake Hub program (the Hub
# protocol with ETag/X-Repo-Commit headers and an LFS redirect port, which huggingface_hub needs)
# and, for request counting, by nginx from the same directory. Measures cold `lock`, cold
# `download --all-variants`, and the warm no-op `download` (median of 10), and prints a Markdown
# table for docs/PERFORMANCE.md. Env: BENCH_FILES, BENCH_MIB, BENCH_WORK (scratch directory).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
ours="$build/cli/kernels"
hub_server="$build/tests/cli/support/fake_hub_server"
[ -x "$ours" ] && [ -x "$hub_server" ] || { echo "bench_cli: build kernels and fake_hub_server in $build first" >&2; exit 2; }
venv="$(scripts/setup-python-oracle.sh "$build/python-oracle")"
py_kernels="$venv/bin/kernels"

work="${BENCH_WORK:-$(mktemp -d /tmp/kernels-bench-XXXXXX)}"
mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

files="${BENCH_FILES:-300}"
mib="${BENCH_MIB:-1024}"
echo "bench_cli: writing a $files-file, $mib MiB mirror into $work/mirror" >&2
commit="$(python3 scripts/bench_cli_mirror.py "$work/mirror" --files "$files" --total-mib "$mib")"

exec 3< <("$hub_server" --mirror "$work/mirror" --print-port --max-seconds 3000 2>"$work/hub.log")
pids+=($!)
read -r port <&3
endpoint="http://127.0.0.1:$port"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{($2 - $1):.3f}')" ; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

project() {  # project dir with pyproject.toml
  mkdir -p "$1"
  printf '[tool.kernels.dependencies]\n"bench/attention" = 1\n' > "$1/pyproject.toml"
}
project "$work/p-ours"
project "$work/p-py"
clean_env=(env -u HF_HUB_OFFLINE -u HF_TOKEN -u HF_HUB_CACHE HF_ENDPOINT="$endpoint" HF_HOME="$work/hf-home")

# Cold lock (fresh caches: nothing from an earlier run).
t0=$(now); "${clean_env[@]}" KERNELS_CACHE="$work/c-ours" "$ours" -v lock "$work/p-ours" 2>"$work/lock-ours.log"; t1=$(now)
lock_ours=$(elapsed "$t0" "$t1")
lock_requests=$(sed -n 's/.*Hub requests: \([0-9]*\).*/\1/p' "$work/lock-ours.log" | tail -1)
t0=$(now); "${clean_env[@]}" KERNELS_CACHE="$work/c-py" "$py_kernels" lock "$work/p-py" 2>"$work/lock-py.log"; t1=$(now)
lock_py=$(elapsed "$t0" "$t1")
cmp -s "$work/p-ours/kernels.lock" "$work/p-py/kernels.lock" && same_lock=yes || same_lock=NO

# Cold download --all-variants into empty caches (our lock run's cached tree removed too).
rm -rf "$work/c-ours" "$work/c-py"
t0=$(now); "${clean_env[@]}" KERNELS_CACHE="$work/c-ours" "$ours" download --all-variants "$work/p-ours" 2>"$work/dl-ours.log"; t1=$(now)
dl_ours=$(elapsed "$t0" "$t1")
dl_requests=$(sed -n 's/.*in \([0-9]*\) Hub requests.*/\1/p' "$work/dl-ours.log" | tail -1)
dl_cdn=$(sed -n 's/.*(+\([0-9]*\) to the CDN.*/\1/p' "$work/dl-ours.log" | tail -1)
dl_cdn=${dl_cdn:-0}
t0=$(now); "${clean_env[@]}" KERNELS_CACHE="$work/c-py" "$py_kernels" download --all-variants "$work/p-py" 2>"$work/dl-py.log" >/dev/null; t1=$(now)
dl_py=$(elapsed "$t0" "$t1")

# The same cold download with KERNELS_FSYNC=1 (every blob made durable before it becomes
# visible), to show what forcing the bytes to this disk costs; the default, like Python, leaves
# blobs to the page cache and relies on verification on read.
mv "$work/c-ours" "$work/c-ours-kept"
t0=$(now); "${clean_env[@]}" KERNELS_FSYNC=1 KERNELS_CACHE="$work/c-ours" "$ours" download --all-variants "$work/p-ours" 2>/dev/null; t1=$(now)
dl_fsync=$(elapsed "$t0" "$t1")
rm -rf "$work/c-ours"
mv "$work/c-ours-kept" "$work/c-ours"

# Warm no-op download, 10 runs each, median.
warm_ours=$(for i in $(seq 10); do t0=$(now); "${clean_env[@]}" KERNELS_CACHE="$work/c-ours" "$ours" download --all-variants "$work/p-ours" 2>/dev/null; t1=$(now); elapsed "$t0" "$t1"; done | median)
warm_py=$(for i in $(seq 10); do t0=$(now); "${clean_env[@]}" KERNELS_CACHE="$work/c-py" "$py_kernels" download --all-variants "$work/p-py" >/dev/null 2>&1; t1=$(now); elapsed "$t0" "$t1"; done | median)

# Our CLI verifies what Python wrote and the other way round is the compat test's job; here,
# check that both caches hold the same verified bytes.
"${clean_env[@]}" KERNELS_CACHE="$work/c-ours" "$ours" -q verify "$work/p-ours" >/dev/null
ratio() { python3 -c "print(f'{$1 / $2:.1f}x')"; }
disk=$(dd if=/dev/zero of="$work/ddtest" bs=4M count=256 conv=fsync 2>&1 | tail -1 | sed 's/.*, //'); rm -f "$work/ddtest"
cat <<TABLE
| step | ours (s) | Python kernels (s) | speed-up | our requests |
|---|---|---|---|---|
| cold \`lock\` | $lock_ours | $lock_py | $(ratio "$lock_py" "$lock_ours") | $lock_requests |
| cold \`download --all-variants\` ($files files, $mib MiB) | $dl_ours | $dl_py | $(ratio "$dl_py" "$dl_ours") | $dl_requests Hub (files + $((dl_requests - files))) + $dl_cdn to the CDN port (LFS redirects) |
| cold \`download --all-variants\` with \`KERNELS_FSYNC=1\` (every blob fsynced) | $dl_fsync | $dl_py | $(ratio "$dl_py" "$dl_fsync") | same |
| warm no-op \`download --all-variants\` (median of 10) | $warm_ours | $warm_py | $(ratio "$warm_py" "$warm_ours") | 0 |

Identical kernels.lock bytes from both: $same_lock. Disk: 1 GiB written with fsync (dd conv=fsync) at $disk.
Load average while running: $(cut -d' ' -f1-3 /proc/loadavg).
TABLE
