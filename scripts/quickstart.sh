#!/usr/bin/env bash
# The quick start: install, build, then the main job end to end on the embedded local hub:
#   publish the built bundle -> kernels lock -> kernels download -> kernels verify -> attention
# through the loader, printing which source served it and its error against a reference.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build_dir="${KERNELS_BUILD_DIR:-build}"
step() { printf '\n==> %s\n' "$*"; }

step "Installing Debian packages (scripts/install-deps.sh)"
scripts/install-deps.sh

step "Building into $build_dir/ (scripts/build.sh): CLI, loader, kernels, and the local hub"
scripts/build.sh

kernels="$root/$build_dir/cli/kernels"
hub="$root/$build_dir/local-hub"
project="$root/$build_dir/quickstart/project"
export KERNELS_CACHE="$root/$build_dir/quickstart/cache"
export HF_ENDPOINT="file://$hub"
mkdir -p "$project"
cp scripts/deploy/pyproject.toml "$project/pyproject.toml"

if [ ! -f "$hub/api/kernels/kernels-community/attention-fa3/refs" ]; then
  step "No local hub: nvcc was not found, so no kernel bundle was built"
  echo "Install the CUDA toolkit (nvcc) and run this script again to build and publish the bundle."
  echo "The CLI is built; try: $kernels --help"
  exit 0
fi

step "The local hub ($hub) serves kernels-community/attention-fa3 v1, built from kernels/"
echo "HF_ENDPOINT=$HF_ENDPOINT  KERNELS_CACHE=$KERNELS_CACHE"
"$kernels" versions kernels-community/attention-fa3

step "kernels lock: resolve v1 to a commit and hash every build variant into kernels.lock"
"$kernels" lock "$project"
cat "$project/kernels.lock"; echo

step "kernels download: fetch the variants for this machine (all variants: no GPU needs choosing here)"
"$kernels" download "$project" --all-variants

step "kernels verify: re-hash every locked file in the cache"
"$kernels" verify "$project"

step "kernels cache ls: what the cache now holds"
"$kernels" cache ls

step "Attention through the loader (loader/examples/attention_example.cpp)"
example="$root/$build_dir/loader/kernels_loader_example"
if [ ! -x "$example" ]; then
  echo "The loader example was not built (no nvcc)."
  exit 0
fi
set +e
"$example"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "(the example exited with $rc: see its message above; on a machine without a GPU this is expected)"
fi
step "Done. The same lockfile and cache work with the Python kernels package; see README.md."
