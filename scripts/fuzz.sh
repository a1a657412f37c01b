#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan + UBSan) and runs each for a
# bounded time from its seed corpus in tests/fuzz/corpus/. Usage:
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     # default 60
#   FUZZ_TARGETS="pyproject hub" scripts/fuzz.sh 600     # some of them
# FUZZ_BUILD_DIR (default build-fuzz) holds the binaries and a working corpus (the seeds are
# never modified). Exits non-zero on the first crash, leak, sanitizer report or timeout; the
# reproducer is left in FUZZ_BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
seconds="${1:-60}"
out="$(realpath -m "${FUZZ_BUILD_DIR:-build-fuzz}")"
cxx="${CXX_FUZZ:-clang++}"
mkdir -p "$out"
# -DNDEBUG as in the shipped build: toml++ has internal debug asserts (e.g. parse_key on "[\n")
# that the release build compiles out and then reports as a parse error, which is what we test.
flags=(-std=c++20 -O1 -g -DNDEBUG -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Ilockfile/include -Ilockfile/src)
# Each target: the lockfile library (no network, no CUDA; OpenSSL for the digests) plus the
# sources of the parser it drives, and their libraries. fuzz_manifest: a bundle's manifest.json;
# fuzz_hub: the Hub's answers and headers; fuzz_variant: variant names and selection;
# fuzz_pyproject: pyproject.toml through the screen in front of toml++; fuzz_sigstore: Sigstore
# bundles and trusted roots (cli/sigstore, without the compiled-in roots and the TUF client);
# fuzz_unpack: `kernels unpack` (cli/pack) over any archive, against a fixed lock.
# The library is compiled once into $out/liblockfile.a, again only when a file of it changed.
lib="$out/liblockfile.a"
if [ ! -f "$lib" ] || [ -n "$(find lockfile -newer "$lib" -name '*.[ch]*' | head -1)" ]; then
  echo "building $lib"
  rm -rf "$out/lib-objects" && mkdir -p "$out/lib-objects"
  for src in lockfile/src/*.cpp; do
    "$cxx" "${flags[@]}" -c "$src" -o "$out/lib-objects/$(basename "$src" .cpp).o"
  done
  rm -f "$lib" && ar rcs "$lib" "$out"/lib-objects/*.o
fi
read -ra targets <<< "${FUZZ_TARGETS:-lockfile tree pyproject variant manifest hub sigstore unpack}"
sigstore_sources="$(ls cli/sigstore/src/*.cpp | grep -v -e builtin_root.cpp -e tuf.cpp | tr '\n' ' ')"
declare -A extra_sources=([manifest]="loader/src/bundle_manifest.cpp" [hub]="cli/hub/hub_protocol.cpp"
                          [sigstore]="$sigstore_sources"
                          [unpack]="cli/pack/unpack.cpp cli/pack/pack.cpp cli/hub/hub_protocol.cpp")
declare -A extra_flags=([manifest]="-Iloader/src" [hub]="-Icli/hub -lcurl"
                        [sigstore]="-Icli/sigstore/include -Icli/sigstore/src -DKERNELS_SIGSTORE_ROOT_FILE=\"$root/cli/sigstore/data/trusted_root.json\""
                        [unpack]="-Icli -Icli/hub -larchive -lutf8proc -lcurl")
for target in "${targets[@]}"; do
  bin="$out/fuzz_$target"
  # shellcheck disable=SC2206
  sources=("tests/fuzz/fuzz_$target.cpp" ${extra_sources[$target]:-})
  if [ ! -x "$bin" ] || [ "$lib" -nt "$bin" ] ||
     [ -n "$(find "${sources[@]%/*}" -newer "$bin" -name '*.[ch]*' | head -1)" ]; then
    echo "building $bin"
    # shellcheck disable=SC2086
    "$cxx" "${flags[@]}" "${sources[@]}" "$lib" ${extra_flags[$target]:-} -lcrypto -o "$bin"
  fi
  work="$out/corpus-$target"
  mkdir -p "$work"
  echo "fuzzing $target for ${seconds}s"
  # Run inside $out so a crash reproducer (crash-*, leak-*, timeout-*) lands there.
  (cd "$out" && "./fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
     -max_len=65536 -print_final_stats=1 "corpus-$target" "$root/tests/fuzz/corpus/$target" \
     > "fuzz_$target.log" 2>&1) || { tail -n 40 "$out/fuzz_$target.log"; echo "fuzz_$target failed"; exit 1; }
  grep -E "^stat::number_of_executed_units|^Done" "$out/fuzz_$target.log" || true
done
echo "PASS: every target ran ${seconds}s without a finding"
