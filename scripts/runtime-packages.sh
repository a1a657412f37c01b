#!/usr/bin/env bash
# Prints, one per line, the distribution packages that hold the shared libraries the given
# programs and libraries load (ldd): what a runtime image must install for them. Package names
# differ between releases (libcurl4 on Debian 12, libcurl4t64 on Ubuntu 24.04), so the
# Dockerfile asks the build stage instead of naming them. Fails on a library nothing provides.
#   scripts/runtime-packages.sh build/cli/kernels build/loader/libkernels_loader.so
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: runtime-packages.sh BINARY..." >&2; exit 2; }
deps=$(ldd "$@")
if grep -q "not found" <<<"$deps"; then
  echo "runtime-packages: unresolved libraries:" >&2
  grep "not found" <<<"$deps" >&2
  exit 1
fi
for lib in $(awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$deps" | sort -u); do
  real=$(readlink -f "$lib")
  owner=""
  # Merged /usr: ldd may name /lib/... while the package database lists /usr/lib/..., or back.
  for path in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    owner=$(dpkg -S "$path" 2>/dev/null | head -1) && break
  done
  [ -n "$owner" ] || { echo "runtime-packages: no package provides $lib" >&2; exit 1; }
  echo "${owner%%:*}"
done | sort -u
