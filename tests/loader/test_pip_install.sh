# `pip install` of the built Python package into a fresh venv, offline: the package imports, carries
# libkernels_loader.so inside itself, reports its version, and (without a GPU) says so with the
# documented status instead of failing to find its library.
set -euo pipefail
: "${KERNELS_PYTHON_PACKAGE_DIR:?}" "${PYTHON:?}" "${KERNELS_PROJECT_VERSION:?}"
scratch=$(mktemp -d /tmp/kernels-pip.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! "$PYTHON" -m venv "$scratch/venv" > "$scratch/venv.log" 2>&1; then
  cat "$scratch/venv.log"
  echo "SKIPPED: python3 cannot create a venv here (install python3-venv)"
  exit 0
fi
py=$scratch/venv/bin/python
cp -r "$KERNELS_PYTHON_PACKAGE_DIR" "$scratch/src"
# Building needs setuptools and wheel: from the venv when it has them, else pip fetches them
# (PyPI); only the package itself never comes from an index.
if "$py" -c "import setuptools, wheel" 2>/dev/null; then
  isolation=(--no-build-isolation --no-index)
else
  isolation=()
fi
if ! "$py" -m pip install --quiet "${isolation[@]}" "$scratch/src" > "$scratch/pip.log" 2>&1; then
  cat "$scratch/pip.log"
  if grep -qiE "No matching distribution|Could not find a version|Failed to establish|Temporary failure|Network is unreachable" "$scratch/pip.log"; then
    echo "SKIPPED: pip cannot fetch setuptools/wheel to build the package (no PyPI here)"
    exit 0
  fi
  fail "pip install failed"
fi
cd "$scratch"
env -u KERNELS_LOADER_LIBRARY "$py" - <<'PY'
import importlib.metadata, os, sys
import kernels_loader
assert importlib.metadata.version("kernels-loader") == kernels_loader.__version__, kernels_loader.__version__
assert kernels_loader.__version__ == os.environ["KERNELS_PROJECT_VERSION"], "python and CMake versions differ"
path = kernels_loader._library_path()
assert "site-packages" in path and os.path.exists(path), path
try:
    kernels_loader.init()
    print("init: ok (a GPU is here)", kernels_loader.device_source(0))
except kernels_loader.KernelsLoaderError as e:
    assert e.status == 14, (e.status, str(e))
    print("init without a GPU: status 14:", str(e).splitlines()[0])
print("pip install: ok,", kernels_loader.__version__, path)
PY
