#!/usr/bin/env bash
# Issue 13: the trusted-publisher check (kernels 0.17.2's /api/organizations/{org}/overview and
# trustedKernelPublisher rule), its logged override, mirrors and mirror packs carrying the
# overview, kernels-minver at download, and the check / benchmark commands; against file:// mirrors written by
# scripts/publish_local_hub.py, and against the Python kernels 0.17.2 oracle (when its venv
# exists) over a static HTTP server of the same mirror. Needs only the `kernels` binary.
set -uo pipefail
: "${KERNELS_SOURCE_DIR:?}" "${KERNELS_BIN:?}"
# shellcheck source=../support/local_port.sh
source "$KERNELS_SOURCE_DIR/tests/support/local_port.sh"
oracle="${KERNELS_PYTHON_ORACLE_017:-}"
work=$(mktemp -d /tmp/kernels-trust.XXXXXX)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect CODE TEXT -- command...: exit code CODE and TEXT on stderr
expect() {
  local code="$1" text="$2"; shift 3
  "$@" >"$work/out" 2>"$work/err"; local rc=$?
  if [ "$rc" != "$code" ]; then fail "$* -> exit $rc, expected $code"; sed 's/^/  | /' "$work/err"; return; fi
  if [ -n "$text" ] && ! grep -qF -- "$text" "$work/err" "$work/out"; then
    fail "$*: no \"$text\" in its output"; sed 's/^/  | /' "$work/err"
  fi
}
publish() {  # publish ORG/NAME VERSION [--untrusted] [METADATA_EXTRA]
  local repo="$1" version="$2" flag="${3:-}" extra="${4:-}"
  local v="$work/src/$repo/torch-cpu"
  rm -rf "$v"; mkdir -p "$v"
  printf 'import torch\n' >"$v/_ops.py"
  local digest
  digest=$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha256(open(sys.argv[1],"rb").read()).digest()).decode())' "$v/_ops.py")
  printf '{"name": "relu", "id": "_relu_1", "version": %s, "license": "MIT", "python-depends": [], "backend": {"type": "cpu"}%s, "digest": {"algorithm": "sha256", "files": {"_ops.py": "%s"}}}\n' \
    "$version" "$extra" "$digest" >"$v/metadata.json"
  python3 "$KERNELS_SOURCE_DIR/scripts/publish_local_hub.py" --hub "$work/hub" --repo "$repo" \
    --version "$version" $flag "$v" >/dev/null
}
project() {  # project DIR ORG/NAME [extra toml]
  mkdir -p "$1"
  printf '%s[tool.kernels.dependencies]\n"%s" = 1\n' "${3:-}" "$2" >"$1/pyproject.toml"
}
export HF_HOME="$work/hf-home" KERNELS_CACHE="$work/cache"
unset HF_HUB_OFFLINE HF_TOKEN
export HF_ENDPOINT="file://$work/hub"
k() { "$KERNELS_BIN" "$@"; }

publish good/relu 1
publish shady/relu 1 --untrusted
publish newer/relu 1 "" ', "kernels-minver": "0.18.0"'

# 1. Lock: trusted org locks; untrusted is refused (exit 15) with 0.17.2's sentence; the override
#    (command line or pyproject) allows it and says so.
project "$work/p-good" good/relu
expect 0 "" -- k lock "$work/p-good"
project "$work/p-shady" shady/relu
expect 15 "Kernel repository 'shady/relu' is not from a trusted publisher." -- k lock "$work/p-shady"
[ -e "$work/p-shady/kernels.lock" ] && fail "a refused lock left kernels.lock behind"
expect 0 "allowing untrusted kernel repository 'shady/relu'" -- k lock --allow-untrusted shady "$work/p-shady"
grep -qF -- "--allow-untrusted names 'shady'" "$work/err" || fail "the override does not say which setting allowed it"
rm -f "$work/p-shady/kernels.lock"
expect 0 "" -- k lock --allow-untrusted shady/relu "$work/p-shady"
project "$work/p-shady-toml" shady/relu $'[tool.kernels]\nallow-untrusted = ["shady"]\n\n'
expect 0 "[tool.kernels] allow-untrusted names 'shady'" -- k lock "$work/p-shady-toml"
expect 2 "expected an organisation" -- k lock --allow-untrusted 'bad org' "$work/p-shady"
project "$work/p-badtoml" shady/relu $'[tool.kernels]\nallow-untrusted = "shady"\n\n'
expect 5 "allow-untrusted to be an array of strings" -- k lock "$work/p-badtoml"
k --offline lock --locked "$work/p-shady" >/dev/null 2>"$work/err"
grep -qF "Skipping publisher trust check for 'shady/relu' because Hugging Face Hub is in offline mode." "$work/err" ||
  fail "offline lock does not say it skips the trust check"

# 2. No overview (a user namespace, an old mirror): could not verify, exit 15; the override allows.
rm "$work/hub/api/organizations/good/overview"
rm -f "$work/p-good/kernels.lock"
expect 15 "could not verify publisher trust status" -- k lock "$work/p-good"
expect 0 "its trust status could not be verified" -- k lock --allow-untrusted good "$work/p-good"
publish good/relu 1   # writes the overview again

# 3. kernels mirror carries the overview, so lock against the mirror checks the same answer.
k lock "$work/p-good" 2>/dev/null
expect 0 "" -- k mirror "$work/p-good" --to "$work/m2"
[ -f "$work/m2/api/organizations/good/overview" ] || fail "kernels mirror did not write api/organizations/good/overview"
project "$work/p-via-mirror" good/relu
expect 0 "" -- env HF_ENDPOINT="file://$work/m2" "$KERNELS_BIN" lock "$work/p-via-mirror"
cmp -s "$work/p-via-mirror/kernels.lock" "$work/p-good/kernels.lock" || fail "lock via the mirror differs"
# ... and so do pack --from-mirror and unpack --to: a lock against the unpacked mirror checks it.
expect 0 "" -- k pack "$work/p-good" --out "$work/m2.tar.zst" --from-mirror "$work/m2"
expect 0 "" -- k unpack "$work/m2.tar.zst" "$work/p-good" --to "$work/m3"
cmp -s "$work/m3/api/organizations/good/overview" "$work/m2/api/organizations/good/overview" ||
  fail "pack --from-mirror / unpack did not carry api/organizations/good/overview"
project "$work/p-via-unpacked" good/relu
expect 0 "" -- env HF_ENDPOINT="file://$work/m3" "$KERNELS_BIN" lock "$work/p-via-unpacked"
cmp -s "$work/p-via-unpacked/kernels.lock" "$work/p-good/kernels.lock" || fail "lock via the unpacked mirror differs"

# 4. download of a format 1 lock (kernels 0.16 never checked) checks repos it fetches.
expect 0 "" -- k lock --format 1 --allow-untrusted shady "$work/p-shady"
expect 15 "is not from a trusted publisher" -- env KERNELS_CACHE="$work/cache-f1" "$KERNELS_BIN" download --all-variants "$work/p-shady"
expect 0 "allowing untrusted" -- env KERNELS_CACHE="$work/cache-f1" "$KERNELS_BIN" download --all-variants --allow-untrusted shady "$work/p-shady"

# 5. kernels-minver above 0.17.2: download refuses the variant (exit 12) in 0.17.2's words.
project "$work/p-newer" newer/relu
expect 0 "" -- k lock --allow-untrusted newer "$work/p-newer"
expect 12 "requires kernels>=0.18.0, but version 0.17.2 is installed" -- k download --variant torch-cpu "$work/p-newer"
expect 0 "" -- k download --all-variants "$work/p-newer"

# 6. check: a good directory passes; a changed file and a too-new minver fail; benchmark exit 2.
mkdir -p "$work/kdir/build" && cp -r "$work/src/good/relu/torch-cpu" "$work/kdir/build/"
expect 0 "" -- k check "$work/kdir"
grep -qF "torch-cpu: metadata and digest are valid" "$work/out" || fail "check did not report the variant valid"
printf 'changed\n' >"$work/kdir/build/torch-cpu/_ops.py"
expect 6 "File hash mismatch for _ops.py" -- k check "$work/kdir"
cp -r "$work/src/newer/relu/torch-cpu" "$work/kdir2" 
expect 12 "requires kernels>=0.18.0" -- k check "$work/kdir2"
expect 2 "moved to \`kernel-builder check-abi\`" -- k check good/relu
expect 2 "is not provided by this tool" -- k benchmark kernels-community/activation

# 7. The Python kernels 0.17.2 oracle refuses the untrusted organisation too (over HTTP: the
#    Python client has no file://), and ours, against the same server, refuses and overrides.
if [ -x "$oracle/bin/python" ]; then
  start_static_server "$work/hub" || exit 1
  server_pid=$static_server_pid
  port=$static_server_port
  rm -f "$work/p-shady/kernels.lock"
  expect 1 "Kernel repository 'shady/relu' is not from a trusted publisher." -- \
    env HF_ENDPOINT="http://127.0.0.1:$port" KERNELS_CACHE="$work/py-cache" "$oracle/bin/python" -c \
    "import sys; from kernels.cli import main; sys.argv=['kernels','lock',sys.argv[1]]; main()" "$work/p-shady"
  [ -e "$work/p-shady/kernels.lock" ] && fail "Python left a kernels.lock"
  expect 15 "Kernel repository 'shady/relu' is not from a trusted publisher." -- \
    env HF_ENDPOINT="http://127.0.0.1:$port" "$KERNELS_BIN" lock "$work/p-shady"
  expect 0 "allowing untrusted kernel repository 'shady/relu'" -- \
    env HF_ENDPOINT="http://127.0.0.1:$port" "$KERNELS_BIN" lock --allow-untrusted shady "$work/p-shady"
else
  echo "note: no Python kernels 0.17.2 oracle at '$oracle' (scripts/setup-python-oracle.sh); its part was not run"
fi

if [ "$failures" -gt 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all trusted-publisher checks passed"
