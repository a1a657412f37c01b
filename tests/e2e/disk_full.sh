# A cache on a full disk: `kernels download` into a 128 KiB tmpfs (the local hub's bundle is about
# 430 KiB) fails at once with exit 13 (io) naming the lack of space, leaves no temp file behind,
# and `kernels verify` names what is missing. Needs permission to mount a tmpfs (root, or a user
# namespace); skips and says so otherwise.
source "$(dirname "$0")/common.sh"

make_project "$scratch/project" > /dev/null
small="$scratch/small"
mkdir -p "$small"
mount_cmd=()
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=128k tmpfs "$small" 2>/dev/null; then
  cleanup_hooks+=("umount '$small'")
elif unshare -rm true 2>/dev/null; then
  mount_cmd=(unshare -rm)
else
  echo "SKIPPED: cannot mount a small tmpfs here (neither root nor user namespaces)"
  exit 0
fi
# In a user namespace the tmpfs lives only as long as the command, so mount and run together.
run_small() {
  if [ ${#mount_cmd[@]} -eq 0 ]; then
    "$@"
  else
    "${mount_cmd[@]}" bash -c 'mount -t tmpfs -o size=128k tmpfs "$0" && shift && "$@"' "$small" "$@"
  fi
}
set +e
run_small env HF_ENDPOINT="file://$hub" KERNELS_CACHE="$small/cache" "$KERNELS_BIN" download \
  --all-variants "$scratch/project" > "$scratch/out.log" 2> "$scratch/err.log"
rc=$?
set -e
cat "$scratch/err.log"
[ "$rc" = 13 ] || fail "download onto a full disk exited $rc, expected 13 (io)"
grep -q "No space left on device" "$scratch/err.log" || fail "the error does not say the disk is full"
if [ ${#mount_cmd[@]} -eq 0 ]; then
  leftovers=$(find "$small" -name '*.incomplete' | wc -l)
  [ "$leftovers" = 0 ] || fail "$leftovers temp files left behind"
  if HF_ENDPOINT="file://$hub" KERNELS_CACHE="$small/cache" kernels verify "$scratch/project" > "$scratch/verify.log" 2>&1; then
    fail "verify accepted an incomplete cache"
  fi
  grep -q "missing" "$scratch/verify.log" || { cat "$scratch/verify.log"; fail "verify does not name the missing file"; }
fi
echo "PASS: a full disk is exit 13 with a clear message and nothing half-written"
