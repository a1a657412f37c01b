# `pip install` of the built Python package into a fresh venv, offline: the package imports, carries
# libkernels_loader.so inside itself, reports its version, and (without a GPU) says so with the
# documented status instead of failing to find its library. When the torch venv of
# scripts/setup-torch-venv.sh exists ($KERNELS_TORCH_VENV), the fresh venv also sees its torch, and
# the import must register the custom ops (issue 14: pip install, then import with torch present).
set -euo pipefail
: "${KERNELS_PYTHON_PACKAGE_DIR:?}" "${PYTHON:?}" "${KERNELS_PROJECT_VERSION:?}" "${KERNELS_HAVE_CUDA:?}"
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
with_torch=0
if [ -n "${KERNELS_TORCH_VENV:-}" ] && [ -x "$KERNELS_TORCH_VENV/bin/python" ] &&
   "$KERNELS_TORCH_VENV/bin/python" -c "import torch" 2>/dev/null; then
  torch_site=$("$KERNELS_TORCH_VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  own_site=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  if [ "$(basename "$(dirname "$torch_site")")" = "$(basename "$(dirname "$own_site")")" ]; then  # same pythonX.Y
    echo "$torch_site" > "$own_site/torch-venv.pth"
    with_torch=1
  fi
fi
[ "$with_torch" = 1 ] || echo "note: no torch venv for this python here; the import is checked without torch"
cd "$scratch"
KERNELS_EXPECT_TORCH=$with_torch env -u KERNELS_LOADER_LIBRARY "$py" - <<'PY'
import importlib.metadata, os, sys
import kernels_loader
if os.environ["KERNELS_EXPECT_TORCH"] == "1":
    import torch
    assert kernels_loader._ops is not None, kernels_loader._ops_error
    assert hasattr(torch.ops.kernels_loader, "flash_attn_with_kvcache_out")
    assert os.path.dirname(kernels_loader.__file__) in kernels_loader._library_path()
    print("with torch", torch.__version__, ": torch.ops.kernels_loader registered")
else:
    assert kernels_loader._ops is None and kernels_loader._ops_error == "torch is not installed"
assert importlib.metadata.version("kernels-loader") == kernels_loader.__version__, kernels_loader.__version__
assert kernels_loader.__version__ == os.environ["KERNELS_PROJECT_VERSION"], "python and CMake versions differ"
path = kernels_loader._library_path()
assert "site-packages" in path and os.path.exists(path), path
try:
    kernels_loader.init()
    print("init: ok (a GPU is here)", kernels_loader.device_source(0))
except kernels_loader.KernelsLoaderError as e:
    if os.environ["KERNELS_HAVE_CUDA"] == "ON":
        assert e.status == 14, (e.status, str(e))
        print("init without a GPU: status 14:", str(e).splitlines()[0])
    else:  # a build without nvcc has no built-in kernels, and says so first
        assert e.status == 12 and "carries no built-in attention kernels" in str(e), (e.status, str(e))
        print("init in a build without CUDA kernels: status 12:", str(e).splitlines()[0])
print("pip install: ok,", kernels_loader.__version__, path)
PY
