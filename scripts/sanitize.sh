#!/usr/bin/env bash
# The CPU test suite under sanitizers (issue 12). Usage:
#   scripts/sanitize.sh [--short] [CTEST_ARGS...]        # ASan + UBSan, the whole CPU suite
#                                                        # (build-asan)
#   scripts/sanitize.sh tsan [--short] [CTEST_ARGS...]   # ThreadSanitizer, the concurrency and
#                                                        # loader tests (build-tsan)
# --short: the form every test run has (CTest sanitize:asan_short and sanitize:tsan_short, so CI
# too), sized for CI's 2 cores: ASan + UBSan builds only the lockfile, Hub-client and loader
# suites and runs them whole; TSan builds the loader and CLI suites and runs the loader suite,
# the CLI's concurrency tests and storm:race_short. The long forms run in scripts/nightly.sh;
# docs/RELIABILITY.md ("Sanitizers") records both, with their times.
# A compiler without the sanitizer's runtime makes the script print "SKIPPED: sanitizer runtime
# missing: ..." and exit 0.
# ASan + UBSan: builds the project without CUDA into build-asan (KERNELS_SANITIZE_BUILD_DIR) with
# -fsanitize=address,undefined, runs the CTest suite there, and fails if any test fails or any
# instrumented process (test binaries and every `kernels` run they start) wrote a sanitizer report,
# even one whose exit status a test expected to be non-zero anyway.
# Left out, each for a reason: fuzz:short (its own ASan+UBSan build, scripts/fuzz.sh); the
# Python tests (an uninstrumented python3 cannot dlopen an ASan library without LD_PRELOAD);
# e2e tests that build other trees (a fresh clone, out-of-tree consumers of the installed
# library, a Docker image) with their own flags.
# TSan: builds only what has threads worth watching (the loader and its tests, the Hub client's
# parallel transfers and their tests, the CLI and its concurrency tests) into build-tsan
# (KERNELS_TSAN_BUILD_DIR) and runs those tests, `kernels` child processes instrumented too.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${KERNELS_BUILD_JOBS:-$(nproc)}"
mode=asan
if [ "${1:-}" = tsan ]; then
  mode=tsan
  shift
fi
short=0
if [ "${1:-}" = --short ]; then
  short=1
  shift
fi

# Whether the C++ compiler links a program with these sanitizer flags (their runtimes, libasan,
# libubsan, libtsan, come with GCC on Debian; a trimmed toolchain may lack them).
compiler_supports() {
  local probe
  probe=$(mktemp -d)
  echo 'int main() { return 0; }' > "$probe/probe.cpp"
  local cxx="${CXX:-c++}"
  local rc=0
  # shellcheck disable=SC2086 # $1: the flags, split on purpose
  "$cxx" $1 "$probe/probe.cpp" -o "$probe/probe" > /dev/null 2>&1 && "$probe/probe" || rc=1
  rm -rf "$probe"
  return "$rc"
}

# run_checked WHAT REPORTS LINES SELECTED EXCLUDED [CTEST_ARGS...]: runs the selected CTest tests of
# $build_dir, then fails if any test failed or any instrumented process left a report in REPORTS
# (the first LINES lines of each are shown), even one whose exit status a test expected to be
# non-zero anyway. WHAT names the reports in the verdict ("sanitizer", "ThreadSanitizer"). Called
# as `run_checked ... || status=$?`, so errexit is off inside and a failed ctest still has its
# reports read.
run_checked() {
  local what=$1 reports=$2 lines=$3 selected=$4 excluded=$5
  shift 5
  local status=0
  ctest --test-dir "$build_dir" --output-on-failure -j "${KERNELS_TEST_JOBS:-2}" -R "$selected" \
    -E "$excluded" "$@" || status=$?
  if [ -n "$(ls -A "$reports")" ]; then
    echo "FAIL: $what reports in $reports:"
    for f in "$reports"/*; do
      echo "--- $f"
      head -n "$lines" "$f"
    done
    status=1
  fi
  [ "$status" -eq 0 ] && echo "PASS: no test failed and no $what report"
  return "$status"
}

if [ "$mode" = tsan ]; then
  build_dir="$(realpath -m "${KERNELS_TSAN_BUILD_DIR:-build-tsan}")"
  sanitize="-fsanitize=thread -fno-omit-frame-pointer"
  if ! compiler_supports "$sanitize"; then
    echo "SKIPPED: sanitizer runtime missing: ${CXX:-c++} cannot link with -fsanitize=thread (install libtsan for it)"
    exit 0
  fi
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKERNELS_WITH_CUDA=OFF \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS=$sanitize" "-DCMAKE_C_FLAGS=$sanitize" \
    "-DCMAKE_EXE_LINKER_FLAGS=$sanitize" "-DCMAKE_SHARED_LINKER_FLAGS=$sanitize" > /dev/null
  if [ "$short" = 1 ]; then
    cmake --build "$build_dir" -j "$jobs" --target kernels fake_hub_server tests_loader tests_cli
  else
    cmake --build "$build_dir" -j "$jobs" --target kernels fake_hub_server tests_loader tests_hub tests_cli
  fi
  reports="$build_dir/sanitizer-reports"
  rm -rf "$reports" && mkdir -p "$reports"
  # halt_on_error=0: every race is reported, not only the first; log_path as for ASan below.
  # tests/tsan.supp: races reported inside libraries we do not build with TSan (the test
  # server's), nothing of ours.
  export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:exitcode=66:suppressions=$PWD/tests/tsan.supp:log_path=$reports/tsan${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  # The whole loader and Hub-client suites; of the CLI's, the tests of processes racing on one
  # cache, lock waits, interrupts and the parallel download paths. Python tests are left out (an
  # uninstrumented python3 cannot load a TSan library).
  selected='^(tests_loader:|tests_hub:|tests_cli:.*([Rr]ac|[Ll]ock|SIG|interrupt|parallel|concurren))'
  # Short: the loader suite, the CLI's processes racing on one cache, and the race storm (16
  # `kernels download` processes per mode, all instrumented, while `cache prune` runs).
  [ "$short" = 1 ] &&
    selected='^(tests_loader:|tests_cli:.*([Rr]acing|flock is a no-op|[Bb]lob ?[Ll]ock|lock another process holds|ulimit)|storm:race_short$)'
  status=0
  run_checked ThreadSanitizer "$reports" 60 "$selected" '^tests_loader:(python_.*|pip_install)$' \
    "$@" || status=$?
  exit "$status"
fi

build_dir="$(realpath -m "${KERNELS_SANITIZE_BUILD_DIR:-build-asan}")"
# UBSan recovers (GCC's default): a report is written and the process goes on. A fatal UBSan
# report ignores log_path in GCC 12's runtime (stderr only), and a test that captures a child's
# stderr would hide it; a recovered one lands in its file below. ASan errors stay fatal.
sanitize="-fsanitize=address,undefined -fno-omit-frame-pointer"
if ! compiler_supports "$sanitize"; then
  echo "SKIPPED: sanitizer runtime missing: ${CXX:-c++} cannot link with -fsanitize=address,undefined (install libasan and libubsan for it)"
  exit 0
fi
# Configured every time, so a change of flags here reaches an existing build directory. -O1:
# fast enough tests, readable stacks; -DNDEBUG as shipped (toml++'s internal debug asserts fire
# on inputs the release build reports as parse errors, which is what the tests check).
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKERNELS_WITH_CUDA=OFF \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" \
  "-DCMAKE_CXX_FLAGS=$sanitize" "-DCMAKE_C_FLAGS=$sanitize" \
  "-DCMAKE_EXE_LINKER_FLAGS=$sanitize" "-DCMAKE_SHARED_LINKER_FLAGS=$sanitize" > /dev/null
if [ "$short" = 1 ]; then
  cmake --build "$build_dir" -j "$jobs" --target tests_lockfile tests_hub tests_loader
else
  cmake --build "$build_dir" -j "$jobs"
fi

reports="$build_dir/sanitizer-reports"
rm -rf "$reports" && mkdir -p "$reports"
# log_path: every report lands in a file (asan.<pid>, ubsan.<pid>) instead of stderr, so a report
# from a child process is seen even when the test only checked its exit status.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86:log_path=$reports/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
# (GCC 12 writes UBSan's file only when ASAN_OPTIONS names a log_path too, as here.)
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
excluded='^(fuzz:short|sanitize:.*|tests_loader:(python_.*|pip_install)|e2e:(ci_install_fresh_clone|docker_build|install_consumer))$'
selected='.'
[ "$short" = 1 ] && selected='^(tests_lockfile|tests_hub|tests_loader):'
status=0
run_checked sanitizer "$reports" 40 "$selected" "$excluded" "$@" || status=$?
exit "$status"
