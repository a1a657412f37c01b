#!/usr/bin/env bash
# The built-in attention kernels on a GPU machine, in one go.
#
#   scripts/gpu_kernels_check.sh stage [BUILD_DIR]   here: copy the test binary, the benchmark shim
#                                                    and the sm90a bundle cubin into
#                                                    .device-carry/kernels/ (git-ignored)
#   scripts/gpu_kernels_check.sh run                 on the GPU machine (carry .device-carry):
#                                                    [gpu] tests on the fatbin and on the sm90a
#                                                    cubin, the PyTorch sweep, the benchmark,
#                                                    compute-sanitizer memcheck and racecheck
#
# Logs go to $OUT (the device tool's output folder) or ./gpu-check-out. Exit status: non-zero when
# any step fails; the summary lines at the end say which.
set -uo pipefail
cd "$(dirname "$0")/.."
carry=.device-carry/kernels

case "${1:-}" in
  stage)
    build="${2:-build}"
    mkdir -p "$carry"
    cp "$build/tests/kernels/tests_kernels" "$build/tests/kernels/libkernels_attention_shim.so" "$carry/"
    cp "$(ls -d "$build"/bundle/cubin-*-sm90a | head -1)/attention.cubin" "$carry/"
    ls -la "$carry"
    ;;
  run)
    out="${OUT:-gpu-check-out}"
    mkdir -p "$out"
    export PYTHONUNBUFFERED=1
    status=0
    step() {  # step NAME TIMEOUT COMMAND...
      local name=$1 limit=$2
      shift 2
      if timeout "$limit" "$@" > "$out/$name.log" 2>&1; then
        echo "ok    $name: $(grep -v "^$" "$out/$name.log" | tail -n 1)"
      else
        echo "FAIL  $name (rc $?): $(tail -n 3 "$out/$name.log" | tr '\n' ' ')"
        status=1
      fi
    }
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    step gpu_tests 200 "$carry/tests_kernels" "[gpu]"
    step gpu_tests_sm90a 200 env KERNELS_ATTENTION_IMAGE="$carry/attention.cubin" "$carry/tests_kernels" "[gpu]"
    step sweep 150 python3 scripts/bench_attention.py sweep "$carry/libkernels_attention_shim.so" --cases 300
    step bench 300 python3 scripts/bench_attention.py bench "$carry/libkernels_attention_shim.so" --json "$out/bench.json"
    step memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 1 "$carry/tests_kernels" "[sanitize]"
    step racecheck 200 compute-sanitizer --tool racecheck --error-exitcode 1 "$carry/tests_kernels" "[sanitize]"
    grep "^|" "$out/bench.log"
    exit $status
    ;;
  *)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
