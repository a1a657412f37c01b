# `kernels mirror` writes a static mirror; a real nginx serves it; a second, empty cache is filled
# from it over HTTP and verified. The mirror is incremental: a second run fetches nothing.
source "$(dirname "$0")/common.sh"

project="$scratch/project"
make_project "$project"
mirror="$scratch/mirror"
HF_ENDPOINT="file://$hub" kernels --json mirror "$project" --to "$mirror" > "$scratch/m1.json"
cat "$scratch/m1.json"
python3 - "$scratch/m1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["fetched"] > 0 and d["kept"] == 0, d
PY
HF_ENDPOINT="file://$hub" kernels --json mirror "$project" --to "$mirror" > "$scratch/m2.json"
python3 - "$scratch/m2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["fetched"] == 0 and d["kept"] > 0, ("second mirror run was not incremental", d)
PY

start_nginx "$mirror"
export HF_ENDPOINT="$nginx_url" KERNELS_CACHE="$scratch/fleet-cache"
cp "$project/kernels.lock" "$scratch/lock-before"
kernels lock --locked "$project" || fail "the lock does not resolve identically through the mirror"
cmp "$project/kernels.lock" "$scratch/lock-before" || fail "lock --locked changed kernels.lock"
kernels download --all-variants "$project" || fail "download from nginx failed"
kernels verify "$project" || fail "the cache filled from nginx does not verify"
grep -q "GET /kernels/kernels-community/attention-fa3/resolve/" "$scratch/nginx/logs/access.log" \
  || fail "nginx served no file (the download did not go through it)"
echo "PASS: mirror served by nginx filled an empty cache that verifies"
