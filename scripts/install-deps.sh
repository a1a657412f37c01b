#!/usr/bin/env bash
# Installs the Debian 12 packages this project builds and tests with. Safe to run again:
# it installs only what is missing, and says so.
#   scripts/install-deps.sh              build and test dependencies
#   scripts/install-deps.sh --build-only build dependencies only (what the Dockerfile needs)
set -euo pipefail

# python3-venv: scripts/install-nvcc.sh puts the pinned nvcc into a virtual environment.
packages=(
  build-essential cmake ninja-build pkg-config python3 python3-venv
  libcli11-dev libcurl4-openssl-dev nlohmann-json3-dev libssl-dev libarchive-dev
  libtomlplusplus-dev libutf8proc-dev zstd
)
if [ "${1:-}" != "--build-only" ]; then
  # python3-jsonschema, zsh, fish, groff-base: the --json schema, completion and man page tests;
  # clang-format, clang-tidy: the format check and scripts/tidy.sh (both version 14 on Debian 12).
  packages+=(catch2 libcpp-httplib-dev nginx-light clang clang-format clang-tidy
             python3-jsonschema zsh fish groff-base)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages already installed"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
