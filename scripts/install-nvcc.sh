#!/usr/bin/env bash
# Installs the pinned CUDA compiler (scripts/nvcc-requirements.txt: PyPI wheels, checked by hash)
# into a virtual environment and prints the path of its nvcc. The Dockerfile builds the kernels
# with it; so can a development machine, to reproduce the image's bundle byte for byte:
#   nvcc=$(scripts/install-nvcc.sh build/nvcc-venv)
#   KERNELS_CMAKE_ARGS="-DCMAKE_CUDA_COMPILER=$nvcc" scripts/build.sh
# Usage: scripts/install-nvcc.sh VENV_DIR   (needs python3 with venv and network access to PyPI,
#                                            or PIP_INDEX_URL / PIP_FIND_LINKS naming a mirror)
#        scripts/install-nvcc.sh --version    the pinned version (e.g. 13.0.88), installing nothing
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 VENV_DIR | --version" >&2
  exit 2
fi
requirements="$(cd "$(dirname "$0")" && pwd)/nvcc-requirements.txt"
die() { echo "install-nvcc: $*" >&2; exit 1; }
version=$(sed -n 's/^nvidia-cuda-nvcc==\([0-9.]*\).*/\1/p' "$requirements")
[ -n "$version" ] || die "$requirements pins no nvidia-cuda-nvcc==VERSION"
if [ "$1" = --version ]; then
  echo "$version"
  exit 0
fi
venv=$1

[ "$(uname -m)" = x86_64 ] || die "the pinned wheels are x86_64 only; this machine is $(uname -m)"
python3 -m venv "$venv" || die "python3 -m venv $venv failed (install python3-venv)"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes \
  -r "$requirements" \
  || die "pip could not install $requirements into $venv (PyPI unreachable or not trusted: behind a TLS-inspecting proxy, set PIP_CERT to the CA bundle that trusts it; in the Dockerfile, pass it as the build secret ca_bundle)"
nvcc=$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc)
[ -x "$nvcc" ] || die "no nvcc in $venv after installing $requirements"
# The layout CMake's FindCUDAToolkit and nvcc.profile expect: nvcc links with
# -L<toolkit>/lib64, and CUDA_CUDART is the unversioned libcudart.so; the wheels put the
# libraries in lib/ and ship only libcudart.so.13.
toolkit=$(dirname "$(dirname "$nvcc")")
[ -e "$toolkit/lib64" ] || ln -s lib "$toolkit/lib64"
[ -e "$toolkit/lib/libcudart.so" ] || ln -s "$(basename "$toolkit"/lib/libcudart.so.*)" "$toolkit/lib/libcudart.so"
"$nvcc" --version | grep -q "V$version\$" \
  || die "$nvcc does not report V$version: $("$nvcc" --version | tail -2 | tr '\n' ' ')"
echo "$nvcc"
