#!/usr/bin/env bash
# Runs on the GPU machine from the repository root, after scripts/bench_loader_pack.sh here:
# the loader's tests ([gpu] included), the example, the Python package's tests, the benchmark, and
# compute-sanitizer memcheck over the [gpu] tests. Logs go to $OUT (or ./loader-device-out).
set -uo pipefail
root=$(pwd)
carry=$root/.device-carry/loader
out=${OUT:-$root/loader-device-out}
mkdir -p "$out"
export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ldd "$carry/bin/tests_loader" | grep -q "not found"; then
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$carry/syslib
fi
export KERNELS_BUNDLE_SM90A_DIR=$(ls -d "$carry"/bundle/cubin-*-sm90a | head -1)
export KERNELS_LOADER_EXAMPLE=$carry/bin/kernels_loader_example
export KERNELS_LOADER_LIBRARY=$carry/lib/libkernels_loader.so
export PYTHONPATH=$root/loader/python PYTHONUNBUFFERED=1
work=$(mktemp -d); cd "$work"
{ date -u; nvidia-smi -L; nvidia-smi --query-gpu=driver_version --format=csv,noheader; nproc;
  grep -m1 "model name" /proc/cpuinfo; } 2>&1 | tee "$out/machine.txt"
echo "== tests_loader"; "$carry/bin/tests_loader" 2>&1 | tee "$out/tests_loader.log" | grep -E "SKIPPED|FAILED|passed|failed|test cases" | head -40
echo "== example"; "$carry/bin/kernels_loader_example"; echo "example exit status $?"
echo "== python"; python3 "$root/tests/loader/test_python_loader.py" 2>&1 | tee "$out/python.log"
echo "== python, real bundle in a real cache"
"$carry/bin/bench_loader" make-cache "$KERNELS_BUNDLE_SM90A_DIR" "$work/cache"
KERNELS_CACHE=$work/cache python3 "$root/tests/loader/test_python_loader.py" 2>&1 | tee "$out/python_bundle.log"
echo "== bench cpu"; "$carry/bin/bench_loader" cpu 2>&1 | tee "$out/bench_cpu.txt"
echo "== bench gpu"; "$carry/bin/bench_loader" gpu "$KERNELS_BUNDLE_SM90A_DIR" 2>&1 | tee "$out/bench_gpu.txt"
echo "== memcheck [gpu]"; timeout 150 compute-sanitizer --tool memcheck --print-limit 20 \
  "$carry/bin/tests_loader" "[gpu]" 2>&1 | tail -25 | tee "$out/memcheck.txt"
