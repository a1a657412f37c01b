# scripts/ci_install_dependency.sh and scripts/fetch_kernels.sh from a fresh clone of the
# committed tree: the kernels end up in an empty cache, verified; a second run is a no-op; the
# read-only variant of the Docker steps verifies from a read-only cache. To stay inside CI's time
# the clone reuses this build's binaries (KERNELS_BUILD_DIR) instead of compiling the kernels again.
source "$(dirname "$0")/common.sh"

git clone -q --no-hardlinks "$KERNELS_SOURCE_DIR" "$scratch/clone"
cache="$scratch/ci-cache"
export HF_ENDPOINT="file://$hub"

KERNELS_CACHE="$cache" "$scratch/clone/scripts/ci_install_dependency.sh" > "$scratch/first.log" 2>&1 \
  || { cat "$scratch/first.log"; fail "first ci_install_dependency.sh run failed"; }
cat "$scratch/first.log"
# The clone carries the committed lock: ci_install_dependency.sh checked it (lock --locked).
grep -q "checking the committed .*kernels.lock" "$scratch/first.log" || fail "the committed scripts/deploy/kernels.lock was not checked"
KERNELS_CACHE="$cache" kernels verify "$scratch/clone/scripts/deploy" || fail "cache does not verify"
[ -n "$(find "$cache" -path '*snapshots*' -name attention.cubin)" ] || fail "bundle not in the cache"

# Idempotent: the second run checks the lock and downloads nothing.
KERNELS_CACHE="$cache" "$scratch/clone/scripts/ci_install_dependency.sh" > "$scratch/second.log" 2>&1 \
  || { cat "$scratch/second.log"; fail "second ci_install_dependency.sh run failed"; }
if grep -qi "fetched [1-9]\|downloaded [1-9]" "$scratch/second.log"; then
  cat "$scratch/second.log"; fail "the second run downloaded again"
fi

# A broken endpoint must fail loudly (non-zero), not half-succeed.
if HF_ENDPOINT="file://$scratch/no-such-hub" KERNELS_CACHE="$scratch/other-cache" \
   KERNELS_PROJECT_DIR="$scratch/empty-project" \
   bash -c "mkdir -p $scratch/empty-project && cp $KERNELS_SOURCE_DIR/scripts/deploy/pyproject.toml $scratch/empty-project/ && $scratch/clone/scripts/ci_install_dependency.sh" \
   > "$scratch/bad.log" 2>&1; then
  cat "$scratch/bad.log"; fail "ci_install_dependency.sh succeeded against a missing hub"
fi

# The Docker steps with a read-only cache at the end.
mkdir -p "$scratch/docker-project"
cp "$KERNELS_SOURCE_DIR/scripts/deploy/pyproject.toml" "$scratch/docker-project/"
"$scratch/clone/scripts/fetch_kernels.sh" "$KERNELS_BIN" "$scratch/docker-project" \
  "$scratch/docker-cache" --read-only || fail "fetch_kernels.sh --read-only failed"
echo "PASS: CI install script and Docker steps from a fresh clone"
