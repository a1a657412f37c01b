#!/usr/bin/env bash
# Installs a CPU-only PyTorch into a virtual environment, for the test of kernels_loader's
# torch.library custom ops (tests_loader:torch_ops: registration, fake-tensor shapes,
# torch.compile(fullgraph=True)). The kernels themselves need a GPU; this checks the op layer only.
#
#   scripts/setup-torch-venv.sh [VENV_DIR]        (default: build/torch-venv)
#
# TORCH_PY_VERSION pins the torch release (default: the newest). The wheel comes from PyTorch's CPU
# index (KERNELS_TORCH_INDEX_URL, default https://download.pytorch.org/whl/cpu), else from PyPI,
# whose Linux wheel is the CUDA build with its nvidia-* libraries (about 5 GB installed; pip's
# cache makes a second venv quick). Either runs the CPU-only test.
# Prints the venv path on success. Safe to run again: an existing venv with torch is kept. Exits
# non-zero (and the test then skips, saying why) when neither index can be reached.
set -euo pipefail

venv="${1:-build/torch-venv}"
index="${KERNELS_TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
spec="torch${TORCH_PY_VERSION:+==$TORCH_PY_VERSION}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "$venv"
  exit 0
fi

python3 -m venv "$venv" >&2
# --no-compile: Python byte-compiles what it imports, not all of torch at install time.
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile)
# numpy only quiets torch's "Failed to initialize NumPy" warning.
if ! "${pip[@]}" --retries 1 --timeout 20 --index-url "$index" "$spec" numpy >&2 2>"$venv/index.log"; then
  echo "setup-torch-venv: $index did not serve $spec ($(tail -n 1 "$venv/index.log")); trying PyPI" >&2
  "${pip[@]}" "$spec" numpy >&2
fi
"$venv/bin/python" -c "import torch; print('torch-venv: torch', torch.__version__)" >&2
echo "$venv"
