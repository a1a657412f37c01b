#!/usr/bin/env bash
# Copies what the GPU machine needs for the loader's tests and benchmark into .device-carry/loader
# (ignored by git; passed to the device tool's `carry`). Usage: scripts/bench_loader_pack.sh [build dir]
set -euo pipefail
build=${1:-build-loader}
dst=.device-carry/loader
rm -rf "$dst"
mkdir -p "$dst/bin" "$dst/lib" "$dst/syslib" "$dst/bundle"
cp "$build/tests/loader/tests_loader" "$build/tests/loader/bench_loader" \
   "$build/loader/kernels_loader_example" "$dst/bin/"
cp "$build/loader/libkernels_loader.so" "$dst/lib/"
cp -r "$build/bundle/cubin-"*-sm90a "$dst/bundle/"
# Only used when the machine lacks them (the script checks with ldd).
cp -L /lib/x86_64-linux-gnu/libcrypto.so.3 /lib/x86_64-linux-gnu/libstdc++.so.6 "$dst/syslib/"
strip --strip-debug "$dst"/bin/* "$dst"/lib/*.so
du -sh "$dst"
