#!/usr/bin/env bash
# The committed scripts/deploy/kernels.lock (and its kernels.lock.hashes) pins the commit of the
# local hub that a build publishes from its sm90a bundle. That commit is derived from the cubin's
# bytes, which are reproducible only for one nvcc build: the one scripts/nvcc-requirements.txt
# pins, which the Dockerfile installs (docs/DOCKER.md, "The lock").
#
#   scripts/update_deploy_lock.sh [BUILD_DIR]           rebuild BUILD_DIR's local hub and lock
#                                                       scripts/deploy against it; commit the two
#                                                       files afterwards
#   scripts/update_deploy_lock.sh --check [BUILD_DIR]   only check (kernels lock --locked against a
#                                                       copy): 0 current, 3 missing, 4 stale,
#                                                       77 cannot be checked with this build
#
# BUILD_DIR (default $KERNELS_BUILD_DIR, else build) must compile the kernels with the pinned nvcc:
#   nvcc=$(scripts/install-nvcc.sh build/nvcc-venv)
#   KERNELS_CMAKE_ARGS="-DCMAKE_CUDA_COMPILER=$nvcc" scripts/build.sh
# Run it after changing the kernels, their build flags or the pinned nvcc.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
check=0
if [ "${1:-}" = --check ]; then
  check=1
  shift
fi
build_dir="${1:-${KERNELS_BUILD_DIR:-build}}"
case "$build_dir" in /*) ;; *) build_dir="$PWD/$build_dir" ;; esac
deploy="$root/scripts/deploy"
hub="$build_dir/local-hub"
kernels="$build_dir/cli/kernels"

# Exit 77: this build cannot check or make the lock (the test reports it as skipped).
cannot() {
  echo "update_deploy_lock: $*" >&2
  exit 77
}
[ -x "$kernels" ] || cannot "no kernels CLI at $kernels: build $build_dir first (scripts/build.sh)"
if [ "$check" = 0 ]; then
  if ! out=$(cmake --build "$build_dir" --target local_hub 2>&1); then
    echo "$out" >&2
    case "$out" in
      *"unknown target"*) cannot "$build_dir compiles no kernels (no nvcc, or -DKERNELS_WITH_CUDA=OFF): it has no local hub" ;;
    esac
    echo "update_deploy_lock: rebuilding the local hub in $build_dir failed" >&2
    exit 1
  fi
fi
[ -f "$hub/api/kernels/kernels-community/attention-fa3/refs" ] \
  || cannot "no local hub at $hub: $build_dir compiles no kernels (no nvcc, or -DKERNELS_WITH_CUDA=OFF)"

# The bundle must come from the pinned nvcc: another nvcc build embeds another identification in
# the cubin (.note.nv.tkinfo), so the hub would have another commit.
pinned=$("$root/scripts/install-nvcc.sh" --version)
cubins=("$build_dir"/bundle/cubin-*-sm90a/attention.cubin)
[ -f "${cubins[0]}" ] || cannot "no sm90a bundle in $build_dir/bundle"
made_by=$(grep -a -o -m1 "Cuda compilation tools, release [0-9.]*, V[0-9.]*" "${cubins[0]}" \
  || echo "an unknown nvcc")
case "$made_by" in
  *", V$pinned") ;;
  *) cannot "$build_dir's bundle was compiled by \"$made_by\", not the pinned nvcc $pinned (scripts/nvcc-requirements.txt): configure it with -DCMAKE_CUDA_COMPILER=\$(scripts/install-nvcc.sh DIR)" ;;
esac

scratch=$(mktemp -d /tmp/update-deploy-lock.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
export HF_ENDPOINT="file://$hub" KERNELS_CACHE="$scratch/cache"
if [ "$check" = 1 ]; then
  cp "$deploy/pyproject.toml" "$scratch/"
  for f in kernels.lock kernels.lock.hashes; do
    if [ -e "$deploy/$f" ]; then cp "$deploy/$f" "$scratch/"; fi
  done
  rc=0
  "$kernels" lock --locked "$scratch" || rc=$?
  if [ "$rc" != 0 ]; then
    echo "update_deploy_lock: scripts/deploy/kernels.lock does not match the local hub $build_dir publishes (kernels lock --locked: exit $rc): run scripts/update_deploy_lock.sh $build_dir and commit scripts/deploy/kernels.lock and scripts/deploy/kernels.lock.hashes" >&2
    exit "$rc"
  fi
  echo "update_deploy_lock: scripts/deploy/kernels.lock is current for $hub (bundle by nvcc $pinned)"
  exit 0
fi
"$kernels" lock "$deploy"
echo "update_deploy_lock: wrote scripts/deploy/kernels.lock and kernels.lock.hashes; commit them"
