# `kernels pack` / `kernels unpack` through the real binary: a cache and a mirror survive the trip
# into empty destinations and verify; a tampered archive is refused and leaves nothing behind.
source "$(dirname "$0")/common.sh"

project="$scratch/project"
make_project "$project"
export HF_ENDPOINT="file://$hub"
KERNELS_CACHE="$scratch/cache" kernels download --all-variants "$project"

KERNELS_CACHE="$scratch/cache" kernels pack "$project" --out "$scratch/cache.tar.zst"
KERNELS_CACHE="$scratch/site-cache" kernels unpack "$scratch/cache.tar.zst" "$project"
KERNELS_CACHE="$scratch/site-cache" kernels --offline verify "$project" \
  || fail "the unpacked cache does not verify"

kernels mirror "$project" --to "$scratch/mirror"
kernels pack "$project" --from-mirror "$scratch/mirror" --out "$scratch/mirror.tar.zst"
if kernels unpack "$scratch/mirror.tar.zst" "$project" 2>/dev/null; then
  fail "unpacking a mirror archive without --to should be a usage error"
fi
kernels unpack "$scratch/mirror.tar.zst" "$project" --to "$scratch/site-mirror"
HF_ENDPOINT="file://$scratch/site-mirror" KERNELS_CACHE="$scratch/cache-from-site-mirror" \
  kernels download --all-variants "$project" || fail "download from the unpacked mirror failed"

# Tamper with the packed bytes: unpack must refuse and publish nothing.
python3 - "$scratch/cache.tar.zst" "$scratch/tampered.tar.zst" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0xFF
open(sys.argv[2], "wb").write(b)
PY
set +e
KERNELS_CACHE="$scratch/victim" kernels unpack "$scratch/tampered.tar.zst" "$project"
rc=$?
set -e
[ "$rc" -eq 6 ] || [ "$rc" -eq 11 ] || fail "tampered archive: exit $rc, expected 6 or 11"
[ -z "$(find "$scratch/victim" -type f 2>/dev/null)" ] || fail "a refused archive left files behind"
echo "PASS: pack/unpack round trips and refuses a tampered archive"
