# The sm90a bundle is the Hopper family, read from its machine code (no GPU needed): every kernel
# its manifest lists exists in the cubin and uses wgmma (HGMMA), TMA loads (UTMALDG), mbarrier
# waits (SYNCS) and register reallocation (USETMAXREG); the consumers touch no local memory
# (spills), nor do the producers, except the gathering producer of d=256's 64-key tile.
#   BUNDLE_DIR  build/bundle/cubin-cu<MAJ><MIN>-sm90a        TOOLS_VENV  where to put cuobjdump
set -euo pipefail
: "${BUNDLE_DIR:?}" "${TOOLS_VENV:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
cubin=$BUNDLE_DIR/attention.cubin
[ -f "$cubin" ] || { echo "SKIPPED: no sm90a bundle at $BUNDLE_DIR (nvcc not found at configure time)"; exit 0; }

# cuobjdump (and the nvdisasm it runs): the CUDA toolkit's, else NVIDIA's PyPI wheels in a venv.
find_tool() { find "$TOOLS_VENV" -name "$1" -type f -perm -u+x 2>/dev/null | head -1 || true; }
cuobjdump=$(command -v cuobjdump || true)
[ -n "$cuobjdump" ] || [ ! -x /usr/local/cuda/bin/cuobjdump ] || cuobjdump=/usr/local/cuda/bin/cuobjdump
if [ -z "$cuobjdump" ]; then
  if [ -z "$(find_tool cuobjdump)" ] || [ -z "$(find_tool nvdisasm)" ]; then
    { python3 -m venv "$TOOLS_VENV" &&
      "$TOOLS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm; } > "$TOOLS_VENV.log" 2>&1 || {
      cat "$TOOLS_VENV.log"
      echo "SKIPPED: no cuobjdump (not in the toolkit, and PyPI's nvidia-cuda-cuobjdump could not be installed)"
      exit 0
    }
  fi
  cuobjdump=$(find_tool cuobjdump)
  [ -n "$cuobjdump" ] || fail "cuobjdump not found after installing nvidia-cuda-cuobjdump"
  PATH=$(dirname "$(find_tool nvdisasm)"):$PATH
fi

sass=$(mktemp)
trap 'rm -f "$sass"' EXIT
"$cuobjdump" -sass "$cubin" > "$sass"
names=$(python3 -c 'import json,sys; print(" ".join(k["name"] for k in json.load(open(sys.argv[1]))["kernels"]))' \
  "$BUNDLE_DIR/manifest.json")
[ -n "$names" ] || fail "the manifest lists no kernels"
for name in $names; do
  body=$(awk -v f="Function : $name" '$0 ~ f {on=1; next} /Function : / {on=0} on' "$sass")
  [ -n "$body" ] || fail "$name is in the manifest but not in the cubin"
  for op in HGMMA UTMALDG SYNCS.PHASECHK USETMAXREG; do
    grep -q "$op" <<< "$body" || fail "$name has no $op instruction"
  done
  # The consumers' code comes first (after USETMAXREG.TRY_ALLOC), the producers' after the first
  # USETMAXREG.DEALLOC; local stores are counted for each.
  local_bytes=$(awk '/USETMAXREG.DEALLOC/ {exit} /STL/ {n++} END {print n + 0}' <<< "$body")
  producer_stores=$(awk '/USETMAXREG.DEALLOC/ {on=1} on && /STL/ {n++} END {print n + 0}' <<< "$body")
  [ "$local_bytes" = 0 ] || fail "$name's consumers spill to local memory ($local_bytes stores)"
  # Only the kernels that gather pages (d256 with 64-key blocks, sm90_gathers_pages) have a
  # producer that spills: one warpgroup at 24 registers setting up its copy loop.
  case $name in
    *hd256_m128n64_*) [ "$producer_stores" -le 24 ] || fail "$name's producers spill more than expected ($producer_stores stores)" ;;
    *) [ "$producer_stores" = 0 ] || fail "$name's producers spill to local memory ($producer_stores stores)" ;;
  esac
  echo "ok $name: $(grep -c HGMMA <<< "$body") HGMMA, $(grep -c UTMALDG <<< "$body") UTMALDG, $local_bytes + $producer_stores local stores"
done
