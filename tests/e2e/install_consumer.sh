# The loader as an installed library: `cmake --install` into a fresh prefix, then out-of-tree C
# and C++ programs built against it with find_package (shared and static targets) and with
# pkg-config, and run. Each must start and either report the kernels serving GPU 0 (exit 0) or,
# without a GPU, the documented no-device status (14) with the library's message. Also checks the
# SONAME and that the library exports only its API (kernels_loader.map).
set -euo pipefail
: "${KERNELS_SOURCE_DIR:?}" "${KERNELS_BUILD_DIR:?}"
scratch=$(mktemp -d /tmp/kernels-install.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
prefix=$scratch/prefix

# A Release install strips what it installs; the debug build's copies keep their symbols.
cmake --install "$KERNELS_BUILD_DIR" --prefix "$prefix" --config Release > "$scratch/install.log"
lib=$prefix/lib
for f in libkernels_loader.so libkernels_loader.so.1 libkernels_loader.a \
         cmake/kernels_loader/kernels_loaderConfig.cmake pkgconfig/kernels_loader.pc; do
  [ -e "$lib/$f" ] || fail "the install lacks lib/$f"
done
for h in kernels/kernels_loader.h kernels/loader/loader.h kernels/loader/driver.h \
         kernels/lockfile/error.h; do
  [ -f "$prefix/include/$h" ] || fail "the install lacks include/$h"
done
[ -x "$prefix/bin/kernels" ] || fail "the install lacks bin/kernels"
for f in "$prefix/bin/kernels" "$lib/libkernels_loader.so.1"; do
  if readelf -S "$f" | grep -q '\.debug_info'; then fail "$f was installed with debug information"; fi
  if readelf -S "$f" | grep -q ' \.symtab'; then fail "$f was installed unstripped"; fi
done
soname=$(objdump -p "$lib/libkernels_loader.so.1" | awk '/SONAME/ {print $2}')
[ "$soname" = libkernels_loader.so.1 ] || fail "SONAME is '$soname', expected libkernels_loader.so.1"

# Exported symbols: the C ABI exactly (pinned here), C++ only from the documented API.
c_symbols=$(nm -D --defined-only "$lib/libkernels_loader.so.1" | awk '{print $3}' | sed 's/@.*//' |
            grep -v '^_Z' | grep -v '^KERNELS_LOADER_1$' | sort | tr '\n' ' ')
expected="kernels_loader_abi_version kernels_loader_device_source kernels_loader_flash_attn_varlen_func \
kernels_loader_flash_attn_with_kvcache kernels_loader_init kernels_loader_kvcache_args_init \
kernels_loader_kvcache_workspace_size kernels_loader_last_error kernels_loader_options_init \
kernels_loader_set_log_sink kernels_loader_source_info_init kernels_loader_varlen_args_init \
kernels_loader_varlen_workspace_size "
[ "$c_symbols" = "$expected" ] || fail "exported C symbols changed: $c_symbols"
leaked=$(nm -DC --defined-only "$lib/libkernels_loader.so.1" |
  grep -E '^[0-9a-f]+ [A-Za-z] ((typeinfo|vtable)( name)? for )?(nlohmann|std::|kernels::(attention|loader::Loader::Impl|loader::validate))' || true)
[ -z "$leaked" ] || fail "internal symbols are exported: $leaked"

run_consumer() {  # NAME BINARY
  local out rc
  set +e
  out=$(LD_LIBRARY_PATH="$lib" "$2" 2>&1)
  rc=$?
  set -e
  echo "$1: exit $rc: $out"
  case $rc in
    0) grep -q "served by" <<< "$out" || fail "$1 exited 0 without saying what serves the GPU" ;;
    14) grep -qiE "driver|device|libcuda" <<< "$out" || fail "$1: exit 14 without a no-device message" ;;
    *) fail "$1 exited $rc, expected 0 (GPU) or 14 (no GPU)" ;;
  esac
}

cmake -S "$KERNELS_SOURCE_DIR/tests/e2e/consumer" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  > "$scratch/consumer.log" 2>&1 || { cat "$scratch/consumer.log"; fail "find_package(kernels_loader) failed"; }
cmake --build "$scratch/consumer" > "$scratch/consumer-build.log" 2>&1 ||
  { cat "$scratch/consumer-build.log"; fail "the find_package consumers do not build"; }
run_consumer "find_package C" "$scratch/consumer/c_consumer"
run_consumer "find_package C++" "$scratch/consumer/cxx_consumer"
run_consumer "find_package C++ static" "$scratch/consumer/cxx_static_consumer"
ldd "$scratch/consumer/cxx_static_consumer" | grep -q kernels_loader &&
  fail "the static consumer still needs libkernels_loader.so"

export PKG_CONFIG_PATH=$lib/pkgconfig
cc -o "$scratch/pc_c" "$KERNELS_SOURCE_DIR/tests/e2e/consumer/main.c" $(pkg-config --cflags --libs kernels_loader)
c++ -std=c++20 -o "$scratch/pc_cxx" "$KERNELS_SOURCE_DIR/tests/e2e/consumer/main.cpp" \
  $(pkg-config --cflags --libs kernels_loader)
c++ -std=c++20 -o "$scratch/pc_cxx_static" "$KERNELS_SOURCE_DIR/tests/e2e/consumer/main.cpp" \
  $(pkg-config --cflags kernels_loader) "$lib/libkernels_loader.a" $(pkg-config --libs-only-other --static kernels_loader) \
  $(pkg-config --static --libs-only-l kernels_loader | sed 's/-lkernels_loader//')
run_consumer "pkg-config C" "$scratch/pc_c"
run_consumer "pkg-config C++" "$scratch/pc_cxx"
run_consumer "pkg-config C++ static" "$scratch/pc_cxx_static"
echo "install_consumer: ok"
