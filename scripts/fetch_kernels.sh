#!/usr/bin/env bash
# The kernel steps of a Docker build or a CI install, in one place (the Dockerfile and
# scripts/ci_install_dependency.sh both run this):
#   1. kernels lock --locked   (a committed kernels.lock must still match the Hub; a stale one
#                               stops it, naming the fix), or kernels lock where none is committed
#   2. kernels download        (every locked variant: the build machine's GPU, if any, is not the
#                               one the image runs on)
#   3. kernels verify          (re-hash everything in the cache)
#   4. optionally make the cache read-only, and verify again from the read-only cache
# Usage: fetch_kernels.sh KERNELS_BIN PROJECT_DIR CACHE_DIR [--read-only]
# HF_ENDPOINT selects the Hub or mirror (https://..., http://..., file:///dir).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 KERNELS_BIN PROJECT_DIR CACHE_DIR [--read-only]" >&2
  exit 2
fi
kernels=$1 project=$2 cache=$3 read_only=${4:-}
export KERNELS_CACHE=$cache
endpoint=${HF_ENDPOINT:-https://huggingface.co}
echo "fetch_kernels: HF_ENDPOINT=$endpoint KERNELS_CACHE=$cache project=$project"

if [ -f "$project/kernels.lock" ]; then
  echo "fetch_kernels: checking the committed $project/kernels.lock against the Hub"
  rc=0
  "$kernels" lock --locked "$project" || rc=$?
  if [ "$rc" = 3 ] || [ "$rc" = 4 ]; then
    echo "fetch_kernels: $project/kernels.lock does not match $endpoint (kernels lock --locked: exit $rc)." >&2
    echo "fetch_kernels: this repository's scripts/deploy/kernels.lock is refreshed by scripts/update_deploy_lock.sh (docs/DOCKER.md, \"The lock\"): run it and commit scripts/deploy/kernels.lock and kernels.lock.hashes; for another project, run \`kernels lock PROJECT_DIR\` against the same HF_ENDPOINT" >&2
  fi
  [ "$rc" = 0 ] || exit "$rc"
else
  echo "fetch_kernels: no kernels.lock in $project; locking now"
  "$kernels" lock "$project"
fi
"$kernels" download --all-variants "$project"
"$kernels" verify "$project"
if [ "$read_only" = "--read-only" ]; then
  chmod -R a-w "$cache"
  "$kernels" --offline verify "$project"
  echo "fetch_kernels: the cache is read-only and verified"
fi
