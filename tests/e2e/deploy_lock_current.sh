# The committed scripts/deploy/kernels.lock pins the commit of the local hub this build publishes
# (docs/DOCKER.md, "The lock"): it must be current (scripts/update_deploy_lock.sh --check), and a
# stale lock must stop scripts/fetch_kernels.sh (the Dockerfile's fetch step) with exit 4 and a
# message naming scripts/update_deploy_lock.sh. Skipped, saying why, where the build has no local
# hub (no CUDA, as on CI) or its bundle was compiled by another nvcc than the pinned one.
source "$(dirname "$0")/common.sh"

[ -f "$KERNELS_SOURCE_DIR/scripts/deploy/kernels.lock" ] \
  || fail "scripts/deploy/kernels.lock is not in the source tree (it is committed; scripts/update_deploy_lock.sh makes it)"

rc=0
"$KERNELS_SOURCE_DIR/scripts/update_deploy_lock.sh" --check "$KERNELS_BUILD_DIR" > "$scratch/check.log" 2>&1 || rc=$?
cat "$scratch/check.log"
if [ "$rc" = 77 ]; then
  echo "SKIPPED: $(grep -m1 '^update_deploy_lock:' "$scratch/check.log")"
  exit 0
fi
[ "$rc" = 0 ] || fail "scripts/deploy/kernels.lock is not current for $hub (exit $rc): run scripts/update_deploy_lock.sh $KERNELS_BUILD_DIR and commit scripts/deploy/kernels.lock and kernels.lock.hashes"

# The same lock with another commit: fetch_kernels.sh stops before downloading, exit 4, naming the fix.
mkdir -p "$scratch/stale"
cp "$KERNELS_SOURCE_DIR/scripts/deploy/pyproject.toml" "$KERNELS_SOURCE_DIR/scripts/deploy/kernels.lock" "$scratch/stale/"
commit=$(sed -n 's/.*"commit": "\([0-9a-f]\{40\}\)".*/\1/p' "$scratch/stale/kernels.lock" | head -1)
[ -n "$commit" ] || fail "no commit found in scripts/deploy/kernels.lock"
sed -i "s/$commit/0000000000000000000000000000000000000000/" "$scratch/stale/kernels.lock"
rc=0
HF_ENDPOINT="file://$hub" "$KERNELS_SOURCE_DIR/scripts/fetch_kernels.sh" "$KERNELS_BIN" "$scratch/stale" \
  "$scratch/stale-cache" > "$scratch/stale.log" 2>&1 || rc=$?
cat "$scratch/stale.log"
[ "$rc" = 4 ] || fail "fetch_kernels.sh with a stale lock: exit $rc, expected 4 (kernels lock --locked: stale)"
grep -q "scripts/update_deploy_lock.sh" "$scratch/stale.log" || fail "the stale-lock message does not name scripts/update_deploy_lock.sh"
[ -z "$(find "$scratch/stale-cache" -name attention.cubin 2>/dev/null)" ] || fail "fetch_kernels.sh downloaded despite a stale lock"
echo "PASS: scripts/deploy/kernels.lock is current (commit $commit) and a stale one stops fetch_kernels.sh with exit 4"
