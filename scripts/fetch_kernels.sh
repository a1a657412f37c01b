#!/usr/bin/env bash
# The kernel steps of a Docker build or a CI install, in one place (the Dockerfile and
# scripts/ci_install_dependency.sh both run this):
#   1. kernels lock --locked   (a committed kernels.lock must still match the Hub), or kernels lock
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
echo "fetch_kernels: HF_ENDPOINT=${HF_ENDPOINT:-https://huggingface.co} KERNELS_CACHE=$cache project=$project"

if [ -f "$project/kernels.lock" ]; then
  echo "fetch_kernels: checking the committed $project/kernels.lock against the Hub"
  "$kernels" lock --locked "$project"
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
