#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, prepares the Python compatibility
# oracles (the `kernels` package from PyPI, 0.16.0 and 0.17.2, in two venvs under the build
# directory) and a torch venv for the custom-op test, then runs every test through CTest. GPU tests are reported as skipped, with the reason, on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${KERNELS_BUILD_DIR:-build}"

scripts/install-deps.sh
scripts/build.sh
# Without PyPI the compatibility tests cannot have their oracle; they then report SKIPPED with the
# reason instead of failing the whole run.
if ! scripts/setup-python-oracle.sh "$build_dir/python-oracle" > /dev/null; then
  echo "test: could not install the Python kernels package 0.16.0; its compatibility tests will be skipped" >&2
fi
if ! KERNELS_PY_VERSION=0.17.2 scripts/setup-python-oracle.sh "$build_dir/python-oracle-017" > /dev/null; then
  echo "test: could not install the Python kernels package 0.17.2; its compatibility tests will be skipped" >&2
fi
if ! scripts/setup-sigstore-oracle.sh "$build_dir/sigstore-oracle" > /dev/null; then
  echo "test: could not install the Python sigstore package; the signature tests against it will be skipped" >&2
fi
# A CPU-only PyTorch for the custom-op test (tests_loader:torch_ops); KERNELS_TEST_TORCH=0 leaves it
# out (the test then reports SKIPPED with the reason).
if [ "${KERNELS_TEST_TORCH:-1}" != 0 ] && ! scripts/setup-torch-venv.sh "$build_dir/torch-venv" > /dev/null; then
  echo "test: could not install torch; tests_loader:torch_ops will be skipped" >&2
fi
# clang-tidy (.clang-tidy) over the C++ sources of this build (scripts/tidy.sh says what it covers
# and skips, saying why, without clang-tidy 14); KERNELS_TIDY=0 leaves it out.
if [ "${KERNELS_TIDY:-1}" != 0 ]; then
  scripts/tidy.sh "$build_dir"
fi
ctest --test-dir "$build_dir" --output-on-failure -j "${KERNELS_TEST_JOBS:-2}" "$@"
