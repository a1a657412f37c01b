#!/usr/bin/env bash
# The quick start's last step on a GPU, plus the GPU test suites of one build, in one call.
#
# Here (no GPU):  scripts/gpu_e2e_check.sh stage BUILD_DIR
#   fills .device-carry/e2e/cache from BUILD_DIR/local-hub with the real `kernels` CLI (lock,
#   download, verify) and copies the example, the loader library and the test binaries beside it.
# There (GPU):    scripts/gpu_e2e_check.sh run      (carry .device-carry/e2e)
#   runs the example against that cache (the bundle must serve the GPU), the example again with
#   KERNELS_USE_BUILTIN=1, then tests_kernels (built-in image, then with the sm90a bundle) and
#   tests_loader with every [gpu] test, and compute-sanitizer memcheck, racecheck and synccheck
#   on the sanitizer subset and the bundle's determinism test.
#                 scripts/gpu_e2e_check.sh bench    (carry .device-carry/e2e)
#   scripts/bench_attention_loader.py through that cache: the benchmark (kernels_loader vs SDPA
#   flash and cuDNN vs the built-in kernels, same process) and the 500-case PyTorch sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
dst=.device-carry/e2e
case "${1:-}" in
  stage)
    build=$(cd "${2:?build dir}" && pwd)
    rm -rf "$dst"; mkdir -p "$dst/bin" "$dst/lib" "$dst/syslib" "$dst/project"
    cp scripts/deploy/pyproject.toml "$dst/project/"
    export HF_ENDPOINT="file://$build/local-hub" KERNELS_CACHE="$PWD/$dst/cache"
    "$build/cli/kernels" lock "$dst/project"
    "$build/cli/kernels" download --all-variants "$dst/project"
    "$build/cli/kernels" verify "$dst/project"
    cp "$build/loader/kernels_loader_example" "$build/tests/kernels/tests_kernels" \
       "$build/tests/loader/tests_loader" "$dst/bin/"
    cp -P "$build"/loader/libkernels_loader.so* "$dst/lib/"  # the SONAME link too
    cp "$build/tests/kernels/libkernels_attention_shim.so" "$dst/lib/"
    cp -L /lib/x86_64-linux-gnu/libcrypto.so.3 /lib/x86_64-linux-gnu/libstdc++.so.6 "$dst/syslib/"
    strip --strip-debug "$dst"/bin/* "$dst"/lib/*.so.*.* "$dst"/lib/libkernels_attention_shim.so
    du -sh "$dst"
    ;;
  run)
    set +e
    root=$PWD carry=$PWD/$dst out=${OUT:-$PWD/e2e-out}
    mkdir -p "$out"
    export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    if ldd "$carry/bin/tests_loader" | grep -q "not found"; then
      export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$carry/syslib
    fi
    export KERNELS_LOADER_EXAMPLE=$carry/bin/kernels_loader_example
    KERNELS_BUNDLE_SM90A_DIR=$(find "$carry/cache" -type d -path '*snapshots*' -name 'cubin-*-sm90a' | head -1)
    export KERNELS_BUNDLE_SM90A_DIR
    nvidia-smi -L; date -u
    echo "== example, cache filled by kernels download (expects the bundle)"
    KERNELS_CACHE=$carry/cache "$carry/bin/kernels_loader_example"; echo "exit $?"
    echo "== example, KERNELS_USE_BUILTIN=1"
    KERNELS_USE_BUILTIN=1 KERNELS_CACHE=$carry/cache "$carry/bin/kernels_loader_example"; echo "exit $?"
    echo "== example, one flipped byte in the cached bundle (expects one warning, built-in kernels)"
    cp -rL "$carry/cache" /tmp/tampered-cache
    f=$(find /tmp/tampered-cache -name attention.cubin | head -1)
    python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" "$f"
    KERNELS_CACHE=/tmp/tampered-cache "$carry/bin/kernels_loader_example"; echo "exit $?"
    cd "$(mktemp -d)"
    bundle_cubin=$KERNELS_BUNDLE_SM90A_DIR/attention.cubin
    for suite in tests_kernels tests_loader; do
      echo "== $suite [gpu] (the CPU tests run in CI, some read the build tree)"
      "$carry/bin/$suite" "[gpu]" > "$out/$suite.log" 2>&1
      echo "$suite exit $?"; tail -4 "$out/$suite.log"
    done
    echo "== tests_kernels with the sm90a bundle"
    KERNELS_ATTENTION_IMAGE=$bundle_cubin "$carry/bin/tests_kernels" "[gpu]" > "$out/tests_kernels_sm90a.log" 2>&1
    echo "tests_kernels_sm90a exit $?"; tail -4 "$out/tests_kernels_sm90a.log"
    for tool in memcheck racecheck synccheck; do
      echo "== compute-sanitizer $tool (bundle mode: sanitizer subset + TMA determinism)"
      KERNELS_ATTENTION_IMAGE=$bundle_cubin timeout 250 compute-sanitizer --tool $tool --error-exitcode 1 \
        "$carry/bin/tests_kernels" "[sanitize],sm90a bundle: a TMA kernel is bitwise deterministic" \
        > "$out/sanitize_$tool.log" 2>&1
      echo "$tool exit $?"; tail -3 "$out/sanitize_$tool.log"
    done
    ;;
  bench)
    set +e
    carry=$PWD/$dst out=${OUT:-$PWD/e2e-out}
    mkdir -p "$out"
    export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export KERNELS_LOADER_LIBRARY=$carry/lib/libkernels_loader.so KERNELS_CACHE=$carry/cache
    export PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit --format=csv
    date -u
    timeout 300 python3 scripts/bench_attention_loader.py bench "$carry/lib/libkernels_attention_shim.so" \
      --json "$out/bench_loader.json" ${KERNELS_BENCH_ARGS:-} 2>&1 | tee "$out/bench_loader.log" | grep -v '^{'
    timeout 240 python3 scripts/bench_attention_loader.py sweep --cases "${KERNELS_SWEEP_CASES:-500}" \
      > "$out/sweep_loader.log" 2>&1
    echo "sweep exit $?"; grep -E "FAILED|refused|^sweep|^seed" "$out/sweep_loader.log" | tail -8
    ;;
  *) echo "usage: $0 stage BUILD_DIR | run | bench" >&2; exit 2 ;;
esac
