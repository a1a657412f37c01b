#!/usr/bin/env bash
# Benchmark: our `kernels` CLI against the Python `kernels` CLI on the same local servers.
#
#   scripts/bench_cli.sh [BUILD_DIR]      (default: build; needs kernels and fake_hub_server built)
#
# Repo: 300 files / 1 GiB (scripts/bench_cli_mirror.py). The Hub API (refs, tree listing,
# resolve with ETag/X-Repo-Commit/X-Linked-* headers, which huggingface_hub needs) is the fake
# Hub program. As on the real Hub, the 100 large LFS files are redirected to a CDN: here nginx
# (sendfile) serving <sha256> paths, and, for comparison, the fake Hub's own LFS port
# (cpp-httplib, which shares the 2 cores with both clients at a higher cost per byte).
# Measures cold `lock`, cold `download --all-variants` (median of BENCH_ROUNDS rounds, each on
# empty caches after `sync`, the two CLIs alternating), and the warm no-op `download` (median
# of 10), and prints a Markdown table for docs/PERFORMANCE.md.
# Env: BENCH_FILES, BENCH_MIB, BENCH_ROUNDS (default 5), BENCH_WORK (scratch directory).
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

# The CDN: nginx serving every LFS file at /lfs/<sha256> (hard links into the mirror).
python3 - "$work/mirror" "$work/cdn/lfs" <<'PY'
import json, os, sys
mirror, cdn = sys.argv[1], sys.argv[2]
os.makedirs(cdn, exist_ok=True)
api = os.path.join(mirror, "api/kernels")
for org in os.listdir(api):
    for name in os.listdir(os.path.join(api, org)):
        tree_dir = os.path.join(api, org, name, "tree")
        for commit in os.listdir(tree_dir):
            for e in json.load(open(os.path.join(tree_dir, commit))):
                if e.get("lfs"):
                    src = os.path.join(mirror, "kernels", org, name, "resolve", commit, e["path"])
                    dst = os.path.join(cdn, e["lfs"]["oid"])
                    if not os.path.exists(dst):
                        os.link(src, dst)
PY
# shellcheck source=../tests/support/local_port.sh
source tests/support/local_port.sh
# shellcheck source=../tests/support/nginx.sh
source tests/support/nginx.sh
rc=0
start_nginx_server "$work/cdn" "$work/nginx" || rc=$?
[ "$rc" != 2 ] || { echo "bench_cli: nginx is not installed (scripts/install-deps.sh installs it)" >&2; exit 2; }
[ "$rc" = 0 ] || { echo "bench_cli: nginx did not start" >&2; exit 1; }
pids+=("$nginx_server_pid")
cdn_port=$nginx_server_port

start_hub() {  # start_hub FD [fake_hub_server args...]: prints the Hub endpoint on FD's reader
  local log="$work/hub-$1.log"; shift
  "$hub_server" --mirror "$work/mirror" --print-port --max-seconds 3000 "$@" 2>"$log"
}
exec 3< <(start_hub cdn --cdn "http://127.0.0.1:$cdn_port")
pids+=($!)
read -r port <&3
endpoint="http://127.0.0.1:$port"
exec 4< <(start_hub own)
pids+=($!)
read -r own_port <&4
own_endpoint="http://127.0.0.1:$own_port"

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

# Cold lock (fresh caches: nothing from an earlier run). The Python oracle is kernels 0.16, so ours
# writes the 0.16 lock format (--format 1) for the byte comparison below.
t0=$(now); "${clean_env[@]}" KERNELS_CACHE="$work/c-ours" "$ours" -v lock --format 1 "$work/p-ours" 2>"$work/lock-ours.log"; t1=$(now)
lock_ours=$(elapsed "$t0" "$t1")
lock_requests=$(sed -n 's/.*Hub requests: \([0-9]*\).*/\1/p' "$work/lock-ours.log" | tail -1)
t0=$(now); "${clean_env[@]}" KERNELS_CACHE="$work/c-py" "$py_kernels" lock "$work/p-py" 2>"$work/lock-py.log"; t1=$(now)
lock_py=$(elapsed "$t0" "$t1")
cmp -s "$work/p-ours/kernels.lock" "$work/p-py/kernels.lock" && same_lock=yes || same_lock=NO

# Cold download --all-variants into empty caches (our lock run's cached tree removed too),
# BENCH_ROUNDS rounds, the two CLIs alternating; `sync` first so that no earlier run's writeback
# is charged to the next one. Every run reuses one emptied cache path: on this VM's ext4 a
# never-used directory is placed in fresh block groups, which made single runs vary 1-3 s.
rounds="${BENCH_ROUNDS:-5}"
cold() {  # cold CLI ENDPOINT CACHE [env...]: one cold download into an empty cache; prints seconds
  local cli="$1" ep="$2" cache="$work/c-cold"; shift 3
  rm -rf "$cache"; sync
  local project="$work/p-ours" bin="$ours"
  [ "$cli" = py ] && project="$work/p-py" bin="$py_kernels"
  local t0 t1
  t0=$(now)
  env -u HF_HUB_OFFLINE -u HF_TOKEN -u HF_HUB_CACHE HF_ENDPOINT="$ep" HF_HOME="$work/hf-home" \
    KERNELS_CACHE="$cache" "$@" "$bin" download --all-variants "$project" >/dev/null 2>"$work/dl-$cli.log"
  t1=$(now)
  elapsed "$t0" "$t1"
}
declare -A runs
for r in $(seq "$rounds"); do
  runs[ours_cdn]+="$(cold ours "$endpoint" "ours-cdn-$r") "
  runs[py_cdn]+="$(cold py "$endpoint" "py-cdn-$r") "
  runs[ours_own]+="$(cold ours "$own_endpoint" "ours-own-$r") "
  runs[py_own]+="$(cold py "$own_endpoint" "py-own-$r") "
  runs[ours_fsync]+="$(cold ours "$endpoint" "ours-fsync-$r" KERNELS_FSYNC=1) "
done
med() { tr ' ' '\n' <<<"${runs[$1]}" | grep . | median; }
all() { echo "${runs[$1]}" | sed 's/ $//; s/ /, /g'; }
dl_ours=$(med ours_cdn); dl_py=$(med py_cdn)
dl_ours_own=$(med ours_own); dl_py_own=$(med py_own); dl_fsync=$(med ours_fsync)
# Requests of one more cold run, from our own log.
rm -rf "$work/c-ours"
"${clean_env[@]}" KERNELS_CACHE="$work/c-ours" "$ours" download --all-variants "$work/p-ours" 2>"$work/dl-ours.log"
dl_requests=$(sed -n 's/.*in \([0-9]*\) Hub requests.*/\1/p' "$work/dl-ours.log" | tail -1)
dl_cdn=$(sed -n 's/.*(+\([0-9]*\) to the CDN.*/\1/p' "$work/dl-ours.log" | tail -1)
dl_cdn=${dl_cdn:-0}
rm -rf "$work/c-py"
"${clean_env[@]}" KERNELS_CACHE="$work/c-py" "$py_kernels" download --all-variants "$work/p-py" >/dev/null 2>&1

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
| cold \`download --all-variants\` ($files files, $mib MiB), LFS from nginx (median of $rounds) | $dl_ours | $dl_py | $(ratio "$dl_py" "$dl_ours") | $dl_requests Hub (files + $((dl_requests - files))) + $dl_cdn to the CDN (LFS redirects) |
| the same, LFS from the fake Hub's own port (median of $rounds) | $dl_ours_own | $dl_py_own | $(ratio "$dl_py_own" "$dl_ours_own") | same |
| the same as row 2 with \`KERNELS_FSYNC=1\` (every blob fsynced) | $dl_fsync | $dl_py | $(ratio "$dl_py" "$dl_fsync") | same |
| warm no-op \`download --all-variants\` (median of 10) | $warm_ours | $warm_py | $(ratio "$warm_py" "$warm_ours") | 0 |

Every round (s): ours/nginx $(all ours_cdn); Python/nginx $(all py_cdn); ours/own port $(all ours_own); Python/own port $(all py_own); ours fsync $(all ours_fsync).
Identical kernels.lock bytes from both: $same_lock. Disk: 1 GiB written with fsync (dd conv=fsync) at $disk.
Load average while running: $(cut -d' ' -f1-3 /proc/loadavg).
TABLE
