#!/usr/bin/env bash
# The quick start's last step on a GPU, plus the GPU test suites of one build, in one call.
#
# Here (no GPU):  scripts/gpu_e2e_check.sh stage BUILD_DIR
#   fills .device-carry/e2e/cache from BUILD_DIR/local-hub with the real `kernels` CLI (lock,
#   download, verify) and copies the example, the loader library and the test binaries beside it.
# There (GPU):    scripts/gpu_e2e_check.sh run      (carry .device-carry/e2e)
#   runs the example against that cache (the bundle must serve the GPU), the example again with
#   KERNELS_USE_BUILTIN=1, then tests_kernels and tests_loader with every [gpu] test.
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
    cp "$build/loader/libkernels_loader.so" "$dst/lib/"
    cp -L /lib/x86_64-linux-gnu/libcrypto.so.3 /lib/x86_64-linux-gnu/libstdc++.so.6 "$dst/syslib/"
    strip --strip-debug "$dst"/bin/* "$dst"/lib/*.so
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
    for suite in tests_kernels tests_loader; do
      echo "== $suite"
      "$carry/bin/$suite" > "$out/$suite.log" 2>&1
      echo "$suite exit $?"; tail -4 "$out/$suite.log"
    done
    ;;
  *) echo "usage: $0 stage BUILD_DIR | run" >&2; exit 2 ;;
esac
