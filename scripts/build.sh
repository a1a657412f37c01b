#!/usr/bin/env bash
# Configures and builds the project into ./build (Release-with-debug-info, Ninja).
# CUDA kernels are built when nvcc is found (PATH or /usr/local/cuda); otherwise the CLI and the
# loader are built without built-in kernels, and the GPU tests skip with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${KERNELS_BUILD_DIR:-build}"
jobs="${KERNELS_BUILD_JOBS:-$(nproc)}"
if [ ! -f "$build_dir/build.ninja" ]; then
  # KERNELS_CMAKE_ARGS: extra configure arguments, e.g. "-DKERNELS_BUILD_TESTS=OFF".
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${KERNELS_CMAKE_ARGS:-}
fi
cmake --build "$build_dir" -j "$jobs"
