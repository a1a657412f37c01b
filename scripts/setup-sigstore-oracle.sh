#!/usr/bin/env bash
# Installs the `sigstore` Python package (sigstore-python, the verifier Python `kernels` 0.17 uses:
# `sigstore>=4,<5`) and `cryptography` into a virtual environment, for tests/sigstore: the test PKI
# is made with `cryptography`, and every bundle is verified by both our verifier and sigstore-python.
#
#   scripts/setup-sigstore-oracle.sh [VENV_DIR]     (default: build/sigstore-oracle)
#
# Prints the venv path on success. Safe to run again: an existing venv with the pinned version is
# kept. Exits non-zero (and the tests then skip, saying why) when PyPI cannot be reached.
set -euo pipefail

SIGSTORE_VERSION="${KERNELS_SIGSTORE_PY_VERSION:-4.5.1}"
venv="${1:-build/sigstore-oracle}"

if [ -x "$venv/bin/python" ] &&
   "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('sigstore') != '$SIGSTORE_VERSION')" 2>/dev/null; then
  echo "$venv"
  exit 0
fi

python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "sigstore==$SIGSTORE_VERSION" cryptography >&2
"$venv/bin/python" -c "import sigstore, cryptography; print('sigstore-oracle: sigstore', sigstore.__version__, 'cryptography', cryptography.__version__)" >&2
echo "$venv"
