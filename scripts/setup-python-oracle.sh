#!/usr/bin/env bash
# Installs the Python `kernels` package (the reference implementation our CLI must match) into a
# virtual environment, for the compatibility tests and scripts/bench_cli.sh.
#
#   scripts/setup-python-oracle.sh [VENV_DIR]     (default: build/python-oracle)
#   KERNELS_PY_VERSION=0.17.2 scripts/setup-python-oracle.sh build/python-oracle-017
#
# KERNELS_PY_VERSION picks the kernels release (default 0.16.0, the format 1 oracle; 0.17.2 is the
# format 2 one); both run with huggingface_hub 2.4.0 (HF_HUB_PY_VERSION), the version 0.17.2 was
# observed with (hf-kernels-017.md §0).
#
# Prints the venv path on success. Safe to run again: an existing venv with the pinned version is
# kept. Exits non-zero (and the tests then skip, saying why) when PyPI cannot be reached.
set -euo pipefail

KERNELS_VERSION="${KERNELS_PY_VERSION:-0.16.0}"
HUB_VERSION="${HF_HUB_PY_VERSION:-2.4.0}"
venv="${1:-build/python-oracle}"

if [ -x "$venv/bin/python" ] &&
   "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('kernels') != '$KERNELS_VERSION')" 2>/dev/null; then
  echo "$venv"
  exit 0
fi

python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "kernels==$KERNELS_VERSION" "huggingface_hub==$HUB_VERSION" >&2
"$venv/bin/python" -c "import kernels, huggingface_hub; print('python-oracle: kernels', kernels.__version__ if hasattr(kernels, '__version__') else '$KERNELS_VERSION', 'huggingface_hub', huggingface_hub.__version__)" >&2
echo "$venv"
