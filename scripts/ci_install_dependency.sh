#!/usr/bin/env bash
# What a CI system runs before its tests: install the Debian packages, build, and pre-download the
# kernels that scripts/deploy/pyproject.toml names into the cache. Idempotent: a second run installs
# nothing, rebuilds nothing, and downloads nothing. Any failure stops it with a non-zero exit.
#
# HF_ENDPOINT: the Hub or mirror to download from (default: the local hub the build creates).
# KERNELS_CACHE: the cache to fill (default: the Hugging Face cache, as `kernels` resolves it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build_dir="${KERNELS_BUILD_DIR:-build}"
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac

scripts/install-deps.sh
KERNELS_BUILD_DIR="$build_dir" scripts/build.sh

: "${HF_ENDPOINT:=file://$build_dir/local-hub}"
export HF_ENDPOINT
cache="${KERNELS_CACHE:-$("$build_dir/cli/kernels" cache path)}"
project="${KERNELS_PROJECT_DIR:-$root/scripts/deploy}"
scripts/fetch_kernels.sh "$build_dir/cli/kernels" "$project" "$cache"
echo "ci_install_dependency: kernels for $project are in $cache"
