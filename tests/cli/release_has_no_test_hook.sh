#!/usr/bin/env bash
# The KERNELS_TEST_THROW hook (cli/main.cpp) exists only in builds that build the tests: a Release
# build configured as shipped (-DKERNELS_BUILD_TESTS=OFF, as the Dockerfile does) has no trace of
# it. Configures that build beside the test build and compiles the one object that would hold it.
# Usage: release_has_no_test_hook.sh SOURCE_DIR BUILD_DIR TEST_BUILD_MAIN_OBJECT
set -euo pipefail
src=$1 build=$2 tested=$3
dir="$build/release-hook-check"
# The check below can fail: the object of the build under test (tests on) holds the hook.
if ! grep -q KERNELS_TEST_THROW "$tested"; then
  echo "FAIL: $tested (tests built) has no KERNELS_TEST_THROW: this check would prove nothing" >&2
  exit 1
fi
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKERNELS_BUILD_TESTS=OFF \
    -DKERNELS_WITH_CUDA=OFF > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log" >&2; exit 1; }
fi
cmake --build "$dir" --target cli/CMakeFiles/kernels.dir/main.cpp.o
object="$dir/cli/CMakeFiles/kernels.dir/main.cpp.o"
if grep -q KERNELS_TEST_THROW "$object"; then
  echo "FAIL: the Release build's $object contains the KERNELS_TEST_THROW test hook" >&2
  exit 1
fi
if grep -q -- "-DKERNELS_TEST_HOOKS" "$dir/build.ninja"; then
  echo "FAIL: the Release build compiles with -DKERNELS_TEST_HOOKS" >&2
  exit 1
fi
echo "the Release build (tests off) has no KERNELS_TEST_THROW hook"
